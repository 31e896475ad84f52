"""User model files, loaded without running code from them unless the user trusts the file.

- TorchScript (``torch.jit.save``): code is TorchScript, interpreted by torch, not Python.
- ``torch.export`` programs (``.pt2``).
- A state dict (or a checkpoint dict holding one) plus ``arch``, a catalog architecture.
- A pickled ``nn.Module`` (``torch.save(model)``): unpickling runs code named in the file, so
  only with ``trust=True``. Without it we load with ``weights_only=True``, which refuses any
  class that is not a tensor or a plain container, and tell the user why.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from models.engine_mode import EngineConvMode
from models.errors import ModelError
from models.images import Preprocess

DEFAULT_SIZE = (224, 224)


def _archive_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def _first_conv_channels(module: nn.Module) -> int | None:
    for _, p in module.named_parameters():
        if p.dim() == 4:
            return int(p.shape[1])
    return None


def _export_input_shape(module: nn.Module) -> tuple[int, ...] | None:
    graph = getattr(module, "graph", None)
    if not isinstance(graph, torch.fx.Graph):  # TorchScript's graph is another thing
        return None
    for node in graph.nodes:
        val = node.meta.get("val") if node.op == "placeholder" else None
        if val is not None and hasattr(val, "shape") and len(val.shape) == 4:
            return tuple(int(s) for s in val.shape)
    return None


def _state_dict_of(obj: object) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {k.removeprefix("module."): v for k, v in obj.items()}
    return None


def _load_module(path: Path, trust: bool, arch: str | None) -> tuple[nn.Module, str, bool]:
    names = _archive_names(path)
    if any(n.endswith("serialized_exported_program.json") or ("/models/" in n and n.endswith(".json"))
           for n in names) or path.suffix == ".pt2":
        try:
            return torch.export.load(str(path)).module(), "export", True
        except Exception as exc:
            raise ModelError(f"{path.name} is not a readable torch.export program: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
        try:
            return torch.jit.load(str(path), map_location="cpu"), "torchscript", True
        except Exception as exc:
            raise ModelError(f"{path.name} is not a readable TorchScript file: {exc}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch names the class it refused ("Unsupported global: GLOBAL ..."): a pickled object.
        # Anything else (e.g. "Unsupported operand") means the bytes are no checkpoint at all.
        if "unsupported global" not in str(exc).lower():
            raise ModelError(f"{path.name} is not a model file ConvScope can read") from None
        if not trust:
            raise ModelError(
                f"{path.name} is a pickled model: loading it runs code from the file; "
                f"pass --trust-model (or answer yes in the app) only if you trust it"
            ) from None
        obj = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(obj, nn.Module):
            raise ModelError(f"{path.name} holds a {type(obj).__name__}, not a torch model") from None
        return obj, "pickle", True
    except Exception as exc:  # a file that is no checkpoint can fail the unpickler anywhere
        raise ModelError(f"{path.name} is not a model file ConvScope can read "
                         f"({type(exc).__name__})") from None
    state = _state_dict_of(obj)
    if state is None:
        raise ModelError(f"{path.name} holds neither a model nor a state dict")
    if not arch:
        raise ModelError(f"{path.name} is a state dict: say which architecture it is for "
                         f"with --arch NAME (e.g. --arch resnet18)")
    from models.zoo import load_catalog

    module = load_catalog(arch, untrained=True).module
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(f"{path.name} does not fit architecture {arch}: {first}") from None
    return module, "state_dict", True


def load_file(path: Path, *, trust: bool = False, arch: str | None = None,
              input_size: tuple[int, int] | None = None, channels: int | None = None):
    """Load a user's model file as a :class:`models.zoo.LoadedModel`; ``ModelError`` otherwise."""
    from models.zoo import LoadedModel, load_catalog

    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    module, source, pretrained = _load_module(path, trust, arch)
    if source != "export":  # an exported program is already frozen in its mode
        module.eval()
    base = load_catalog(arch, untrained=True) if arch else None
    shape = _export_input_shape(module)
    c = channels or (shape[1] if shape else None) or _first_conv_channels(module) or 3
    size = input_size or (tuple(shape[2:]) if shape else None) or (
        base.preprocess.size if base else DEFAULT_SIZE)
    if base and not input_size:
        preprocess = base.preprocess
    else:
        mean, std = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) if c == 3 else ((0.5,), (0.5,))
        preprocess = Preprocess(size=tuple(size), resize=None, crop=False, mean=mean, std=std,
                                channels=c)
    _check_has_conv(module, path, preprocess)
    categories = base.categories if base else None
    return LoadedModel(name=str(path), module=module, source=source, preprocess=preprocess,
                       categories=categories, pretrained=pretrained,
                       description=f"{source} file {path.name}")


def _check_has_conv(module: nn.Module, path: Path, preprocess: Preprocess) -> None:
    x = torch.zeros(1, preprocess.channels, *preprocess.size)
    try:
        with torch.no_grad(), EngineConvMode("reference") as mode:
            module(x)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path.name} does not run on a {preprocess.channels}x"
                         f"{preprocess.size[0]}x{preprocess.size[1]} input: {message}") from None
    if not mode.calls:
        raise ModelError(f"{path.name} has no convolution layer: nothing for ConvScope to show")
