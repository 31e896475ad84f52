"""Route every 2-D convolution a model executes to a ConvScope engine.

A :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees the ATen call that every
convolution ends in — ``nn.Conv2d`` and its subclasses, functional ``F.conv2d``, TorchScript
(scripted or traced) and ``torch.export`` programs alike — so one interception point catches
them all. The mode replaces the call with the engine's result and records it.

Transposed, 1-D and 3-D convolutions are not 2-D convolutions in the engine's sense: they run
on torch and are counted as ``passed_through``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from engine import Engine, get_engine

_aten = torch.ops.aten
_CONV_OPS = {_aten.convolution.default, _aten._convolution.default}


@dataclass
class ConvCall:
    """One convolution the engine computed."""

    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    algorithm: str
    seconds: float
    output: torch.Tensor = field(repr=False)
    weight_ptr: int = 0  # data_ptr of the weight: names the layer when modules have no hooks
    input: torch.Tensor | None = field(default=None, repr=False)  # what the engine convolved


class EngineConvMode(TorchDispatchMode):
    """Inside ``with EngineConvMode(engine):`` every 2-D convolution runs on ``engine``.

    Attributes
    ----------
    calls : every convolution the engine computed, in execution order
    passed_through : number of convolutions left to torch (transposed or not 2-D)
    """

    def __init__(self, engine: Engine | str) -> None:
        super().__init__()
        self.engine = get_engine(engine) if isinstance(engine, str) else engine
        self.calls: list[ConvCall] = []
        self.passed_through = 0
        self._torch_threads: int | None = None

    def __enter__(self) -> EngineConvMode:
        # NumPy's BLAS and torch's OpenMP each keep a spinning thread pool; taking turns on the
        # same cores they starve each other (resnet18 on auto: 245 ms -> 43 ms on 2 cores).
        # The engine does the heavy work, so torch's remaining ops run on one thread.
        if not self.engine.name == "reference":
            self._torch_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self._torch_threads is not None:
            torch.set_num_threads(self._torch_threads)
            self._torch_threads = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _CONV_OPS:
            result = self._convolution(*args, **kwargs)
            if result is not None:
                return result
            self.passed_through += 1
        return func(*args, **kwargs)

    def _convolution(self, x, weight, bias, stride, padding, dilation, transposed,
                     output_padding, groups, *_rest) -> torch.Tensor | None:
        if transposed or x.dim() != 4 or weight.dim() != 4 or x.is_complex():
            return None
        if x.dtype not in (torch.float32, torch.float64) or x.device.type != "cpu":
            return None
        start = time.perf_counter()
        with torch._C.DisableTorchFunction():  # plain tensors out, no re-entry into the mode
            xa = x.detach().contiguous().numpy()
            wa = weight.detach().to(x.dtype).contiguous().numpy()
            ba = None if bias is None else bias.detach().to(x.dtype).numpy()
        out, algorithm = self.engine.run(
            xa, wa, ba, tuple(stride), tuple(padding), tuple(dilation), int(groups)
        )
        result = torch.from_numpy(np.ascontiguousarray(out, dtype=xa.dtype))
        self.calls.append(ConvCall(
            input_shape=tuple(x.shape), weight_shape=tuple(weight.shape),
            stride=tuple(stride), padding=tuple(padding), dilation=tuple(dilation),
            groups=int(groups), algorithm=algorithm,
            seconds=time.perf_counter() - start, output=result, weight_ptr=weight.data_ptr(),
            input=x,
        ))
        return result
