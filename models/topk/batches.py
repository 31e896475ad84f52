"""A scan's batches: read, run, rank, store (:func:`run_batches`, called by
:func:`models.topk.scanner.scan`).

Two threads share the work. The calling thread runs the model on a batch
(:func:`models.runner.run_batch`) and, between batches, merges the ranked candidates into the
running states (:class:`~models.topk.running.Gathered`: many small NumPy calls that hold the
GIL) and stores the progress. A helper thread meanwhile reads and prepares the next batch
(Pillow's decoding and resizing let go of the GIL) and *measures* the batch before: each
map's maximum, and where it is for the candidates that can still enter a row (a few large
NumPy reductions that let go of the GIL; :func:`~models.topk.running.candidates_below`). So
what holds the GIL stays on one thread, and the big reads use the core the forward pass leaves
idle (the engine's passes keep about one core busy on average). With
:data:`MEASURE_ON_HELPER` off, measuring happens on the calling thread between batches. One
batch at a time and in order, so the result is the same either way.

A batch runs as two halves at once, one per core (:data:`LANES`: the calling thread and a lane
thread, each with the engine held to its own thread by :func:`engine.serial` and torch's ops on
one thread): a scan wants images per second, not one pass's latency, and at batch 1 a mobile
model's small layers gain little from a second core (EfficientNet-Lite0's convolutions take
about as long on one core as on two), so two passes side by side do nearly twice the work. The
halves are measured and merged as they are, never copied into one batch.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

import engine as engines
from models.errors import Cancelled, ConvScopeError, one_line
from models.images import load_image, prepare_image
from models.layers import LayerInfo
from models.runner import run_batch
from models.sources import LoadedModel
from models.topk.running import Gathered, LayerTopK, candidates_below
from models.topk.store import Store

# a scan stores its progress after a batch when this many seconds passed since it last did (so
# after every batch of a slow model; every few batches of a fast one, where rewriting the
# states after each would cost a tenth of the time): a crash loses at most this much scanning,
# a cancel nothing
CHECKPOINT_SECONDS = 3.0
MEASURE_ON_HELPER = True  # measure batches on the helper thread (else between batches)
LANES = 2  # passes side by side, one core each (1: each batch on every core, one at a time)

# progress(done, total, images per second, seconds left or None)
ScanProgress = Callable[[int, int, float, float | None], None]
CancelFn = Callable[[], bool]


def _grid(la: LayerInfo) -> tuple[int, int] | None:
    axes = la.grid_axes
    if axes is None and len(la.output_shape) == 4:
        axes = (2, 3)
    return axes


def batch_maps(output: torch.Tensor, la: LayerInfo) -> np.ndarray:
    """A batch's output of layer ``la`` as ``(N, C, H, W)`` float32, grid last."""
    a = output.detach()
    a = (a if a.dtype == torch.float32 else a.float()).numpy()
    gy, gx = _grid(la)
    if (gy, gx) != (a.ndim - 2, a.ndim - 1):
        a = np.moveaxis(a, (gy, gx), (-2, -1))
    return a.reshape(a.shape[0], -1, *a.shape[-2:])


def skip_reason(path: Path, exc: BaseException) -> str:
    """Why a file was skipped, in one line: an empty file says so (a decoder's complaint about
    it names no cause a user can act on)."""
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
    except OSError:
        pass
    return one_line(exc)


