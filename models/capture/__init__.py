"""Capture what every layer of a model outputs on one input, in execution order.

A *layer* is one call of a leaf module (a module without children), named by its module path;
a module called more than once gives ``path``, ``path#2``, ... (:mod:`models.layers`). Three
model forms, one result:

- eager ``nn.Module``: forward hooks on the leaves (:mod:`models.capture.eager`);
- TorchScript (scripted or traced): its graph, inlined, keeps each op's module path; the graph
  is extended to return every leaf call's output (:mod:`models.capture.script`);
- a ``torch.export`` program (``.pt2``): its nodes carry their module path; an interpreter runs
  them and keeps each leaf call's output (:mod:`models.capture.program`).

Each form returns :class:`Record` rows. An output is kept as the tensor the layer returned
(no copy) unless it is listed in ``clone``: a later in-place op (a ReLU with ``inplace=True``,
resnet's ``out += identity``) would overwrite it. Which outputs that happens to is found once
per model by a run that copies everything and compares each tensor's version counter
(:mod:`models.runner`); ``_version`` is recorded so every run can check it again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


@dataclass
class Record:
    """One layer call as it ran."""

    key: str  # module path, "#n" for its n-th call
    type: str  # the module's class name ("F.conv2d" for a convolution outside any leaf)
    output: torch.Tensor = field(repr=False)
    input: torch.Tensor | None = field(default=None, repr=False)  # its first tensor input
    seconds: float = 0.0
    calls: list[int] = field(default_factory=list)  # ConvRouter.calls made during the layer
    version: int = 0  # output._version when recorded
    input_version: int = 0
    cloned: bool = False
    input_cloned: bool = False

    def overwritten(self) -> tuple[bool, bool]:
        """Whether a later in-place op wrote into the kept output / input (not copies)."""
        out = not self.cloned and self.output._version != self.version
        given = self.input is not None and not self.input_cloned and \
            self.input._version != self.input_version
        return out, given


@dataclass
class Options:
    """How a capture runs. ``clone`` / ``clone_inputs``: layer keys whose output / input is
    copied when recorded (``None``: every one); ``keys``: only these layers are kept."""

    clone: frozenset[str] | None = frozenset()
    clone_inputs: frozenset[str] | None = frozenset()
    keys: frozenset[str] | None = None
    cancel: CancelFn | None = None
    progress: ProgressFn | None = None
    total: int = 0
    # called as each layer is recorded, with its output and input as made (not copies)
    on_record: Callable[[Record, torch.Tensor, torch.Tensor | None], None] | None = None

    def clones(self, key: str) -> bool:
        return self.clone is None or key in self.clone

    def clones_input(self, key: str) -> bool:
        return self.clone_inputs is None or key in self.clone_inputs

    def wants(self, key: str) -> bool:
        return self.keys is None or key in self.keys

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            from models.errors import Cancelled

            raise Cancelled("run cancelled")

    def reported(self, done: int) -> None:
        if self.progress is not None and self.total:
            self.progress(min(done, self.total), self.total)


def model_form(module: nn.Module) -> str:
    """``"script"`` (TorchScript), ``"program"`` (a ``torch.export`` program's module) or
    ``"eager"``."""
    if isinstance(module, torch.jit.ScriptModule):
        return "script"
    if isinstance(module, torch.fx.GraphModule) and any(
            "nn_module_stack" in n.meta for n in module.graph.nodes):
        return "program"
    return "eager"


def layer_key(path: str, call: int) -> str:
    """The key of the ``call``-th (1-based) call of the module at ``path``."""
    return path if call == 1 else f"{path}#{call}"


def short_type(name: str) -> str:
    """``'torch.nn.modules.conv.Conv2d'`` -> ``'Conv2d'``."""
    return name.rsplit(".", 1)[-1]


def kept(t: torch.Tensor, copy: bool) -> torch.Tensor:
    """What a record keeps of a tensor: itself, or a copy taken now."""
    if not copy:
        return t
    return t.clone() if t.requires_grad else t.detach().clone()


@contextlib.contextmanager
def out_of_place(module: nn.Module) -> Iterator[None]:
    """Modules with an ``inplace`` switch (ReLU, ReLU6, Hardswish, SiLU, Dropout, ...) write a
    new tensor for the duration: the output they would overwrite stays what its layer made,
    without a copy. Restored afterwards."""
    switched = [m for m in module.modules() if getattr(m, "inplace", None) is True]
    for m in switched:
        m.inplace = False
    try:
        yield
    finally:
        for m in switched:
            m.inplace = True


class Clock:
    """Marks between layers: the time and the router's call count at each mark."""

    def __init__(self, calls: Callable[[], int]) -> None:
        self._calls = calls
        self.time = time.perf_counter()
        self.count = calls()

    def lap(self) -> tuple[float, list[int]]:
        now, count = time.perf_counter(), self._calls()
        seconds, calls = now - self.time, list(range(self.count, count))
        self.time, self.count = now, count
        return seconds, calls
