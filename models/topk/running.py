"""A running top-R per channel of one layer, in memory that does not grow with the folder.

For each image a channel contributes one candidate: its strongest unit on that image (the
maximum of the channel's map and where it is, the first such unit in row-major order on a tie).
One entry per image is what "top examples" means in the Deep Visualization Toolbox and OpenAI
Microscope: nine crops of one blob in one photo would say nothing new.

The state of a layer with ``C`` channels is four ``(C, R)`` arrays, each row sorted from the
strongest down (value descending, then image id ascending), empty slots at the end (value
``-inf``, image ``-1``), and a ``floor`` per channel. A batch of ``N`` images is merged with one
stable sort of ``(C, R + N)`` candidates, only for the channels the batch can change. Image ids
grow in the order images are merged, so the stable sort breaks ties by image id, and a scan cut
into any batches gives the same state as one uninterrupted scan of the same batches.

**Removing images** (deleted or changed files) needs the next candidates, so ``R`` is a deeper
reserve than the ``k`` shown (the scan keeps ``R = 3k``). ``floor[c]`` is the largest value of
any image dropped from the row: every image not in the row has its value at most ``floor[c]``.
Removing rows keeps that true, so the row's entries at or above ``floor`` are still exactly the
top of the remaining images; :meth:`LayerTopK.certain` counts them. When fewer than ``k`` are
certain the caller must scan again (:meth:`LayerTopK.complete`).
"""

from __future__ import annotations

import numpy as np

NO_IMAGE = -1


