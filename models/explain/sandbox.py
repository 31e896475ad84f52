"""The sandbox: a small square convolution with integer values, to play with."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from engine import PADDING_MODES, ConvSpec, get_engine, make_spec
from models.errors import ConvScopeError
from models.explain.arithmetic import output_size, output_size_formula

SANDBOX_LIMITS: dict[str, tuple[int, int]] = {
    "size": (5, 9),
    "channels": (1, 4),
    "out_channels": (1, 4),
    "kernel_size": (1, 9),
    "stride": (1, 4),
    "padding": (0, 4),
    "dilation": (1, 4),
}


@dataclass
class Sandbox:
    """A small square convolution to play with: integer values so the arithmetic can be followed.

    ``input`` is ``(channels, size, size)``, ``weight`` ``(out_channels, channels, k, k)``,
    ``bias`` ``(out_channels,)``, all float32. Arrays left as None are filled at random from
    ``seed`` (inputs 0..9, kernels −1..1, bias −1..1). A kernel larger than the padded input is
    allowed: it has no output, and :meth:`problem` says why.
    """

    size: int = 5
    channels: int = 1
    out_channels: int = 1
    kernel_size: int = 3
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    padding_mode: str = "zeros"
    seed: int = 0
    input: np.ndarray | None = field(default=None, repr=False)
    weight: np.ndarray | None = field(default=None, repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name, (lo, hi) in SANDBOX_LIMITS.items():
            value = getattr(self, name)
            if not lo <= int(value) <= hi:
                raise ConvScopeError(f"sandbox {name.replace('_', ' ')} must be {lo}..{hi}, got {value}")
            setattr(self, name, int(value))
        if self.padding_mode not in PADDING_MODES:
            raise ConvScopeError(
                f"padding mode must be one of {', '.join(PADDING_MODES)}, got {self.padding_mode!r}"
            )
        rng = np.random.default_rng(self.seed)
        c, s, o, k = self.channels, self.size, self.out_channels, self.kernel_size
        self.input = _fit(self.input, (c, s, s), lambda shape: rng.integers(0, 10, shape))
        self.weight = _fit(self.weight, (o, c, k, k), lambda shape: rng.integers(-1, 2, shape))
        self.bias = _fit(self.bias, (o,), lambda shape: rng.integers(-1, 2, shape))

    def _make_spec(self) -> ConvSpec:
        return make_spec(
            (1, *self.input.shape),
            self.weight.shape,
            self.bias.shape,
            self.stride,
            self.padding,
            self.dilation,
            1,
            self.padding_mode,
        )

    @property
    def conv(self) -> ConvSpec:
        """The sandbox's convolution; ``ConvScopeError`` when it has no output."""
        try:
            return self._make_spec()
        except ValueError as exc:
            raise ConvScopeError(str(exc)) from None

    def with_settings(self, **changes: object) -> Sandbox:
        """A copy with other settings; values already there are kept where the shapes overlap."""
        return replace(self, **changes)

    def randomized(self, seed: int | None = None) -> Sandbox:
        """The same settings with fresh random values."""
        seed = self.seed + 1 if seed is None else seed
        return replace(self, seed=seed, input=None, weight=None, bias=None)

    def with_value(self, array: str, index: tuple[int, ...], value: float) -> Sandbox:
        """A copy with one value of ``"input"``, ``"weight"`` or ``"bias"`` edited."""
        arrays = {"input": self.input, "weight": self.weight, "bias": self.bias}
        if array not in arrays:
            raise ConvScopeError(f"unknown sandbox array {array!r}")
        new = np.array(arrays[array], copy=True)
        new[index] = value
        return replace(self, **{array: new})

    def output_hw(self) -> tuple[int, int]:
        """``(H_out, W_out)`` by the formula (may be < 1 when the kernel does not fit)."""
        n = output_size(self.size, self.kernel_size, self.stride, self.padding, self.dilation)
        return n, n

    def formula(self) -> str:
        return output_size_formula(
            self.size, self.kernel_size, self.stride, self.padding, self.dilation, name="H_out = W_out"
        )

    def problem(self) -> str | None:
        """Why these settings have no output (one line), or None when they do."""
        try:
            self._make_spec()
        except ValueError as exc:
            return str(exc)
        return None

    def compute(self, engine: str = "direct") -> np.ndarray:
        """The output ``(out_channels, H_out, W_out)`` on an engine; ``ConvScopeError`` if invalid."""
        conv = self.conv
        return get_engine(engine).conv2d(self.input[None], self.weight, self.bias, **conv.engine_kwargs())[0]


def _fit(current: np.ndarray | None, shape: tuple[int, ...], fill) -> np.ndarray:
    """``current`` cropped or extended (new cells from ``fill``) to ``shape``, float32."""
    out = np.asarray(fill(shape), dtype=np.float32)
    if current is not None:
        current = np.asarray(current, dtype=np.float32)
        if current.ndim == len(shape):
            overlap = tuple(slice(0, min(a, b)) for a, b in zip(current.shape, shape, strict=True))
            out[overlap] = current[overlap]
    return out
