"""Argument normalisation, validation and output-size arithmetic shared by every engine.

Every engine takes torch's ``F.conv2d`` arguments (plus the module's ``padding_mode``) and
calls :func:`prepare`, which validates them up front, pads the input with the requested mode
and returns the padded input together with a :class:`ConvSpec` that holds every size as a pair.

Output size, as in torch's documentation::

    H_out = floor((H + pad_top + pad_bottom - dilation * (kH - 1) - 1) / stride) + 1
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

IntOrPair = int | tuple[int, int] | list[int]
Padding = int | tuple[int, int] | list[int] | Literal["same", "valid"]

# The most bytes an engine's temporaries (patch matrices, transformed tiles, spectra) may take
# at once; bigger work is done in chunks. A module attribute so tests can lower it.
WORK_BYTES = 256 * 2**20
# What the compiled paths aim for per band instead: temporaries that stay in the caches between
# the step that writes them and the step that reads them (a patch matrix written to memory and
# read back costs more than the GEMM on it for small kernels).
CACHE_BYTES = 4 * 2**20

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_NUMPY_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@dataclass(frozen=True)
class ConvSpec:
    """Every size of one convolution call, normalised to pairs.

    ``pad`` is ``(top, bottom, left, right)``; ``h, w`` are the unpadded input sizes and
    ``hp, wp`` the padded ones.
    """

    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    kh: int
    kw: int
    stride: tuple[int, int]
    pad: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int
    padding_mode: str
    out_h: int
    out_w: int
    dtype: np.dtype

    @property
    def hp(self) -> int:
        return self.h + self.pad[0] + self.pad[1]

    @property
    def wp(self) -> int:
        return self.w + self.pad[2] + self.pad[3]

    @property
    def c_in_per_group(self) -> int:
        return self.c_in // self.groups

    @property
    def c_out_per_group(self) -> int:
        return self.c_out // self.groups

    @property
    def is_depthwise(self) -> bool:
        """One input channel per group (depthwise, possibly with a channel multiplier)."""
        return self.groups == self.c_in and self.groups > 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the call (bias excluded)."""
        return self.n * self.c_out * self.out_h * self.out_w * self.c_in_per_group * self.kh * self.kw

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c_out, self.out_h, self.out_w)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.c_out, self.c_in_per_group, self.kh, self.kw)

    def engine_kwargs(self) -> dict:
        """The keyword arguments of an engine call that makes this spec again (with inputs of
        its shapes): stride, padding, dilation, groups, padding_mode. An asymmetric padding
        can only come from ``"same"``, and is given as that."""
        top, bottom, left, right = self.pad
        padding = (top, left) if (top, left) == (bottom, right) else "same"
        return {
            "stride": self.stride,
            "padding": padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "padding_mode": self.padding_mode,
        }


def pair(value: IntOrPair, name: str) -> tuple[int, int]:
    """Turn an int or a 2-sequence of ints into a pair, as torch's ``_pair`` does."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            return (int(value[0]), int(value[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int) -> int:
    """``floor((size + pad_total - dilation * (kernel - 1) - 1) / stride) + 1``."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def resolve_padding(
    padding: Padding, kernel: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Padding as ``(top, bottom, left, right)``; ``"same"`` puts the odd pixel at the end."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"padding='same' is not supported for strided convolutions (stride={stride})"
                )
            pads: list[int] = []
            for k, d in zip(kernel, dilation, strict=True):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return (pads[0], pads[1], pads[2], pads[3])
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    ph, pw = pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return (ph, ph, pw, pw)


