"""A running top-R per channel of one layer, in memory that does not grow with the folder.

For each image a channel contributes one candidate: its strongest unit on that image (the
maximum of the channel's map and where it is, the first such unit in row-major order on a tie).
One entry per image is what "top examples" means in the Deep Visualization Toolbox and OpenAI
Microscope: nine crops of one blob in one photo would say nothing new.

**The order** is total and does not depend on how the folder was scanned: value descending,
then the image's *tie rank* ascending. The scan gives each image id its file path's place in the
folder's sorted list (:attr:`LayerTopK.order`; without one, the id itself), so two images with
the same value rank by path, whether they were scanned in one go or one of them was added later
(an image has one candidate per channel, so the path settles every tie; its unit (y, x) never
has to). Adding files moves the ranks but never the relative order of two paths, so a stored row
stays sorted. Both are packed in one ``int64`` key (:func:`keys`; smaller is stronger).

The state of a layer with ``C`` channels is four ``(C, R)`` arrays, each row sorted from the
strongest down, empty slots at the end (value ``-inf``, image ``-1``), and a ``floor`` per
channel. A batch of ``N`` images is merged with one sort of ``(C, R + N)`` keys, only for the
channels the batch can change; the state is the top ``R`` of everything merged whatever the
batches, so a scan cut anywhere gives the same state as one uninterrupted scan.

**Removing images** (deleted or changed files) needs the next candidates, so ``R`` is a deeper
reserve than the ``k`` shown (the scan keeps ``R = 3k``). ``floor[c]`` and ``floor_image[c]``
are the strongest candidate ever dropped from the row: every image not in the row ranks after
it. Removing rows keeps that true, so the row's entries ranked before the floor are still
exactly the top of the remaining images; :meth:`LayerTopK.certain` counts them (a floor image
that is no longer in the folder counts as ranked before every image of its value: entries tied
with it are not certain). When fewer than ``k`` are certain the caller must scan again
(:meth:`LayerTopK.complete`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

NO_IMAGE = -1
# above this share of a batch's candidates entering their rows, finding every unit in one pass
# (argmax) costs less than the maxima first and then the units of those entering
DENSE = 0.15
LAST = 2**31 - 1  # the tie rank of an empty slot (and of a -inf value): after every image
UNKNOWN = -1  # the tie rank of an image the order does not know: before every image


def keys(values: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """``int64`` sort keys of float32 ``values`` (descending; ``-0.0`` is ``0.0``) then tie
    ``ranks`` (ascending, ``-1`` .. ``2**31 - 1``): smaller is stronger."""
    bits = (np.asarray(values, dtype=np.float32) + np.float32(0.0)).view(np.int32)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # an int32 that sorts as the float does
    return ((~ordered).astype(np.int64) << 32) + ranks


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


def maxima(maps: np.ndarray) -> np.ndarray:
    """``(N, C)`` float32: each map's maximum, ``-inf`` for a map holding NaN."""
    n, c = maps.shape[:2]
    best = np.asarray(maps.reshape(n, c, -1).max(axis=2), dtype=np.float32)  # NaN propagates
    best[np.isnan(best)] = -np.inf
    return best


