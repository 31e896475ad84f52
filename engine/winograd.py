"""Winograd minimal filtering, F(2x2, 3x3) and F(4x4, 3x3) (Lavin & Gray, 2016).

The output is cut into m x m tiles; each needs an a x a input tile (a = m + 2). In the
transformed domain a 3x3 correlation of a tile is an element-wise product, so per tile::

    Y = A^T [(G g G^T) ⊙ (B^T d B)] A

Summed over input channels, the element-wise products become one GEMM per transform point:
16 (F(2,3)) or 36 (F(4,3)) GEMMs instead of 9 taps, with 2.25x (F(2,3)) or 4x (F(4,3)) fewer
multiplications than direct convolution.

Steps, as :func:`winograd_conv` writes them in NumPy:

1. filter transform ``U = G g G^T`` per (output, input) channel pair (:func:`filter_transform`);
   it depends on the weights only, so it is cached when the caller passes a ``weight_key``;
2. input transform ``V = B^T d B`` per tile and input channel, as two 1-D transforms (one along
   each axis: ``a*a*2a`` multiply-adds per tile, where a Kronecker matrix would take ``a^4``);
3. one batched GEMM, ``M[k] = U[k] @ V[k]`` for each of the ``a*a`` points ``k``: the channel sum;
4. output transform ``Y = A^T M A`` per tile and output channel, plus bias; tiles past the
   output's edge are cropped.

The output is done in bands of tile rows so that ``V`` and ``M`` stay within the engines' work
budget (:data:`engine._common.WORK_BYTES`). With numba present, steps 2 and 4 run as compiled
single-pass kernels (:mod:`engine._kernels`) that also read the zero padding in place.

Winograd applies to 3x3 kernels with stride 1 and dilation 1 only; for any other shape this
engine runs im2col+GEMM and says so in the algorithm it reports.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine import _common, _jit
from engine import _parallel as parallel
from engine._common import ConvSpec, add_bias, chunks, zero_padded
from engine._workspace import scratch
from engine.base import Engine
from engine.im2col import Im2colEngine

# (B^T, G, A^T) of F(2x2, 3x3): points 0, 1, -1
_F23 = (
    np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64),
    np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64),
    np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64),
)
# (B^T, G, A^T) of F(4x4, 3x3): points 0, 1, -1, 2, -2
_F43 = (
    np.array(
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        dtype=np.float64,
    ),
    np.array(
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ],
        dtype=np.float64,
    ),
    np.array(
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
        dtype=np.float64,
    ),
)


def matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(B^T, G, A^T)`` of F(m x m, 3x3), float64."""
    return _F23 if m == 2 else _F43


def applies(spec: ConvSpec) -> bool:
    """Winograd F(m, 3x3) needs a 3x3 kernel, stride 1 and dilation 1."""
    return (spec.kh, spec.kw) == (3, 3) and spec.stride == (1, 1) and spec.dilation == (1, 1)


def tile_size(spec: ConvSpec) -> int:
    """Output tile m: F(4x4) once the map is big enough for its tiles to pay off, else F(2x2)."""
    return 4 if min(spec.out_h, spec.out_w) >= 8 else 2


def filter_transform(weight: np.ndarray, spec: ConvSpec, m: int, use_jit: bool = False) -> np.ndarray:
    """``U = G g G^T`` of every 3x3 filter, as ``(a*a, G, C_out/G, C_in/G)`` (GEMM-ready).

    Computed in float64 and rounded once to the compute dtype. The NumPy form broadcasts
    ``G @ g @ G.T`` over the filters; the compiled one does the same two 1-D transforms per
    filter in one pass (the NumPy form takes ~0.3 s for a 512x512 layer, on every call that
    has no ``weight_key``).
    """
    _, g_mat, _ = matrices(m)
    a = m + 2
    g, og, cg = spec.groups, spec.c_out_per_group, spec.c_in_per_group
    kernels = _jit.kernels() if use_jit else None
    if kernels is not None:
        w9 = weight.reshape(-1, 9)
        u = np.empty((a * a, w9.shape[0]), dtype=spec.dtype)
        parallel.run_kernel(
            kernels.winograd_filter, (w9, g_mat, u), parallel.kernel_pieces(w9.shape[0], 4 * a * a)
        )
        return u.reshape(a * a, g, og, cg)
    u = g_mat @ weight.astype(np.float64) @ g_mat.T  # (O, C/G, a, a)
    u = u.reshape(g, og, cg, a * a).transpose(3, 0, 1, 2)
    return np.ascontiguousarray(u, dtype=spec.dtype)


