"""Where models come from: the catalog by name, or a file, behind one :func:`load_model`.

One module per source, each with ``claims(probe)`` and ``load(probe, options)``:

- :mod:`~models.sources.catalog` — names: the offline default, ``classic``, torchvision's;
- :mod:`~models.sources.program` — ``torch.export`` programs (``.pt2``), checked before loading;
- :mod:`~models.sources.torchscript` — ``torch.jit.save`` files;
- :mod:`~models.sources.state_dict` — weights only, put into a catalog architecture;
- :mod:`~models.sources.pickled` — ``torch.save(model)``, only when the user trusts the file.

A file's kind is decided by its content (:mod:`~models.sources.probe`), never by its suffix:
:data:`MODEL_SUFFIXES` only says which names the open dialog lists and drag-and-drop treats as
models. Adding a source: a module with ``claims`` / ``load`` in :data:`FILE_SOURCES`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from models.errors import ImageError, ModelError, one_line
from models.images import Preprocess, check_input_size
from models.sources import catalog, pickled, program, state_dict, torchscript
from models.sources.base import CancelCheck, FileOptions, LoadedModel, Opened, Progress
from models.sources.catalog import (
    DEFAULT_MODEL,
    available_models,
    checkpoint_dir,
    download,
    imagenet_categories,
    load_catalog,
)
from models.sources.probe import probe_file

__all__ = [
    "DEFAULT_MODEL",
    "FILE_SOURCES",
    "MODEL_SUFFIXES",
    "LoadedModel",
    "available_models",
    "checkpoint_dir",
    "download",
    "imagenet_categories",
    "is_model_file",
    "load_catalog",
    "load_file",
    "load_model",
    "with_settings",
]

# the one list of model-file suffixes (lower case): the open dialog's filter, drag-and-drop
MODEL_SUFFIXES = (".pt", ".pth", ".pt2", ".ts", ".bin")
# first that claims a file opens it: programs and scripts are zips of their own layout; a
# torch.save checkpoint is a state dict if the weights-only unpickler reads it, else a pickle
FILE_SOURCES = (program, torchscript, state_dict, pickled)
DEFAULT_SIZE = (224, 224)
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def is_model_file(path: str | Path) -> bool:
    """Whether ``path``'s suffix is one of :data:`MODEL_SUFFIXES` (any case)."""
    return Path(path).suffix.lower() in MODEL_SUFFIXES