def units(maps: np.ndarray, wanted: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C)`` unit y and x of each map's maximum (the first in row-major order), looked
    for only where ``wanted`` (elsewhere 0): finding the maximum reads a map once, finding
    where it is reads it again, and once a row is full only a few images can still enter it."""
    n, c, h, w = maps.shape
    flat = maps.reshape(n, c, h * w)
    if wanted is None or wanted.sum() > wanted.size * DENSE:  # many of them: one pass over all
        where = flat.argmax(axis=2).astype(np.int32)
        if wanted is not None:
            where[~wanted] = 0
    else:
        where = np.zeros((n, c), dtype=np.int32)
        for i in np.flatnonzero(wanted.any(axis=1)):  # per image: one gather of its maps
            sel = np.flatnonzero(wanted[i])
            where[i, sel] = flat[i, sel].argmax(axis=1)
    return where // w, where % w


class Found(NamedTuple):
    """A batch's candidates for one layer, as :func:`candidates_below` leaves them: those that
    may enter a row, one by one (each ``(M,)``), and per channel the strongest of the rest
    (``(C,)``; key :data:`EMPTY` where none): what lowers the floor."""

    channels: np.ndarray
    values: np.ndarray
    images: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    keys: np.ndarray
    rest_values: np.ndarray
    rest_images: np.ndarray
    rest_keys: np.ndarray


def candidates_below(
    maps: np.ndarray, state: LayerTopK, image_ids: np.ndarray, last: np.ndarray | None = None
) -> Found:
    """:func:`candidates` of a batch for ``state``, split into those ranked before their
    row's last slot, ``last`` (default: ``state``'s now; an older one is weaker: the slot only
    gets stronger, so every candidate that can be kept is among them), with their units, and
    the strongest of the rest per channel (no unit: only its value and image matter)."""
    if maps.shape[1] != state.channels:
        raise ValueError(f"expected {state.channels} channels, got {maps.shape[1]}")
    image_ids = np.asarray(image_ids, dtype=np.int32)
    last = state.last_keys() if last is None else last
    if state.entered > DENSE:  # most will enter, as most of the last batch did: one pass
        best, ys, xs = candidates(maps)  # (argmax, and the values there)
        cand = state.candidate_keys(best, image_ids)
        entering = cand < last[None, :]
    else:
        best = maxima(maps)
        cand = state.candidate_keys(best, image_ids)
        entering = cand < last[None, :]
        ys, xs = units(maps, entering)
    state.entered = float(entering.mean()) if entering.size else state.entered
    n, c = np.nonzero(entering)
    rest = np.where(entering, EMPTY, cand)
    if not len(image_ids):  # no image: no rest either
        rest, image_ids = np.full((1, state.channels), EMPTY), np.full(1, NO_IMAGE, np.int32)
        best = np.full((1, state.channels), -np.inf, np.float32)
    j = rest.argmin(axis=0)
    cols = np.arange(state.channels)
    return Found(
        c,
        best[n, c],
        image_ids[n],
        ys[n, c],
        xs[n, c],
        cand[n, c],
        best[j, cols],
        image_ids[j],
        rest[j, cols],
    )


EMPTY = int(keys(np.float32(-np.inf), np.int64(LAST)))  # the key of an empty slot


class LayerTopK:
    """The running top-``depth`` candidates of every channel of one layer."""

    def __init__(self, channels: int, depth: int) -> None:
        self.channels, self.depth = int(channels), int(depth)
        self.values = np.full((channels, depth), -np.inf, dtype=np.float32)
        self.images = np.full((channels, depth), NO_IMAGE, dtype=np.int32)
        self.ys = np.zeros((channels, depth), dtype=np.int32)
        self.xs = np.zeros((channels, depth), dtype=np.int32)
        self.floor = np.full(channels, -np.inf, dtype=np.float32)
        self.floor_image = np.full(channels, NO_IMAGE, dtype=np.int32)
        # image id -> tie rank (its path's place in the folder's sorted list), or None: the id
        self.order: np.ndarray | None = None
        self.entered = 1.0  # the share of the last batch's candidates that could enter a row

    # -- the order ---------------------------------------------------------------------------

    def ranks(self, images: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``int64`` tie ranks of ``images`` holding ``values``: :data:`LAST` for an empty slot
        or a ``-inf`` value, :data:`UNKNOWN` for an id the order does not know."""
        images = np.asarray(images)
        if self.order is None:
            ranks = images.astype(np.int64)
        else:
            inside = (images >= 0) & (images < len(self.order))
            ranks = np.where(inside, self.order[np.where(inside, images, 0)], UNKNOWN).astype(np.int64)
        ranks[images < 0] = UNKNOWN
        ranks[np.asarray(values) == -np.inf] = LAST
        return ranks

    def _keys(self, values: np.ndarray, images: np.ndarray) -> np.ndarray:
        return keys(values, self.ranks(images, values))

    def floor_keys(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        return self._keys(self.floor[rows], self.floor_image[rows])

    def _lower_floor(
        self, rows: np.ndarray, values: np.ndarray, images: np.ndarray, cand: np.ndarray
    ) -> None:
        """Make the floor of ``rows`` the candidate (``values``, ``images``, keys ``cand``)
        where it ranks before the floor (a dropped candidate)."""
        better = cand < self.floor_keys(rows)
        if better.any():
            at = rows[better]
            self.floor[at], self.floor_image[at] = values[better], images[better]

    # -- adding ------------------------------------------------------------------------------

    def add(self, maps: np.ndarray, image_ids: np.ndarray) -> None:
        """Merge one batch: ``maps`` ``(N, C, H, W)`` (the layer's output, grid last) for the
        images ``image_ids`` ``(N,)``."""
        self.add_candidates(*candidates(maps, self.channels), np.asarray(image_ids, np.int32))

    def candidate_keys(self, best: np.ndarray, image_ids: np.ndarray) -> np.ndarray:
        """``(N, C)`` keys of candidates ``best`` of ``image_ids``; a ``-inf`` one is an empty slot."""
        ranks = self.ranks(image_ids, np.zeros(len(image_ids), np.float32))
        cand = keys(best, ranks[:, None])
        cand[best == -np.inf] = EMPTY
        return cand

    def last_keys(self) -> np.ndarray:
        """``(C,)``: the key of each row's last slot (a candidate must rank before it to enter)."""
        return self._keys(self.values[:, -1], self.images[:, -1])

    def add_candidates(self, best: np.ndarray, ys: np.ndarray, xs: np.ndarray, image_ids: np.ndarray) -> None:
        """Merge ``(N, C)`` candidates (value, unit y, unit x) of the images ``image_ids``
        (not merged before)."""
        n = best.shape[0]
        if n == 0:
            return
        image_ids = np.asarray(image_ids, dtype=np.int32)
        best = np.asarray(best, dtype=np.float32)
        cand = self.candidate_keys(best, image_ids)
        ids = np.broadcast_to(image_ids[:, None], best.shape)
        last = self._keys(self.values[:, -1], self.images[:, -1])  # (C,)
        top = cand.argmin(axis=0)
        cols = np.arange(self.channels)
        strongest_key = cand[top, cols]
        # only rows where some candidate ranks before the row's last slot can change; the rest
        # only lower their floor to their strongest candidate
        change = strongest_key < last
        stay = np.flatnonzero(~change)
        if stay.size:
            self._lower_floor(stay, best[top[stay], stay], image_ids[top[stay]], strongest_key[stay])
        change = np.flatnonzero(change)
        if change.size == 0:
            return
        best, ys, xs, cand, ids = (
            best[:, change],
            ys[:, change],
            xs[:, change],
            cand[:, change],
            ids[:, change],
        )
        # a candidate that does not rank before its row's last slot is dropped before the sort
        # (its floor is lowered to the strongest of them); the sort then takes the row plus the
        # most any row keeps (all N early on, a few later)
        keep = cand < last[change][None, :]
        out = np.where(keep, EMPTY, cand)
        j = out.argmin(axis=0)
        m = np.arange(change.size)
        self._lower_floor(change, best[j, m], ids[j, m], out[j, m])
        width = int(keep.sum(axis=0).max())
        if width < n:
            pick = np.argsort(~keep, axis=0, kind="stable")[:width]  # kept first
            ok = keep[pick, m[None, :]]
            best = np.where(ok, best[pick, m[None, :]], -np.inf).astype(np.float32)
            cand = np.where(ok, cand[pick, m[None, :]], EMPTY)
            ids = np.where(ok, ids[pick, m[None, :]], NO_IMAGE)
            ys, xs = ys[pick, m[None, :]], xs[pick, m[None, :]]
        self._merge(change, best.T, ids.T, ys.T, xs.T, cand.T)

    def add_sparse(
        self,
        channels: np.ndarray,
        values: np.ndarray,
        images: np.ndarray,
        ys: np.ndarray,
        xs: np.ndarray,
        cand: np.ndarray,
    ) -> None:
        """Merge candidates given one by one (each ``(M,)``: channel, value, image, unit y and
        x, key), at most one per image and channel: the rows they fall in, nothing else."""
        if channels.size == 0:
            return
        by = np.argsort(channels, kind="stable")
        channels = channels[by]
        change, start, counts = np.unique(channels, return_index=True, return_counts=True)
        row = np.repeat(np.arange(change.size), counts)
        at = np.arange(channels.size) - np.repeat(start, counts)
        shape = (change.size, int(counts.max()))
        packed = [
            np.full(shape, fill, dtype=dtype)
            for fill, dtype in (
                (-np.inf, np.float32),
                (NO_IMAGE, np.int32),
                (0, np.int32),
                (0, np.int32),
                (EMPTY, np.int64),
            )
        ]
        for dense, given in zip(packed, (values, images, ys, xs, cand), strict=True):
            dense[row, at] = given[by]
        self._merge(change, *packed)

    def _merge(
        self,
        change: np.ndarray,
        best: np.ndarray,
        ids: np.ndarray,
        ys: np.ndarray,
        xs: np.ndarray,
        cand: np.ndarray,
    ) -> None:
        """Merge ``(m, w)`` candidates into the rows ``change`` ``(m,)`` with one sort; the
        strongest falling off a row lowers its floor."""
        m = np.arange(change.size)
        row_keys = self._keys(self.values[change], self.images[change])
        all_keys = np.concatenate([row_keys, cand], axis=1)  # (m, R + w)
        values = np.concatenate([self.values[change], best.astype(np.float32, copy=False)], axis=1)
        images = np.concatenate([self.images[change], ids.astype(np.int32, copy=False)], axis=1)
        ys_all = np.concatenate([self.ys[change], ys.astype(np.int32, copy=False)], axis=1)
        xs_all = np.concatenate([self.xs[change], xs.astype(np.int32, copy=False)], axis=1)
        order = np.argsort(all_keys, axis=1, kind="stable")
        rows = m[:, None]
        all_keys, values, images = all_keys[rows, order], values[rows, order], images[rows, order]
        ys_all, xs_all = ys_all[rows, order], xs_all[rows, order]
        r = self.depth
        # the strongest candidate falling off the row (or an empty slot: nothing real)
        self._lower_floor(change, values[:, r], images[:, r], all_keys[:, r])
        self.values[change], self.images[change] = values[:, :r], images[:, :r]
        self.ys[change], self.xs[change] = ys_all[:, :r], xs_all[:, :r]
        self._clear_empty()

    def _clear_empty(self) -> None:
        empty = self.values == -np.inf  # an image without a finite value is no entry
        self.images[empty] = NO_IMAGE
        self.ys[empty] = self.xs[empty] = 0

    # -- removing ----------------------------------------------------------------------------

    def remove(self, image_ids: np.ndarray) -> int:
        """Drop every entry of ``image_ids``; the rows close up. Returns the entries removed."""
        gone = np.isin(self.images, np.asarray(image_ids, dtype=np.int32)) & (self.images >= 0)
        count = int(gone.sum())
        if count:
            self.values[gone] = -np.inf
            self._clear_empty()
            order = np.argsort(-self.values, axis=1, kind="stable")  # keeps the rows' order
            rows = np.arange(self.channels)[:, None]
            for name in ("values", "images", "ys", "xs"):
                setattr(self, name, getattr(self, name)[rows, order])
        return count

    def certain(self) -> np.ndarray:
        """``(C,)``: how many leading entries of each row are known to be the true top (all
        filled ones while nothing was ever dropped)."""
        filled = self.images >= 0
        sure = filled & (self._keys(self.values, self.images) < self.floor_keys()[:, None])
        return np.where(np.isneginf(self.floor), filled.sum(axis=1), sure.sum(axis=1))

    def complete(self, k: int) -> bool:
        """Whether every channel's first ``k`` entries are exact: nothing was ever dropped from
        its row, or at least ``k`` entries are certain."""
        return bool(np.all(np.isneginf(self.floor) | (self.certain() >= k)))

    # -- persistence -------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The state as raw arrays (values, images, ys, xs, floor, floor_image): a memory copy,
        no format (the order is the scan's, not stored)."""
        return b"".join(
            a.tobytes() for a in (self.values, self.images, self.ys, self.xs, self.floor, self.floor_image)
        )

    @classmethod
    def from_bytes(cls, data: bytes, channels: int, depth: int) -> LayerTopK:
        made = cls(channels, depth)
        n = channels * depth
        if len(data) != 4 * (4 * n + 2 * channels):
            raise ValueError(f"a stored state of {len(data)} bytes is not {channels}x{depth}")
        parts = np.split(np.frombuffer(data, dtype=np.uint8), np.cumsum([4 * n] * 4 + [4 * channels]))
        made.values = parts[0].view(np.float32).reshape(channels, depth).copy()
        made.images, made.ys, made.xs = (p.view(np.int32).reshape(channels, depth).copy() for p in parts[1:4])
        made.floor = parts[4].view(np.float32).copy()
        made.floor_image = parts[5].view(np.int32).copy()
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
            for n in ("values", "images", "ys", "xs", "floor", "floor_image")
        )


class Gathered:
    """Candidates of several batches merged into ``state`` with one sort: a merge costs about
    ``R + N`` per row, so merging 64 images at once costs per image about a third of merging
    batches of 16. Only the candidates that may enter a row wait (late in a scan, a few per
    batch), so a merge touches only their rows. Merging is order-free (the state is the top by
    (value, tie rank) of everything merged, its floor the best candidate left out), so when the
    merge happens changes nothing."""

    def __init__(self, state: LayerTopK, limit: int = 64) -> None:
        self.state, self.limit = state, limit
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._count = 0

    def add(self, maps: np.ndarray, image_ids: np.ndarray) -> None:
        """Gather a batch: ``maps`` ``(N, C, H, W)`` of the images ``image_ids``."""
        self.add_found(candidates_below(maps, self.state, image_ids), len(image_ids))

    def add_found(self, found: Found, images: int) -> None:
        """Gather a batch of ``images`` images' candidates (:func:`candidates_below`): the rest
        lower the floors now, those that may enter wait for the next merge."""
        state = self.state
        rest = np.flatnonzero(found.rest_keys != EMPTY)
        if rest.size:
            state._lower_floor(rest, found.rest_values[rest], found.rest_images[rest], found.rest_keys[rest])
        self._parts.append(found[:6])
        self._count += images
        if self._count >= self.limit:
            self.flush()

    def flush(self) -> LayerTopK:
        if self._parts:
            self.state.add_sparse(*(np.concatenate(p) for p in zip(*self._parts, strict=True)))
            self._parts, self._count = [], 0
        return self.state