def run_batches(
    model: LoadedModel,
    root: Path,
    engine: str,
    layers: list[LayerInfo],
    states: list[LayerTopK],
    pending: list[tuple[int, str]],
    store: Store,
    conn: sqlite3.Connection,
    sid: int,
    owner: str,
    batch: int,
    total: int,
    progress: ScanProgress | None,
    cancel: CancelFn | None,
    stats,  # scanner.ScanStats: .scanned and .timings are filled in
) -> None:
    """Scan ``pending`` in batches of ``batch`` readable images, storing the progress.

    The threads' shares are in the module's docstring."""
    names = [la.name for la in layers]
    timings = dict.fromkeys(("load", "load wait", "forward", "rank", "merge", "rank wait", "store"), 0.0)
    stats.timings = timings
    gathered = [Gathered(s) for s in states]
    unsaved: list[tuple[int, str, str | None]] = []  # outcomes of merged batches, not stored
    ran = [False]
    done, began, cursor = total - len(pending), time.perf_counter(), [0]
    first, saved_at = done, time.perf_counter()
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="topk-scan")
    lanes = min(LANES, engines.workers())
    lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="topk-lane") if lanes > 1 else None
    inflight: list[tuple[Future | None, list, int, np.ndarray]] = []  # at most one batch
    writing: list[Future] = []  # a checkpoint being written on the helper

    def check() -> None:
        if cancel is not None and cancel():
            raise Cancelled("scan cancelled")

    def read() -> tuple[list[int], torch.Tensor | None, list[tuple[int, str, str | None]]]:
        """The next batch from ``cursor``: its image ids, the prepared tensor, every file's
        outcome (unreadable files are skipped and named)."""
        start = time.perf_counter()
        ids, arrays, outcomes = [], [], []
        i = cursor[0]
        while len(arrays) < batch and i < len(pending):
            check()
            image_id, path = pending[i]
            i += 1
            try:
                prepared = prepare_image(load_image(root / path), model.preprocess, source=path)
            except Exception as exc:  # any file that will not decode is skipped
                outcomes.append((image_id, "unreadable", skip_reason(root / path, exc)))
                continue
            arrays.append(prepared.tensor.numpy())
            ids.append(image_id)
            outcomes.append((image_id, "done", None))
        cursor[0] = i
        # NumPy's concatenate: torch.cat's parallel copy took 10-200 ms when busy
        x = torch.from_numpy(np.concatenate(arrays)) if arrays else None
        timings["load"] += time.perf_counter() - start
        return ids, x, outcomes

    def one_lane(x: torch.Tensor) -> dict:
        before = torch.get_num_threads()
        torch.set_num_threads(1)  # this thread's own setting: OpenMP's thread count is per thread
        try:
            with engines.serial():
                return run_batch(model, x, engine, layers=names, cancel=cancel)[1]
        finally:
            torch.set_num_threads(before)

    def forward(x: torch.Tensor) -> list[tuple[int, int, dict]]:
        """The batch's layer outputs as ``(start, stop, outputs)`` parts: two halves side by
        side when there are lanes, else the whole batch at once."""
        n = x.shape[0]
        if lane is None or n < 2:
            return [(0, n, run_batch(model, x, engine, layers=names, cancel=cancel)[1])]
        half = (n + 1) // 2
        other = lane.submit(one_lane, x[half:])
        try:
            mine = one_lane(x[:half])
        finally:
            error = other.exception()  # waits: no pass outlives the batch
        if error is not None:
            raise error
        return [(0, half, mine), (half, n, other.result())]

    def measure(parts: list, image_ids: np.ndarray, lasts: list[np.ndarray]) -> list:
        """Each part's candidates per layer (maxima, and units where they can enter), with its
        image ids: big NumPy reductions that let go of the GIL. ``lasts``: the rows' last keys
        when the batch was handed over (the rows only get stronger: a lower bound)."""
        start = time.perf_counter()
        found = [
            (
                [
                    candidates_below(batch_maps(outputs[la.name], la), g.state, image_ids[a:b], last)
                    for g, la, last in zip(gathered, layers, lasts, strict=True)
                ],
                b - a,
            )
            for a, b, outputs in parts
        ]
        timings["rank"] += time.perf_counter() - start
        return found

    def merge(found: list) -> None:
        start = time.perf_counter()
        for per_layer, count in found:
            for g, one in zip(gathered, per_layer, strict=True):
                g.add_found(one, count)
        timings["merge"] += time.perf_counter() - start

    def rank(parts: list, image_ids: np.ndarray) -> None:
        """Measure and merge a batch on this thread (:data:`MEASURE_ON_HELPER` off)."""
        merge(measure(parts, image_ids, [g.state.last_keys() for g in gathered]))

    def settle() -> None:
        """Wait for the batch being measured and merge it; count it, report it, store if it
        is time."""
        nonlocal done
        if not inflight:
            return
        future, outcomes, count, _ = inflight.pop()
        start = time.perf_counter()
        if future is not None:
            found = future.result()
            timings["rank wait"] += time.perf_counter() - start
            if found is not None:
                merge(found)
        unsaved.extend(outcomes)
        stats.scanned += count
        done += len(outcomes)
        if time.perf_counter() - saved_at >= CHECKPOINT_SECONDS:
            save(wait=False)
        if progress is not None:
            rate = (done - first) / max(time.perf_counter() - began, 1e-9)
            left = (total - done) / rate if rate > 0 else None
            progress(done, total, rate, left)

    def write(blobs: list[bytes], outcomes: list, used: str | None, final: bool) -> None:
        with store.transaction(conn):
            if store.owner(conn, sid) != owner:
                raise ConvScopeError(
                    "another scan of this folder with this model started (in this window or another "
                    "process) and goes on from here; what this one scanned is kept: run it again once "
                    "that one is done and it finds it all in the cache"
                )
            store.checkpoint(conn, sid, blobs, outcomes, used)
            if final:
                store.finish(conn, sid, states)

    def save(final: bool = False, wait: bool = True) -> None:
        """Store the progress: the states as they are now and the outcomes of the batches
        merged. ``wait=False``: written on the helper (SQLite lets go of the GIL) while the
        next batch runs; the connection is used by one thread at a time."""
        nonlocal saved_at
        start = time.perf_counter()
        for g in gathered:
            g.flush()
        timings["merge"] += time.perf_counter() - start
        start = time.perf_counter()
        blobs = [st.to_bytes() for st in states]
        outcomes = list(unsaved)
        unsaved.clear()
        written()  # the one before (and its error, if it had one)
        job = (blobs, outcomes, engine if ran[0] else None, final)
        if wait:
            write(*job)
        else:
            writing.append(helper.submit(write, *job))
        saved_at = time.perf_counter()
        timings["store"] += saved_at - start

    def written() -> None:
        while writing:
            writing.pop().result()

    try:
        reading = helper.submit(read)
        while True:
            start = time.perf_counter()
            try:
                ids, x, outcomes = reading.result()
                timings["load wait"] += time.perf_counter() - start
                more = cursor[0] < len(pending)
                if more:
                    reading = helper.submit(read)  # read while this batch runs
                parts: list = []
                if x is not None:
                    check()
                    start = time.perf_counter()
                    parts = forward(x)
                    timings["forward"] += time.perf_counter() - start
                    ran[0] = True
            except Cancelled:  # this batch is not merged: store the ones before it, then stop
                settle()
                save()
                raise
            settle()  # the previous batch
            image_ids = np.asarray(ids, dtype=np.int32)
            if not len(ids):  # a batch of unreadable files only
                inflight.append((None, outcomes, 0, image_ids))
            elif MEASURE_ON_HELPER:
                lasts = [g.state.last_keys() for g in gathered]
                job = helper.submit(measure, parts, image_ids, lasts)
                inflight.append((job, outcomes, len(ids), image_ids))
            else:
                rank(parts, image_ids)
                inflight.append((None, outcomes, len(ids), image_ids))
            del parts
            if not more:
                break
        settle()
        save(final=True)
    finally:
        # on an error: a checkpoint still queued is dropped (a write is one transaction, whole
        # or not at all: as after a crash, the next scan resumes from the one before)
        helper.shutdown(wait=True, cancel_futures=True)
        if lane is not None:
            lane.shutdown(wait=True)
