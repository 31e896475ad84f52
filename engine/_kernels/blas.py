"""GEMM pieces through NumPy's own BLAS, callable from compiled code.

``gemm`` is NumPy's OpenBLAS ``cblas_sgemm`` as a ctypes function, found by
:mod:`engine._parallel` (float32 only: see ``_NumpyBlas.sgemm`` there), OpenBLAS held to one
thread meanwhile: the engines' matrix products are the same BLAS calls ``np.matmul`` makes, cut
into ranges that the ``*_team`` wrappers run on numba's OpenMP threads beside every other
kernel's pieces (one thread pool for the engine). Matrices are row-major with unit column
stride, passed as addresses and row strides: views with padded rows need no copy.
"""

from __future__ import annotations

from numba import njit, prange

from engine._kernels._shared import OPTS as _OPTS

_ROW_MAJOR, _NO_TRANS = 101, 111


@njit(**_OPTS)
def gemm_rows(gemm, k, n, pa, lda, pb, ldb, pc, ldc, size, r0, r1):  # pragma: no cover
    """Rows ``r0 .. r1`` of ``C = A @ B`` (``A`` with ``k`` columns, ``B`` with ``n``): each
    matrix is its first element's address and its row stride in elements (``size`` bytes
    each). Addresses, not arrays: one compiled form for every layout and every read-only flag
    (numba compiles a function again for each array type it meets)."""
    if r1 > r0:
        gemm(
            _ROW_MAJOR,
            _NO_TRANS,
            _NO_TRANS,
            r1 - r0,
            n,
            k,
            1.0,
            pa + r0 * lda * size,
            lda,
            pb,
            ldb,
            0.0,
            pc + r0 * ldc * size,
            ldc,
        )


@njit(**_OPTS)
def gemm_cols(gemm, m, k, pa, lda, pb, ldb, pc, ldc, size, j0, j1):  # pragma: no cover
    """Columns ``j0 .. j1`` of ``C = A @ B`` (``A`` with ``m`` rows and ``k`` columns; see
    :func:`gemm_rows`)."""
    if j1 > j0:
        gemm(
            _ROW_MAJOR,
            _NO_TRANS,
            _NO_TRANS,
            m,
            j1 - j0,
            k,
            1.0,
            pa,
            lda,
            pb + j0 * size,
            ldb,
            0.0,
            pc + j0 * size,
            ldc,
        )


@njit(**_OPTS)
def gemm_batch(gemm, m, n, k, pa, lda, sa, pb, ldb, sb, pc, ldc, sc, k0, k1):  # pragma: no cover
    """``C[i] = A[i] @ B[i]`` for ``k0 <= i < k1``: ``sa``, ``sb``, ``sc`` are the byte strides
    from one matrix of a batch to the next (see :func:`gemm_rows`)."""
    for i in range(k0, k1):
        gemm(
            _ROW_MAJOR,
            _NO_TRANS,
            _NO_TRANS,
            m,
            n,
            k,
            1.0,
            pa + i * sa,
            lda,
            pb + i * sb,
            ldb,
            0.0,
            pc + i * sc,
            ldc,
        )


def threading_layer() -> str:
    """The threading layer numba loaded for the ``*_team`` wrappers (after the first call)."""
    import numba

    return numba.threading_layer()


@njit(**_OPTS)
def probe(out, i0, i1):  # pragma: no cover - compiled
    """Marks ``out[i0:i1]``: the first launch of a team, to learn whether a threading layer
    loads at all."""
    for i in range(i0, i1):
        out[i] = i + 1


# Each kernel's pieces on numba's OpenMP team (see engine._parallel.run_kernel): one wrapper
# per kernel, written out, because numba's disk cache cannot keep a function that takes a
# compiled function as an argument (its type names the function's address in this process).


@njit(parallel=True, **_OPTS)
def gemm_rows_team(gemm, k, n, pa, lda, pb, ldb, pc, ldc, size, bounds):  # pragma: no cover
    for p in prange(bounds.shape[0] - 1):
        gemm_rows(gemm, k, n, pa, lda, pb, ldb, pc, ldc, size, bounds[p], bounds[p + 1])


@njit(parallel=True, **_OPTS)
def gemm_batch_team(gemm, m, n, k, pa, lda, sa, pb, ldb, sb, pc, ldc, sc, bounds):  # pragma: no cover
    for p in prange(bounds.shape[0] - 1):
        gemm_batch(gemm, m, n, k, pa, lda, sa, pb, ldb, sb, pc, ldc, sc, bounds[p], bounds[p + 1])


@njit(parallel=True, **_OPTS)
def gemm_cols_team(gemm, m, k, pa, lda, pb, ldb, pc, ldc, size, bounds):  # pragma: no cover
    for p in prange(bounds.shape[0] - 1):
        gemm_cols(gemm, m, k, pa, lda, pb, ldb, pc, ldc, size, bounds[p], bounds[p + 1])


@njit(parallel=True, **_OPTS)
def probe_team(out, bounds):  # pragma: no cover - compiled
    for p in prange(bounds.shape[0] - 1):
        probe(out, bounds[p], bounds[p + 1])
