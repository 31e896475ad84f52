"""What every model source hands back: :class:`LoadedModel`, and the callback types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from models.images import Preprocess

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


@dataclass(frozen=True)
class FileOptions:
    """What the user said about a model file: trust it (it may run code), its architecture."""

    trust: bool = False
    arch: str | None = None


@dataclass
class Opened:
    """What a file source hands the dispatcher: the module and what the file says about it."""

    module: nn.Module
    source: str  # the LoadedModel.source value
    input_shape: tuple[int | None, ...] | None = None  # as the file states it (a .pt2 does)
    arch: str | None = None  # the catalog architecture whose weights these are (state dicts)