def _tiles(xp: np.ndarray, spec: ConvSpec, m: int, ty0: int, ty1: int, tw: int) -> np.ndarray:
    """The input tiles of tile rows ``ty0 .. ty1``: ``(C, N, rows, tw, a, a)``, from the padded
    input ``xp`` zero-extended so that the tiles cover the output exactly."""
    a = m + 2
    need_h, need_w = ty1 * m + 2, tw * m + 2
    part = np.zeros((spec.n, spec.c_in, need_h - ty0 * m, need_w), dtype=spec.dtype)
    src = xp[:, :, ty0 * m : need_h, :need_w]
    part[:, :, : src.shape[2], : src.shape[3]] = src
    s_n, s_c, s_h, s_w = part.strides
    return as_strided(
        part,
        shape=(spec.c_in, spec.n, ty1 - ty0, tw, a, a),
        strides=(s_c, s_n, m * s_h, m * s_w, s_h, s_w),
        writeable=False,
    )


def winograd_conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    spec: ConvSpec,
    m: int,
    u: np.ndarray | None = None,
    use_jit: bool = False,
) -> np.ndarray:
    """F(m x m, 3x3) of ``x`` ``(N, C, H, W)`` (zero padding ``spec.pad`` applied here) with
    ``weight`` ``(O, C/G, 3, 3)``; ``u`` is :func:`filter_transform`'s result if already known.

    Returns ``(N, O, H_out, W_out)``, bias added.
    """
    bt, _, at = matrices(m)
    a = m + 2
    dt = spec.dtype
    n, g, cg, og = spec.n, spec.groups, spec.c_in_per_group, spec.c_out_per_group
    if u is None:
        u = filter_transform(weight, spec, m, use_jit)
    u_gemm = u.reshape(a * a * g, og, cg)
    th, tw = -(-spec.out_h // m), -(-spec.out_w // m)
    kernels = _jit.kernels() if use_jit else None
    out = np.empty(spec.output_shape, dtype=dt)
    xp = zero_padded(x, spec) if kernels is None else x
    # V and M of one tile row: a*a values per tile, input and output channels
    row_bytes = a * a * n * tw * (spec.c_in + spec.c_out) * dt.itemsize
    budget = min(_common.WORK_BYTES, _common.CACHE_BYTES) if kernels is not None else None
    for ty0, ty1 in chunks(th, row_bytes, budget):
        p = n * (ty1 - ty0) * tw
        if kernels is not None:
            _jit_band(kernels, x, u_gemm, bias, spec, m, ty0, ty1, tw, out)
            continue
        d = _tiles(xp, spec, m, ty0, ty1, tw)  # (C, N, rows, tw, a, a)
        vt = bt.astype(dt) @ d @ bt.T.astype(dt)  # B^T d B, two 1-D transforms per tile
        v = np.ascontiguousarray(vt.reshape(spec.c_in, p, a * a).transpose(2, 0, 1))
        # the channel sum: one GEMM per transform point (and group)
        mm = np.matmul(u_gemm, v.reshape(a * a * g, cg, p))  # (a*a*G, O/G, P)
        tiles = mm.reshape(a * a, spec.c_out, p).transpose(1, 2, 0)
        tiles = tiles.reshape(spec.c_out, n, ty1 - ty0, tw, a, a)
        y = at.astype(dt) @ tiles @ at.T.astype(dt)  # A^T M A: (O, N, rows, tw, m, m)
        y = y.transpose(1, 0, 2, 4, 3, 5).reshape(n, spec.c_out, (ty1 - ty0) * m, tw * m)
        y0, y1 = ty0 * m, min(ty1 * m, spec.out_h)
        out[:, :, y0:y1] = y[:, :, : y1 - y0, : spec.out_w]
    if kernels is None:
        add_bias(out, bias)
    return out


def _jit_band(
    kernels,
    x: np.ndarray,
    u_gemm: np.ndarray,
    bias: np.ndarray | None,
    spec: ConvSpec,
    m: int,
    ty0: int,
    ty1: int,
    tw: int,
    out: np.ndarray,
) -> None:
    """Tile rows ``ty0 .. ty1`` with the compiled transforms, each step split over the cores."""
    a, g, dt = m + 2, spec.groups, spec.dtype
    cg, og = spec.c_in_per_group, spec.c_out_per_group
    p = spec.n * (ty1 - ty0) * tw
    v = scratch("winograd V", (a * a, spec.c_in, p), dt)
    parallel.run_kernel(
        kernels.winograd_input,
        (x, v, m, spec.pad[0], spec.pad[2], ty0, ty1, tw),
        parallel.kernel_pieces(spec.n * spec.c_in, a * a * p // spec.n),
    )
    v3 = v.reshape(a * a * g, cg, p)
    mm = scratch("winograd M", (a * a * g, og, p), dt)
    parallel.matmul_batch(u_gemm, v3, mm, parallel.gemm_pieces(a * a * g, og * cg * p))
    b = np.empty(0, dtype=dt) if bias is None else bias
    mm3 = mm.reshape(a * a, spec.c_out, p)
    parallel.run_kernel(
        kernels.winograd_output,
        (mm3, b, out, m, ty0, ty1, tw),
        parallel.kernel_pieces(spec.n * spec.c_out, a * a * p // spec.n),
    )


class WinogradEngine(Engine):
    name = "winograd"
    description = "Winograd minimal filtering F(2x2,3x3) / F(4x4,3x3); im2col for other shapes"

    def __init__(self, jit: bool = True, tile: int | None = None) -> None:
        """``tile``: always F(tile x tile, 3x3) (2 or 4); by default chosen by :func:`tile_size`."""
        super().__init__()
        if tile not in (None, 2, 4):
            raise ValueError(f"Winograd tiles here are 2 or 4, got {tile!r}")
        self.jit = jit
        self.tile = tile
        self._fallback = Im2colEngine(jit=jit)

    def _tile(self, spec: ConvSpec) -> int:
        return self.tile if self.tile is not None else tile_size(spec)

    def algorithm_for(self, spec: ConvSpec) -> str:
        if applies(spec):
            m = self._tile(spec)
            return f"winograd F({m}x{m},3x3)"
        why = "winograd needs a 3x3 kernel, stride 1, dilation 1"
        return f"{self._fallback.algorithm_for(spec)} ({why})"

    def clear_weight_cache(self) -> None:
        super().clear_weight_cache()
        self._fallback.clear_weight_cache()

    def _compute(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        spec: ConvSpec,
        weight_key: Hashable | None,
    ) -> tuple[np.ndarray, str]:
        if not applies(spec):
            out, _ = self._fallback._compute(x, weight, bias, spec, weight_key)
            return out, self.algorithm_for(spec)
        m = self._tile(spec)
        u = self._weight_derived(
            weight_key,
            ("G g G^T", m, weight.shape, spec.groups, spec.dtype.str),
            lambda: filter_transform(weight, spec, m, self.jit),
        )
        out = winograd_conv(x, weight, bias, spec, m, u, use_jit=self.jit)
        return out, self.algorithm_for(spec)