def _as_float_array(value: object, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array


# make_spec's results by its arguments: a model calls each layer with the same shapes on every
# pass, and validating them again took a third of a small layer's per-call overhead
_SPEC_CACHE: dict[tuple, ConvSpec] = {}
_SPEC_CACHE_SIZE = 4096


def _plain(value: object) -> bool:
    """An int, a string or a tuple of ints (exact types): safe as part of a cache key."""
    t = type(value)
    return t is int or t is str or (t is tuple and all(type(v) is int for v in value))


def make_spec(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    bias_shape: tuple[int, ...] | None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    dtype: np.dtype | type = np.float32,
) -> ConvSpec:
    """Validate the arguments of a call by shapes alone and return its :class:`ConvSpec`.

    Raises
    ------
    ValueError
        With the offending values in the message.
    """
    if not (
        _plain(stride)
        and _plain(padding)
        and _plain(dilation)
        and type(groups) is int
        and type(padding_mode) is str
    ):
        # lists, numpy integers, bools (True == 1 would find the spec of 1): validated every time
        return _make_spec(
            x_shape, w_shape, bias_shape, stride, padding, dilation, groups, padding_mode, dtype
        )
    key = (
        tuple(x_shape),
        tuple(w_shape),
        None if bias_shape is None else tuple(bias_shape),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        np.dtype(dtype),
    )
    spec = _SPEC_CACHE.get(key)
    if spec is None:
        spec = _make_spec(
            x_shape, w_shape, bias_shape, stride, padding, dilation, groups, padding_mode, dtype
        )
        if len(_SPEC_CACHE) >= _SPEC_CACHE_SIZE:
            _SPEC_CACHE.clear()
        _SPEC_CACHE[key] = spec
    return spec


def _make_spec(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    bias_shape: tuple[int, ...] | None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    dtype: np.dtype | type = np.float32,
) -> ConvSpec:
    """:func:`make_spec` without the cache."""
    if len(x_shape) != 4:
        raise ValueError(f"input must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"weight must be 4-D (O, I/groups, kH, kW), got shape {tuple(w_shape)}")
    n, c_in, h, w = (int(v) for v in x_shape)
    c_out, c_in_g, kh, kw = (int(v) for v in w_shape)
    if n < 1 or c_in < 1 or h < 1 or w < 1:
        raise ValueError(f"input must have non-zero sizes, got shape {tuple(x_shape)}")
    if c_out < 1 or c_in_g < 1 or kh < 1 or kw < 1:
        raise ValueError(f"weight must have non-zero sizes, got shape {tuple(w_shape)}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    if c_in % groups != 0:
        raise ValueError(f"input channels ({c_in}) must be divisible by groups ({groups})")
    if c_out % groups != 0:
        raise ValueError(f"output channels ({c_out}) must be divisible by groups ({groups})")
    if c_in_g * groups != c_in:
        raise ValueError(
            f"input has {c_in} channels but weight {tuple(w_shape)} with groups={groups} "
            f"expects {c_in_g * groups}"
        )
    if bias_shape is not None and tuple(bias_shape) != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},) (one per output channel), got {tuple(bias_shape)}")
    st = pair(stride, "stride")
    if st[0] <= 0 or st[1] <= 0:
        raise ValueError(f"stride must be positive, got {stride!r}")
    dil = pair(dilation, "dilation")
    if dil[0] <= 0 or dil[1] <= 0:
        raise ValueError(f"dilation must be positive, got {dilation!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    pad = resolve_padding(padding, (kh, kw), dil, st)
    if padding_mode == "reflect" and (max(pad[:2]) >= h or max(pad[2:]) >= w):
        raise ValueError(f"reflect padding {pad} must be smaller than the input size ({h}, {w})")
    if padding_mode == "circular" and (max(pad[:2]) > h or max(pad[2:]) > w):
        raise ValueError(f"circular padding {pad} must not exceed the input size ({h}, {w})")
    hp, wp = h + pad[0] + pad[1], w + pad[2] + pad[3]
    ekh, ekw = dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1
    if ekh > hp or ekw > wp:
        raise ValueError(
            f"kernel ({kh}, {kw}) with dilation {dil} spans ({ekh}, {ekw}), larger than the "
            f"padded input ({hp}, {wp})"
        )
    out_h = output_size(h, kh, st[0], pad[0] + pad[1], dil[0])
    out_w = output_size(w, kw, st[1], pad[2] + pad[3], dil[1])
    return ConvSpec(
        n=n,
        c_in=c_in,
        h=h,
        w=w,
        c_out=c_out,
        kh=kh,
        kw=kw,
        stride=st,
        pad=pad,
        dilation=dil,
        groups=groups,
        padding_mode=padding_mode,
        out_h=out_h,
        out_w=out_w,
        dtype=np.dtype(dtype),
    )


def result_dtype(*arrays: np.ndarray | None) -> np.dtype:
    """float64 if any operand is float64, else float32 (integers compute in float32)."""
    if any(a is not None and a.dtype == np.float64 for a in arrays):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def pad_input(x: np.ndarray, pad: tuple[int, int, int, int], padding_mode: str) -> np.ndarray:
    """Pad the last two axes of ``(N, C, H, W)`` by ``(top, bottom, left, right)``.

    ``zeros`` fills 0, ``reflect`` mirrors without repeating the edge, ``replicate`` repeats
    the edge, ``circular`` wraps around, as torch's padding modes do.
    """
    if not any(pad):
        return x
    widths = ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3]))
    return np.pad(x, widths, mode=_NUMPY_PAD_MODE[padding_mode])