def candidates(maps: np.ndarray, channels: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image's candidate per channel: ``maps`` ``(N, C, H, W)`` -> ``(N, C)`` values
    (float32, ``-inf`` for a map holding NaN: it does not rank), unit y and x (int32): the
    channel's maximum, the first in row-major order on a tie."""
    n, c, h, w = maps.shape
    if channels is not None and c != channels:
        raise ValueError(f"expected {channels} channels, got {c}")
    flat = maps.reshape(n, c, h * w)
    where = flat.argmax(axis=2)  # NaN counts as the maximum, so a NaN map is caught below
    best = np.take_along_axis(flat, where[..., None], axis=2)[..., 0].astype(np.float32)
    best[np.isnan(best)] = -np.inf
    where = where.astype(np.int32)
    return best, where // w, where % w


class LayerTopK:
    """The running top-``depth`` candidates of every channel of one layer."""

    def __init__(self, channels: int, depth: int) -> None:
        self.channels, self.depth = int(channels), int(depth)
        self.values = np.full((channels, depth), -np.inf, dtype=np.float32)
        self.images = np.full((channels, depth), NO_IMAGE, dtype=np.int32)
        self.ys = np.zeros((channels, depth), dtype=np.int32)
        self.xs = np.zeros((channels, depth), dtype=np.int32)
        self.floor = np.full(channels, -np.inf, dtype=np.float32)

    # -- adding ------------------------------------------------------------------------------

    def add(self, maps: np.ndarray, image_ids: np.ndarray) -> None:
        """Merge one batch: ``maps`` ``(N, C, H, W)`` (the layer's output, grid last) for the
        images ``image_ids`` ``(N,)``, which must be larger than every id merged before."""
        self.add_candidates(*candidates(maps, self.channels), np.asarray(image_ids, np.int32))

    def add_candidates(self, best: np.ndarray, ys: np.ndarray, xs: np.ndarray, image_ids: np.ndarray) -> None:
        """Merge ``(N, C)`` candidates (value, unit y, unit x) of the images ``image_ids``."""
        n = best.shape[0]
        if n == 0:
            return
        # only rows where some candidate beats the row's last slot can change (a tie with the
        # last slot loses: the row's entries have smaller ids); the rest only raise their floor
        strongest = best.max(axis=0)
        change = np.flatnonzero(strongest > self.values[:, -1])
        stay = np.ones(self.channels, dtype=bool)
        stay[change] = False
        np.maximum(self.floor, np.where(stay, strongest, -np.inf), out=self.floor)
        if change.size == 0:
            return
        best, ys, xs = best[:, change], ys[:, change], xs[:, change]  # (N, m)
        ids = np.broadcast_to(np.asarray(image_ids, dtype=np.int32)[:, None], best.shape)
        # a candidate that does not beat its row's last slot is dropped before the sort; the
        # sort then takes the row plus the most any row keeps (all N early on, a few later)
        keep = best > self.values[change, -1]
        self.floor[change] = np.maximum(self.floor[change], np.where(keep, -np.inf, best).max(axis=0))
        width = int(keep.sum(axis=0).max())
        if width < n:
            pick = np.argsort(~keep, axis=0, kind="stable")[:width]  # kept first, in id order
            cols = np.arange(change.size)[None, :]
            ok = keep[pick, cols]
            best = np.where(ok, best[pick, cols], -np.inf)
            ids, ys, xs = ids[pick, cols], ys[pick, cols], xs[pick, cols]
        values = np.concatenate([self.values[change], best.T], axis=1)  # (m, R + width)
        images = np.concatenate([self.images[change], ids.T], axis=1)
        ys_all = np.concatenate([self.ys[change], ys.T.astype(np.int32)], axis=1)
        xs_all = np.concatenate([self.xs[change], xs.T.astype(np.int32)], axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        rows = np.arange(change.size)[:, None]
        values, images = values[rows, order], images[rows, order]
        ys_all, xs_all = ys_all[rows, order], xs_all[rows, order]
        r = self.depth
        dropped = values[:, r]  # the largest value falling off the row (or -inf: nothing real)
        self.floor[change] = np.maximum(self.floor[change], dropped)
        self.values[change], self.images[change] = values[:, :r], images[:, :r]
        self.ys[change], self.xs[change] = ys_all[:, :r], xs_all[:, :r]
        self.images[self.values == -np.inf] = NO_IMAGE  # an image without a finite value

    # -- removing ----------------------------------------------------------------------------

    def remove(self, image_ids: np.ndarray) -> int:
        """Drop every entry of ``image_ids``; the rows close up. Returns the entries removed."""
        gone = np.isin(self.images, np.asarray(image_ids, dtype=np.int32)) & (self.images >= 0)
        count = int(gone.sum())
        if count:
            self.values[gone] = -np.inf
            self.images[gone] = NO_IMAGE
            order = np.argsort(-self.values, axis=1, kind="stable")  # keeps (value, id) order
            rows = np.arange(self.channels)[:, None]
            for name in ("values", "images", "ys", "xs"):
                setattr(self, name, getattr(self, name)[rows, order])
        return count

    def certain(self) -> np.ndarray:
        """``(C,)``: how many leading entries of each row are known to be the true top (all
        filled ones while nothing was ever dropped)."""
        filled = self.images >= 0
        sure = filled & (self.values >= self.floor[:, None])
        return np.where(np.isneginf(self.floor), filled.sum(axis=1), sure.sum(axis=1))

    def complete(self, k: int) -> bool:
        """Whether every channel's first ``k`` entries are exact: nothing was ever dropped from
        its row, or at least ``k`` entries are certain."""
        return bool(np.all(np.isneginf(self.floor) | (self.certain() >= k)))

    # -- persistence -------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The state as raw arrays (values, images, ys, xs, floor): a memory copy, no format."""
        return b"".join(a.tobytes() for a in (self.values, self.images, self.ys, self.xs, self.floor))

    @classmethod
    def from_bytes(cls, data: bytes, channels: int, depth: int) -> LayerTopK:
        made = cls(channels, depth)
        n = channels * depth
        if len(data) != 4 * (4 * n + channels):
            raise ValueError(f"a stored state of {len(data)} bytes is not {channels}x{depth}")
        parts = np.split(np.frombuffer(data, dtype=np.uint8), np.cumsum([4 * n] * 4))
        made.values = parts[0].view(np.float32).reshape(channels, depth).copy()
        made.images, made.ys, made.xs = (p.view(np.int32).reshape(channels, depth).copy() for p in parts[1:4])
        made.floor = parts[4].view(np.float32).copy()
        return made

    def rows(self, k: int | None = None) -> list[tuple[int, int, int, float, int, int]]:
        """The filled entries of the first ``k`` ranks (default: all) as rows ``(channel, rank,
        image, value, y, x)``."""
        c, r = np.nonzero(self.images[:, :k] >= 0)
        return list(
            zip(
                c.tolist(),
                r.tolist(),
                self.images[c, r].tolist(),
                self.values[c, r].astype(np.float64).tolist(),
                self.ys[c, r].tolist(),
                self.xs[c, r].tolist(),
                strict=True,
            )
        )

    def equal(self, other: LayerTopK) -> bool:
        return all(
            np.array_equal(getattr(self, n), getattr(other, n))
            for n in ("values", "images", "ys", "xs", "floor")
        )


class Gathered:
    """Candidates of several batches merged into ``state`` with one sort: a merge costs about
    ``R + N`` per row, so merging 64 images at once costs per image about a third of merging
    batches of 16. Merging is order-free (the state is the top by (value, id) of everything
    merged, its floor the best value left out), so when the merge happens changes nothing."""

    def __init__(self, state: LayerTopK, limit: int = 64) -> None:
        self.state, self.limit = state, limit
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._count = 0

    def add(self, maps: np.ndarray, image_ids: np.ndarray) -> None:
        best, ys, xs = candidates(maps, self.state.channels)
        self._parts.append((best, ys, xs, np.asarray(image_ids, dtype=np.int32)))
        self._count += len(image_ids)
        if self._count >= self.limit:
            self.flush()

    def flush(self) -> LayerTopK:
        if self._parts:
            self.state.add_candidates(*(np.concatenate(p) for p in zip(*self._parts, strict=True)))
            self._parts, self._count = [], 0
        return self.state