def load_model(
    name_or_path: str,
    *,
    untrained: bool = False,
    trust: bool = False,
    arch: str | None = None,
    input_size: tuple[int, int] | None = None,
    channels: int | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    labels: str | Path | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> LoadedModel:
    """A catalog model by name, or a model file (TorchScript, ``torch.export`` program, state
    dict with ``arch``, or a pickled module when ``trust`` is given).

    ``input_size`` (H, W) replaces the model's own input size (a catalog model's, or the 224x224
    a file gets by default); it is bounded (``images.check_input_size``). Raises a
    ``ModelError`` subclass with a one-line message: :class:`~models.errors.UntrustedModelError`,
    :class:`~models.errors.ArchitectureNeededError` (with ``guess``),
    :class:`~models.errors.WeightsUnavailableError` (with ``url`` and ``path``) for the cases a
    front end asks about. ``mean`` / ``std`` (one per input channel) replace the
    normalisation, ``labels`` (a file: :func:`models.labels.read_labels`) the class names.
    """
    if input_size is not None:
        _check_size(input_size)
    if name_or_path in available_models():
        model = load_catalog(name_or_path, untrained=untrained, progress=progress, cancel=cancel)
        model = catalog.with_input_size(model, input_size) if input_size else model
        return with_settings(model, mean, std, labels)
    path = Path(name_or_path)
    if path.suffix or path.exists() or os.sep in name_or_path:
        model = load_file(path, trust=trust, arch=arch, input_size=input_size, channels=channels)
        return with_settings(model, mean, std, labels)
    return load_catalog(name_or_path)  # raises the unknown-name error


def with_settings(
    model: LoadedModel,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    labels: str | Path | None = None,
) -> LoadedModel:
    """``model`` normalised with ``mean`` / ``std`` and naming its classes from ``labels``."""
    channels = model.preprocess.channels
    for name, values in (("mean", mean), ("std", std)):
        if values is not None and len(values) != channels:
            raise ModelError(
                f"{name} needs {channels} value{'s' if channels > 1 else ''} (one "
                f"per input channel), got {len(values)}"
            )
    if std is not None and any(not v > 0 for v in std):
        raise ModelError("std values must be positive")
    if mean is not None or std is not None:
        model = replace(
            model,
            preprocess=replace(
                model.preprocess,
                mean=tuple(mean or model.preprocess.mean),
                std=tuple(std or model.preprocess.std),
            ),
        )
    if labels is not None:
        from models.labels import read_labels

        model = replace(model, categories=read_labels(labels))
    return model


def load_file(
    path: Path,
    *,
    trust: bool = False,
    arch: str | None = None,
    input_size: tuple[int, int] | None = None,
    channels: int | None = None,
) -> LoadedModel:
    """A user's model file as a :class:`LoadedModel`; a ``ModelError`` (one line) otherwise."""
    probe = probe_file(Path(path))
    options = FileOptions(trust=trust, arch=arch)
    for source in FILE_SOURCES:
        if source.claims(probe):
            opened = source.load(probe, options)
            break
    else:
        raise ModelError(
            f"{probe.name} is not a model file: a zip archive, but no TorchScript "
            f"file, torch.export program or torch.save checkpoint"
        )
    return _finish(probe.path, opened, input_size, channels)


def _check_size(size: tuple[int, int]) -> None:
    try:
        check_input_size(size)
    except ImageError as exc:
        raise ModelError(str(exc)) from None


def _finish(
    path: Path, opened: Opened, input_size: tuple[int, int] | None, channels: int | None
) -> LoadedModel:
    """Settle how the file's model is fed (channels, size, normalisation) and check that it runs
    on that input and has a convolution."""
    module = opened.module
    if opened.source != program.NAME:  # an exported program is already frozen in its mode
        module.eval()
        module = _as_float32(module)
    base = load_catalog(opened.arch, untrained=True) if opened.arch else None
    shape = opened.input_shape
    if shape is not None:
        _check_program_shape(path, shape, input_size, channels)
    c = channels or (shape[1] if shape and shape[1] else None) or input_channels(module) or 3
    if c not in (1, 3):
        raise ModelError(
            f"{path.name} takes {c}-channel input; ConvScope feeds a photo as 3 (RGB) or 1 (grey) channels"
        )
    stated = tuple(shape[2:]) if shape and len(shape) == 4 and None not in shape[2:] else None
    size = input_size or stated or (base.preprocess.size if base else DEFAULT_SIZE)
    _check_size(size)
    if base and not input_size:
        preprocess = base.preprocess
    else:
        mean, std = _IMAGENET if c == 3 else ((0.5,), (0.5,))
        preprocess = Preprocess(
            size=(int(size[0]), int(size[1])), resize=None, crop=False, mean=mean, std=std, channels=c
        )
    _check_runs(module, path, preprocess)
    # never the architecture's class names as the file's own: a fine-tune of resnet18 may have
    # other classes. Without a labels file, 1000 outputs show ImageNet's marked as a guess.
    return LoadedModel(
        name=str(path),
        module=module,
        source=opened.source,
        preprocess=preprocess,
        categories=None,
        pretrained=True,
        description=f"{opened.source} file {path.name}",
    )


def _check_program_shape(
    path: Path, shape: tuple[int | None, ...], input_size: tuple[int, int] | None, channels: int | None
) -> None:
    if len(shape) != 4:
        raise ModelError(
            f"{path.name} takes a {len(shape)}-D input; ConvScope feeds images "
            f"(batch, channels, height, width)"
        )
    if shape[0] not in (None, 1):
        raise ModelError(
            f"{path.name} was exported for a batch of {shape[0]} images; ConvScope "
            f"runs one at a time: export it with a batch of 1 (or a dynamic batch)"
        )
    if input_size and any(s is not None and s != int(v) for s, v in zip(shape[2:], input_size, strict=True)):
        raise ModelError(
            f"{path.name} was exported for {shape[2]}x{shape[3]} inputs only, not "
            f"{input_size[0]}x{input_size[1]}"
        )
    if channels and shape[1] is not None and shape[1] != channels:
        raise ModelError(f"{path.name} was exported for {shape[1]}-channel inputs, not {channels}")


def _as_float32(module: nn.Module) -> nn.Module:
    """Half / bfloat16 weights in float32: ConvScope feeds and computes float32 (engines too)."""
    low = (torch.float16, torch.bfloat16)
    if any(t.dtype in low for t in [*module.parameters(), *module.buffers()]):
        module = module.float()
    return module


def input_channels(module: nn.Module) -> int | None:
    """The channels of the input the model takes, from its first convolution: a TorchScript
    module's first conv call (inlined graph, execution order), else the first conv module in
    definition order (``in_channels`` already accounts for groups and transposed weights), else
    the first 4-D weight's second axis. ``None`` when there is no convolution."""
    if isinstance(module, torch.jit.ScriptModule):
        found = torchscript.first_conv_channels(module)
        if found:
            return found
    for m in module.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return int(m.in_channels)
        if (
            isinstance(m, torch.jit.ScriptModule)
            and getattr(m, "original_name", "").startswith(("Conv", "LazyConv"))
            and isinstance(getattr(m, "in_channels", None), int)
        ):
            return int(m.in_channels)
    for p in module.parameters():
        if p.dim() == 4:
            return int(p.shape[1])
    return None


class _ConvCounter(TorchDispatchMode):
    """Counts the 2-D convolutions a forward pass runs (those an engine would compute), leaving
    every call to torch."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.convolution.default, torch.ops.aten._convolution.default):
            x, weight, transposed = args[0], args[1], args[6]
            self.count += int(x.dim() == 4 and weight.dim() == 4 and not transposed)
        return func(*args, **(kwargs or {}))


def _check_runs(module: nn.Module, path: Path, preprocess: Preprocess) -> None:
    x = torch.zeros(1, preprocess.channels, *preprocess.size)
    try:
        with torch.no_grad(), _ConvCounter() as counter:
            module(x)
    except Exception as exc:  # the model's own failure, whatever it is: one line, its cause
        raise ModelError(
            f"{path.name} does not run on a {preprocess.channels}x"
            f"{preprocess.size[0]}x{preprocess.size[1]} input: "
            f"{_cause(module, x, exc)}"
        ) from None
    if not counter.count:
        raise ModelError(f"{path.name} has no convolution layer: nothing for ConvScope to show")


def _cause(module: nn.Module, x: torch.Tensor, exc: Exception) -> str:
    """The cause of a failed forward pass in one line. An exception that crosses a Python
    dispatch mode inside TorchScript's interpreter loses its text ("The following operation
    failed in the TorchScript interpreter." and nothing after it): run the pass again without
    the mode, where torch's own message survives."""
    if isinstance(module, torch.jit.ScriptModule):
        try:
            with torch.no_grad():
                module(x)
        except Exception as plain:
            return one_line(plain)
    return one_line(exc)
