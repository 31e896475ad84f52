"""What every compiled kernel shares: numba's options and float32 constants.

Indexing: numba wraps negative indices around, so an index it cannot prove non-negative
(``row[q + off]``, ``a[t * m + j]``) costs a branch per element and keeps LLVM from
vectorising the loop; inner loops index slices by the bare loop variable instead.

Constants as float32: a float64 literal would make numba compute float32 data in float64,
which LLVM does not vectorise (4-5x slower). float32 * float64 is float64, so the float64
kernels are unaffected (every constant here is exact in float32).

numba's disk cache checks only the file that defines a kernel (numba's "Notes on Caching":
changes in symbols defined in another file are not recognised, globals are frozen as
constants). So no kernel calls a compiled function of another module, and a change here must
come with a change to every kernel module (or a cleared ``__pycache__``).
"""

from __future__ import annotations

import numpy as np

OPTS = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)

TWO = np.float32(2.0)
FOUR = np.float32(4.0)
FIVE = np.float32(5.0)
EIGHT = np.float32(8.0)
ZERO = np.float32(0.0)