def _checked(
    x: object,
    weight: object,
    bias: object,
    stride: IntOrPair,
    padding: Padding,
    dilation: IntOrPair,
    groups: int,
    padding_mode: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, ConvSpec]:
    """The call validated (its spec) and its arrays C-contiguous in the compute dtype."""
    xa = _as_float_array(x, "input")
    wa = _as_float_array(weight, "weight")
    ba = None if bias is None else _as_float_array(bias, "bias")
    dtype = result_dtype(xa, wa, ba)
    spec = make_spec(
        xa.shape,
        wa.shape,
        None if ba is None else ba.shape,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        dtype,
    )
    xa = np.ascontiguousarray(xa, dtype=dtype)
    wa = np.ascontiguousarray(wa, dtype=dtype)
    if ba is not None:
        ba = np.ascontiguousarray(ba, dtype=dtype)
    return xa, wa, ba, spec


def prepare(
    x: object,
    weight: object,
    bias: object = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, ConvSpec]:
    """Validate a call, cast to the compute dtype and pad the input.

    Returns
    -------
    xp : ``(N, C_in, Hp, Wp)`` padded input, C-contiguous, compute dtype
    weight : ``(C_out, C_in/groups, kH, kW)``, compute dtype
    bias : ``(C_out,)`` or None, compute dtype
    spec : the call's :class:`ConvSpec`
    """
    xa, wa, ba, spec = _checked(x, weight, bias, stride, padding, dilation, groups, padding_mode)
    return pad_input(xa, spec.pad, padding_mode), wa, ba, spec


def validate(
    x: object,
    weight: object,
    bias: object = None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, ConvSpec]:
    """Validate a call and cast to the compute dtype; zero padding is left to the algorithm.

    A non-zero ``padding_mode`` is applied here (it needs the input's values), and the returned
    spec then describes a call on the padded input with no padding left. For ``zeros`` the input
    comes back unpadded with ``spec.pad`` still to apply, so an algorithm can read zeros where a
    tap falls outside the input instead of first copying the whole input into a bigger array.

    Returns
    -------
    x : ``(N, C_in, H, W)`` C-contiguous, compute dtype (``H, W`` = ``spec.h, spec.w``)
    weight : ``(C_out, C_in/groups, kH, kW)`` C-contiguous, compute dtype
    bias : ``(C_out,)`` or None, compute dtype
    spec : with ``padding_mode == "zeros"`` always
    """
    xa, wa, ba, spec = _checked(x, weight, bias, stride, padding, dilation, groups, padding_mode)
    if padding_mode != "zeros" and any(spec.pad):
        xa = pad_input(xa, spec.pad, padding_mode)
        spec = replace(spec, h=spec.hp, w=spec.wp, pad=(0, 0, 0, 0))
    if spec.padding_mode != "zeros":
        spec = replace(spec, padding_mode="zeros")
    return xa, wa, ba, spec


def zero_padded(x: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``x`` with the spec's (zero) padding applied: ``(N, C, Hp, Wp)``."""
    return pad_input(x, spec.pad, "zeros")


def chunks(total: int, per_item_bytes: int, budget: int | None = None) -> list[tuple[int, int]]:
    """Split ``range(total)`` into consecutive ``(start, stop)`` pieces of at most
    ``budget // per_item_bytes`` items (at least one item each)."""
    budget = WORK_BYTES if budget is None else budget
    step = max(1, budget // max(1, per_item_bytes))
    return [(start, min(total, start + step)) for start in range(0, total, step)]


def add_bias(out: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Add a per-output-channel bias in place to ``(N, C_out, H, W)`` and return it."""
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out
