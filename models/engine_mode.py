"""Route the 2-D convolutions a model executes to a ConvScope engine.

One :class:`ConvRouter` computes a convolution on the engine and records the call. It is
reached three ways, cheapest first:

- :func:`routed_conv`: an eager model's ``nn.Conv2d`` hands its convolution to the router from
  the stand-in ``forward`` the capture gives every module for the duration of a run
  (:mod:`models.capture.eager`), for the capture's own thread only. Nothing else in the model
  is touched or slowed down.
- :class:`EngineConvMode`: a ``TorchDispatchMode`` that sees the ATen call every convolution
  ends in — functional ``F.conv2d``, Conv2d subclasses with their own ``forward``, TorchScript
  (scripted or traced) and ``torch.export`` programs alike — at the price of a Python call for
  every op of the model.
- directly, from the interpreter of a ``torch.export`` program (:mod:`models.capture.program`).

Transposed, 1-D and 3-D convolutions are not 2-D convolutions in the engine's sense: they run
on torch and are counted as ``passed_through``.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from engine import Engine, get_engine, uses_team
from models.errors import Cancelled

_aten = torch.ops.aten
_CONV_OPS = {_aten.convolution.default, _aten._convolution.default}


@dataclass
class ConvCall:
    """One convolution the engine computed."""

    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    stride: tuple[int, int]
    padding: tuple[int, int] | str
    dilation: tuple[int, int]
    groups: int
    algorithm: str
    seconds: float
    output: torch.Tensor = field(repr=False)
    weight_ptr: int = 0  # data_ptr of the weight
    input: torch.Tensor | None = field(default=None, repr=False)  # what the engine convolved
    has_bias: bool = False


_serials: dict[int, int] = {}
_counter = itertools.count(1)


def weight_serial(weight: torch.Tensor) -> int:
    """A number for this weight tensor that no other tensor ever gets, even at the same address
    after this one is freed: with ``weight._version`` it keys the engines' weight caches."""
    key = id(weight)
    serial = _serials.get(key)
    if serial is None:
        serial = _serials[key] = next(_counter)
        weakref.finalize(weight, _serials.pop, key, None)
    return serial


_share_cores = False


def share_cores(share: bool = True) -> None:
    """Whether torch's ops run on one thread while an engine computes even beside numba's team
    (:meth:`ConvRouter.threads`), for the whole process. The window asks for it: its own
    thread paints and other lanes work while a forward pass runs, and with torch on every core
    too an image change took 122-126 ms (median, ``benchmarks/gui.py``, 2026-11-26) against
    104-107 ms. A batch job (``--export``, the benchmarks) leaves torch on every core: resnet18
    through run_model took 1.02-1.09x torch so, and 1.34x with torch on one thread."""
    global _share_cores
    _share_cores = share


