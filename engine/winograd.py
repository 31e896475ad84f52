"""Winograd minimal filtering, F(2x2, 3x3) and F(4x4, 3x3) (Lavin & Gray, 2016).

The output is cut into m x m tiles; each needs an (m+2) x (m+2) input tile. In the transformed
domain a 3x3 correlation of a tile is an element-wise product, so per tile
``Y = A^T [(G g G^T) ⊙ (B^T d B)] A``. Summed over input channels, the element-wise products
become one GEMM per transform point: 16 (F(2,3)) or 36 (F(4,3)) GEMMs instead of 9 taps, with
2.25x (F(2,3)) or 4x (F(4,3)) fewer multiplications than direct convolution.

The 2-D transforms are applied as one matrix product each, with Kronecker products of the 1-D
matrices (``vec(B^T d B) = (B^T ⊗ B^T) vec(d)``).

Winograd applies to 3x3 kernels with stride 1 and dilation 1 only; for any other shape this
engine runs im2col+GEMM and says so in the algorithm it reports.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine._common import ConvSpec
from engine.base import Engine
from engine.im2col import Im2colEngine

# F(2x2, 3x3): points 0, 1, -1
_F23 = (
    np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64),
    np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64),
    np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64),
)
# F(4x4, 3x3): points 0, 1, -1, 2, -2
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


def applies(spec: ConvSpec) -> bool:
    """Winograd F(m, 3x3) needs a 3x3 kernel, stride 1 and dilation 1."""
    return (spec.kh, spec.kw) == (3, 3) and spec.stride == (1, 1) and spec.dilation == (1, 1)


def tile_size(spec: ConvSpec) -> int:
    """Output tile m: F(4x4) once the map is big enough for its tiles to pay off, else F(2x2)."""
    return 4 if min(spec.out_h, spec.out_w) >= 8 else 2


def winograd_conv(xp: np.ndarray, weight: np.ndarray, spec: ConvSpec, m: int) -> np.ndarray:
    """F(m x m, 3x3) of padded ``xp`` ``(N, C, Hp, Wp)`` with ``weight`` ``(O, C/G, 3, 3)``."""
    bt, g_mat, at = _F23 if m == 2 else _F43
    dt = spec.dtype
    a = m + 2
    kb = np.kron(bt, bt).astype(dt)  # (a*a, a*a)
    kg = np.kron(g_mat, g_mat).astype(dt)  # (a*a, 9)
    ka = np.kron(at, at).astype(dt)  # (m*m, a*a)
    n, g, cg, og = spec.n, spec.groups, spec.c_in_per_group, spec.c_out_per_group
    th, tw = -(-spec.out_h // m), -(-spec.out_w // m)
    # zero-extend so the tiles cover the output exactly; extra outputs are cropped below
    need_h, need_w = th * m + 2, tw * m + 2
    if (need_h, need_w) != (spec.hp, spec.wp):
        ext = np.zeros((n, spec.c_in, need_h, need_w), dtype=dt)
        ext[:, :, : spec.hp, : spec.wp] = xp
        xp = ext
    xp = np.ascontiguousarray(xp, dtype=dt)
    s_n, s_c, s_h, s_w = xp.strides
    # tiles as (C, N, th, tw, a, a): channels first so the GEMM operand needs no further transpose
    tiles = as_strided(
        xp, shape=(spec.c_in, n, th, tw, a, a), strides=(s_c, s_n, m * s_h, m * s_w, s_h, s_w),
        writeable=False,
    ).reshape(spec.c_in, n * th * tw, a * a)
    p = n * th * tw
    v = tiles @ kb.T  # (C, P, a*a): B^T d B for every tile
    v = v.reshape(g, cg, p, a * a).transpose(3, 0, 1, 2)  # (a*a, G, C/G, P)
    u = weight.reshape(spec.c_out, cg, 9).astype(dt) @ kg.T  # (O, C/G, a*a): G g G^T
    u = u.reshape(g, og, cg, a * a).transpose(3, 0, 1, 2)  # (a*a, G, O/G, C/G)
    mm = np.matmul(u, v)  # (a*a, G, O/G, P): the channel sum, one GEMM per transform point
    y = ka @ mm.reshape(a * a, -1)  # (m*m, G*O/G*P): A^T M A
    y = y.reshape(m, m, spec.c_out, n, th, tw).transpose(3, 2, 4, 0, 5, 1)
    y = y.reshape(n, spec.c_out, th * m, tw * m)
    return np.array(y[:, :, : spec.out_h, : spec.out_w], dtype=dt)


class WinogradEngine(Engine):
    name = "winograd"
    description = "Winograd minimal filtering F(2x2,3x3) / F(4x4,3x3); im2col for other shapes"

    def __init__(self) -> None:
        super().__init__()
        self._fallback = Im2colEngine()

    def algorithm_for(self, spec: ConvSpec) -> str:
        if applies(spec):
            m = tile_size(spec)
            return f"winograd F({m}x{m},3x3)"
        why = "winograd needs a 3x3 kernel, stride 1, dilation 1"
        return f"{self._fallback.algorithm_for(spec)} ({why})"

    def _compute(self, xp: np.ndarray, weight: np.ndarray, spec: ConvSpec) -> tuple[np.ndarray, str]:
        if not applies(spec):
            out, _ = self._fallback._compute(xp, weight, spec)
            return out, self.algorithm_for(spec)
        return winograd_conv(xp, weight, spec, tile_size(spec)), self.algorithm_for(spec)
