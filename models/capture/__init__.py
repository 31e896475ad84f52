"""Capture what every layer of a model outputs on one input, in execution order.

A *layer* is one call of a leaf module (a module without children), named by its module path;
a module called more than once gives ``path``, ``path#2``, ... (:mod:`models.layers`). Three
model forms, one result:

- eager ``nn.Module``: forward hooks on the leaves (:mod:`models.capture.eager`);
- TorchScript (scripted or traced): its graph, inlined, keeps each op's module path; the graph
  is extended to return every leaf call's output (:mod:`models.capture.script`);
- a ``torch.export`` program (``.pt2``): its nodes carry their module path; an interpreter runs
  them and keeps each leaf call's output (:mod:`models.capture.program`).

Eager models and programs also record *blocks* (``Record.block``): each call of a container
that returns a tensor (a stage, a residual block), its output after its add or concatenation,
placed after the layers inside it.

Each form returns :class:`Record` rows. Keeping every layer's output costs memory traffic the
model alone does not have (it frees and reuses its buffers), so an eager model's rows are of
two kinds, found once per model (:mod:`models.runner`):

- *kept*: the tensor the layer returned, held without a copy (every convolution: its values
  are the engine's), or copied when recorded if a later in-place op (resnet's
  ``out += identity``) would overwrite it (``clone``);
- *derived* (``derive``): an element-wise module (a batch norm at inference, an activation)
  applied to another row's output. Nothing of it is held during the run; its value is computed
  again, with the same module on the same input, when it is read — so the model runs as it is,
  in-place ReLUs included, and keeps little more than its convolutions' outputs.

Which outputs are overwritten, and which rows can be derived exactly, is decided by a run that
copies everything and compares each tensor's version counter and each derived value;
``_version`` is recorded so every run can check the kept ones again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


@dataclass(slots=True)
class Record:  # (the eager capture builds it with positional arguments: keep the order)
    """One layer call as it ran. A derived row holds no tensor: ``output`` is None and
    ``derive`` = (module, key of the row whose output is its input); a convolution whose input
    is another row's output may name it in ``input_from`` instead of holding ``input``."""

    key: str  # module path, "#n" for its n-th call
    type: str  # the module's class name ("F.conv2d" for a convolution outside any leaf)
    output: torch.Tensor | None = field(repr=False)
    input: torch.Tensor | None = field(default=None, repr=False)  # its first tensor input
    seconds: float = 0.0
    calls: list[int] = field(default_factory=list)  # ConvRouter.calls made during the layer
    version: int = 0  # output._version when recorded
    input_version: int = 0
    cloned: bool = False
    input_cloned: bool = False
    derive: tuple[nn.Module, str] | None = field(default=None, repr=False)
    input_from: str | None = None
    block: bool = False  # a container's call (a stage, a residual block), not a leaf's

    def overwritten(self) -> tuple[bool, bool]:
        """Whether a later in-place op wrote into the kept output / input (not copies)."""
        out = self.output is not None and not self.cloned and self.output._version != self.version
        given = self.input is not None and not self.input_cloned and self.input._version != self.input_version
        return out, given


def apply(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module``'s forward on ``x`` as the run computed it, without its hooks (a capture may be
    under way on another thread) and without writing into ``x`` (a ReLU with inplace=True)."""
    with torch.no_grad():
        return module.forward(x.clone() if getattr(module, "inplace", False) else x)


def value(records: dict[str, Record], key: str, first: bool = False) -> torch.Tensor:
    """A row's output: kept, or derived again from the rows it comes from (``first``: only the
    batch's first element)."""
    record = records[key]
    if record.derive is None:
        return record.output[:1] if first else record.output
    module, source = record.derive
    return apply(module, value(records, source, first))


def input_value(records: dict[str, Record], key: str, first: bool = False) -> torch.Tensor | None:
    """A row's first input: kept, or the output of the row it came from."""
    record = records[key]
    if record.input_from is not None:
        return value(records, record.input_from, first)
    if record.input is None:
        return None
    return record.input[:1] if first else record.input


@dataclass
class Options:
    """How a capture runs. ``clone`` / ``clone_inputs``: layer keys whose output / input is
    copied when recorded (``None``: every one); ``keys``: only these layers are kept."""

    clone: frozenset[str] | None = frozenset()
    clone_inputs: frozenset[str] | None = frozenset()
    derive: dict[str, str] = field(default_factory=dict)  # row -> the row its input is
    input_from: dict[str, str] = field(default_factory=dict)  # conv row -> the row its input is
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
        "nn_module_stack" in n.meta for n in module.graph.nodes
    ):
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