class ConvRouter:
    """Computes 2-D convolutions on ``engine``, recording each one in :attr:`calls`.

    ``cancel()`` is checked before every convolution: a long run stops within one layer.
    """

    def __init__(self, engine: Engine | str, cancel: Callable[[], bool] | None = None) -> None:
        self.engine = get_engine(engine) if isinstance(engine, str) else engine
        self.cancel = cancel
        self.calls: list[ConvCall] = []
        self.passed_through = 0
        self.busy = False  # inside the engine: its own torch calls (reference) are not the model's
        # hold each call's input (a convolution outside every leaf module gets its record from
        # the call); a capture that records every input itself turns it off, so a run does not
        # keep every convolution's input alive on top of its own records
        self.keep_inputs = True
        # the last exception raised here: TorchScript re-raises ours as a RuntimeError with
        # its own text, so a caller can give the user the real cause
        self.error: BaseException | None = None

    @property
    def is_reference(self) -> bool:
        return self.engine.name == "reference"

    @contextlib.contextmanager
    def threads(self) -> Iterator[None]:
        """NumPy's BLAS and torch's OpenMP each keep a spinning thread pool; taking turns on the
        same cores they starve each other (resnet18 on auto: 245 ms -> 43 ms on 2 cores). While
        our engine does the heavy work, torch's remaining ops run on one thread. Unless the
        engine's pieces run on numba's thread team (:func:`engine.uses_team`), whose threads
        wait between calls the way torch's do: then torch keeps every core, unless
        :func:`share_cores` asked for one thread (the window)."""
        if self.is_reference or (uses_team() and not _share_cores):
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def conv(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: object,
        padding: object,
        dilation: object,
        groups: int,
    ) -> torch.Tensor | None:
        """The engine's result for one 2-D convolution, or None when it is not ours to compute
        (transposed, not 2-D, complex, half precision, not on the CPU)."""
        if x.dim() != 4 or weight.dim() != 4 or x.is_complex():
            return None
        if x.dtype not in (torch.float32, torch.float64) or x.device.type != "cpu":
            return None
        if self.cancel is not None and self.cancel():
            self.error = Cancelled("run cancelled")
            raise self.error
        start = time.perf_counter()
        with torch._C.DisableTorchFunction():  # plain tensors out, no re-entry into a mode
            xa = x.detach().contiguous().numpy()
            wa = weight.detach().to(x.dtype).contiguous().numpy()
            ba = None if bias is None else bias.detach().to(x.dtype).contiguous().numpy()
        pad = padding if isinstance(padding, str) else _pair(padding)
        self.busy = True
        try:
            # equal keys promise equal values: the tensor's serial and its in-place version
            out, algorithm = self.engine.run(
                xa,
                wa,
                ba,
                _pair(stride),
                pad,
                _pair(dilation),
                int(groups),
                weight_key=(weight_serial(weight), weight._version),
            )
        except Exception as exc:
            self.error = exc
            raise
        finally:
            self.busy = False
        result = torch.from_numpy(np.ascontiguousarray(out, dtype=xa.dtype))
        self.calls.append(
            ConvCall(
                input_shape=tuple(x.shape),
                weight_shape=tuple(weight.shape),
                stride=_pair(stride),
                padding=pad,
                dilation=_pair(dilation),
                groups=int(groups),
                algorithm=algorithm,
                seconds=time.perf_counter() - start,
                output=result,
                weight_ptr=weight.data_ptr(),
                input=x if self.keep_inputs else None,
                has_bias=bias is not None,
            )
        )
        return result


def _pair(v: object) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


class EngineConvMode(TorchDispatchMode):
    """Inside ``with EngineConvMode(engine):`` every 2-D convolution runs on ``engine``.

    Attributes
    ----------
    calls : every convolution the engine computed, in execution order
    passed_through : number of convolutions left to torch (transposed or not 2-D)
    """

    def __init__(self, engine: Engine | str | ConvRouter, cancel: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self.router = engine if isinstance(engine, ConvRouter) else ConvRouter(engine, cancel)
        self._threads: contextlib.AbstractContextManager | None = None

    @property
    def engine(self) -> Engine:
        return self.router.engine

    @property
    def calls(self) -> list[ConvCall]:
        return self.router.calls

    @property
    def passed_through(self) -> int:
        return self.router.passed_through

    def __enter__(self) -> EngineConvMode:
        self._threads = self.router.threads()
        self._threads.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self._threads is not None:
            self._threads.__exit__(None, None, None)
            self._threads = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _CONV_OPS and not self.router.busy:
            x, weight, bias, stride, padding, dilation, transposed = args[:7]
            result = (
                None if transposed else self.router.conv(x, weight, bias, stride, padding, dilation, args[8])
            )
            if result is not None:
                return result
            self.router.passed_through += 1
        return func(*args, **kwargs)


def swappable(module: nn.Module) -> bool:
    """A conv whose ``forward`` is ``nn.Conv2d``'s own: the router can stand in for it."""
    return (
        isinstance(module, nn.Conv2d)
        and type(module).forward is nn.Conv2d.forward
        and type(module)._conv_forward is nn.Conv2d._conv_forward
    )


def routed_conv(m: nn.Conv2d, x: torch.Tensor, router: ConvRouter) -> torch.Tensor:
    """``m(x)`` for a :func:`swappable` conv, computed on ``router`` (torch's own when the
    router declines it: half precision, ...)."""
    padding: object = m.padding
    if m.padding_mode != "zeros":
        x = F.pad(x, m._reversed_padding_repeated_twice, mode=m.padding_mode)
        padding = 0
    out = router.conv(x, m.weight, m.bias, m.stride, padding, m.dilation, m.groups)
    if out is None:
        router.passed_through += 1
        return (
            nn.Conv2d.forward(m, x)
            if m.padding_mode == "zeros"
            else F.conv2d(x, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)
        )
    return out
