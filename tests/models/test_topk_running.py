"""The running top-R against the brute-force answer: every candidate of every image, sorted."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.topk.running import Gathered, LayerTopK


def _oracle(values: np.ndarray, ys: np.ndarray, xs: np.ndarray, ids: np.ndarray, depth: int):
    """values (N, C) of images ``ids``: per channel the first ``depth`` of (value desc, id asc)."""
    rows = []
    for c in range(values.shape[1]):
        order = sorted(range(len(ids)), key=lambda i: (-values[i, c], ids[i]))
        rows.append([(int(ids[i]), float(values[i, c]), int(ys[i, c]), int(xs[i, c])) for i in order[:depth]])
    return rows


def _state_rows(state: LayerTopK):
    return [
        [
            (int(state.images[c, r]), float(state.values[c, r]), int(state.ys[c, r]), int(state.xs[c, r]))
            for r in range(state.depth)
            if state.images[c, r] >= 0
        ]
        for c in range(state.channels)
    ]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_batches_merge_to_the_sorted_answer_ties_broken_by_image(data) -> None:
    channels = data.draw(st.integers(1, 5))
    depth = data.draw(st.integers(1, 12))
    n = data.draw(st.integers(1, 60))
    # few distinct values: many ties, which only the (value, image id) order settles
    values = np.array(
        data.draw(st.lists(st.integers(0, 4), min_size=n * channels, max_size=n * channels)), dtype=np.float32
    ).reshape(n, channels)
    ys = np.arange(n * channels, dtype=np.int32).reshape(n, channels) % 7
    xs = np.arange(n * channels, dtype=np.int32).reshape(n, channels) % 5
    ids = np.arange(n, dtype=np.int32) * 3 + 1  # increasing, not contiguous
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=5))))
    state = LayerTopK(channels, depth)
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
        state.add_candidates(values[lo:hi], ys[lo:hi], xs[lo:hi], ids[lo:hi])
    assert _state_rows(state) == _oracle(values, ys, xs, ids, depth)
    # gathered over several batches and merged at once: the same state, floors included
    gathered = Gathered(LayerTopK(channels, depth), limit=data.draw(st.integers(1, 80)))
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
        maps = np.full((hi - lo, channels, 7, 5), -9.0, dtype=np.float32)
        for r in range(hi - lo):
            maps[r, np.arange(channels), ys[lo + r], xs[lo + r]] = values[lo + r]
        gathered.add(maps, ids[lo:hi])
    assert gathered.flush().equal(state)
    # the floor: the largest value of an image that did not make the row
    for c in range(channels):
        below = sorted(values[:, c], reverse=True)[depth:]
        assert state.floor[c] == (below[0] if below else -np.inf)
    restored = LayerTopK.from_bytes(state.to_bytes(), channels, depth)
    assert restored.equal(state)
    k = data.draw(st.integers(1, depth))
    assert state.rows(k) == [
        (c, r, i, v, y, x)
        for c, row in enumerate(_state_rows(state))
        for r, (i, v, y, x) in enumerate(row[:k])
    ]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_after_removing_images_the_certain_entries_are_the_true_top(data) -> None:
    channels, depth, n = 3, data.draw(st.integers(2, 9)), data.draw(st.integers(1, 40))
    values = np.array(
        data.draw(st.lists(st.floats(-5, 5, width=32), min_size=n * channels, max_size=n * channels)),
        dtype=np.float32,
    ).reshape(n, channels)
    zeros = np.zeros((n, channels), dtype=np.int32)
    ids = np.arange(n, dtype=np.int32)
    state = LayerTopK(channels, depth)
    state.add_candidates(values, zeros, zeros, ids)
    gone = np.array(sorted(set(data.draw(st.lists(st.integers(0, n - 1), max_size=n)))), dtype=np.int32)
    before = int(np.isin(state.images, gone).sum())
    assert state.remove(gone) == before
    keep = np.setdiff1d(ids, gone)
    truth = _oracle(values[keep], zeros[keep], zeros[keep], keep, depth)
    got = _state_rows(state)
    certain = state.certain()
    for c in range(channels):
        assert got[c][: certain[c]] == truth[c][: certain[c]]  # what it claims is exact
        assert not (set(i for i, *_ in got[c]) & set(gone.tolist()))
    k = data.draw(st.integers(1, depth))
    if state.complete(k):
        for c in range(channels):
            assert got[c][:k] == truth[c][:k]


def test_a_map_with_nan_does_not_rank_and_the_first_maximum_wins() -> None:
    state = LayerTopK(2, 3)
    maps = np.zeros((2, 2, 3, 4), dtype=np.float32)
    maps[0, 0, 1, 2] = maps[0, 0, 2, 1] = 5.0  # a tie: row-major first is (1, 2)
    maps[0, 1, 0, 0] = np.nan
    maps[1, 1, 2, 3] = 1.0
    state.add(maps, np.array([10, 11]))
    assert (state.images[0, 0], state.ys[0, 0], state.xs[0, 0]) == (10, 1, 2)
    assert state.images[1].tolist() == [11, -1, -1]  # image 10's NaN map is not a candidate
    assert (state.ys[1, 0], state.xs[1, 0]) == (2, 3)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_ties_rank_by_the_order_given_whatever_the_batches_and_removals(data) -> None:
    """With an order (image id -> tie rank: the scan's path order), rows are (value desc, rank
    asc) however the images were cut into batches, merged late or taken out; the certain
    entries after a removal are the true top."""
    channels, depth, n = 3, data.draw(st.integers(1, 8)), data.draw(st.integers(1, 40))
    values = np.array(
        data.draw(st.lists(st.integers(0, 3), min_size=n * channels, max_size=n * channels)), dtype=np.float32
    ).reshape(n, channels)
    ys = np.arange(n * channels, dtype=np.int32).reshape(n, channels) % 7
    xs = np.arange(n * channels, dtype=np.int32).reshape(n, channels) % 5
    ids = np.arange(n, dtype=np.int32)
    order = np.array(data.draw(st.permutations(range(n))), dtype=np.int64)  # rank of each id
    shuffled = np.array(data.draw(st.permutations(range(n))), dtype=np.int32)  # merge order
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=5))))

    def oracle(keep: np.ndarray) -> list:
        rows = []
        for c in range(channels):
            best = sorted(keep, key=lambda i: (-values[i, c], order[i]))[:depth]
            rows.append([(int(i), float(values[i, c]), int(ys[i, c]), int(xs[i, c])) for i in best])
        return rows

    state = LayerTopK(channels, depth)
    state.order = order
    gathered = Gathered(LayerTopK(channels, depth), limit=data.draw(st.integers(1, 50)))
    gathered.state.order = order
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
        part = shuffled[lo:hi]
        state.add_candidates(values[part], ys[part], xs[part], part)
        maps = np.full((len(part), channels, 7, 5), -9.0, dtype=np.float32)
        for r, i in enumerate(part):
            maps[r, np.arange(channels), ys[i], xs[i]] = values[i]
        gathered.add(maps, part)
    assert _state_rows(state) == oracle(ids)
    assert gathered.flush().equal(state)  # units looked for only where they can enter: the same
    gone = np.array(sorted(set(data.draw(st.lists(st.integers(0, n - 1), max_size=n)))), dtype=np.int32)
    state.remove(gone)
    truth, got, certain = oracle(np.setdiff1d(ids, gone)), _state_rows(state), state.certain()
    for c in range(channels):
        assert got[c][: certain[c]] == truth[c][: certain[c]]
    # a floor image no longer known (deleted): entries tied with it are not claimed certain
    state.order = order.copy()
    state.order[gone] = -1
    certain = state.certain()
    for c in range(channels):
        assert got[c][: certain[c]] == truth[c][: certain[c]]
