"""The top-k scan on models whose channels are known detectors, over folders whose answer is
known: the right images at the right units, resume, incremental rescans, unreadable files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.errors import Cancelled, ImageError
from models.images import Preprocess
from models.sources import load_model
from models.topk import Store, examples, scan
from models.topk import batches as batch_module
from tests.models.topk_folders import SIZE, bar_image, bars_folder, edge_model, expected_top

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))


def _reads(monkeypatch) -> list[str]:
    """The files the scan opens from now on (by name)."""
    read: list[str] = []
    real = batch_module.load_image

    def spy(path):
        read.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(batch_module, "load_image", spy)
    return read


def _top(result, layer="edges", channels=None) -> dict:
    """Layer's top-k as comparable tuples (file name, value, y, x) per channel."""
    return {
        c: [(e.path.name, e.value, e.y, e.x) for e in found]
        for c, found in result.layer_entries(layer, channels).items()
    }


def test_edge_detectors_rank_the_brightest_bars_of_their_orientation_at_the_edge(tmp_path) -> None:
    made = bars_folder(tmp_path / "imgs")
    result = scan(edge_model(), tmp_path / "imgs", "reference", k=3, batch=4)
    assert [la.name for la in result.layers] == ["edges"]
    assert (result.layers[0].channels, result.layers[0].height, result.layers[0].width) == (2, SIZE, SIZE)
    for channel, kind in ((0, "v"), (1, "h")):
        found = result.entries("edges", channel)
        assert [e.path.name for e in found] == expected_top(made, kind, 3)
        assert [e.rank for e in found] == [0, 1, 2]
        for e in found:
            _, at, brightness = made[e.path.name]
            np.testing.assert_allclose(e.value, 4 * brightness / 255, rtol=1e-5)
            across = e.x if kind == "v" else e.y  # the unit sits on the bar's leading edge
            assert across in (at - 1, at)
    assert result.stats.scanned == len(made) and result.stats.unreadable == 0


def test_crops_show_the_edge_and_the_map_holds_the_stored_value(tmp_path) -> None:
    made = bars_folder(tmp_path / "imgs")
    model = edge_model()
    result = scan(model, tmp_path / "imgs", "reference", k=3, batch=4)
    shown = examples(model, result, "edges", 0, "reference", maps=True)
    assert len(shown) == 3
    for ex in shown:
        name = ex.entry.path.name
        kind, at, brightness = made[name]
        assert ex.crop.dtype == np.uint8
        # the photo as the model saw it, cut at the field's box clipped to the photo
        photo = bar_image(kind, at, brightness)
        t, l, b, r = (int(v) for v in ex.box)
        assert (b - t, r - l) == (3, 3)
        assert ex.clip == (max(t, 0), max(l, 0), min(b, SIZE), min(r, SIZE))
        np.testing.assert_array_equal(ex.crop, photo[max(t, 0) : min(b, SIZE), max(l, 0) : min(r, SIZE)])
        # the unit (the field's centre) in crop pixels: its own pixel is (y, x) of the photo
        cy, cx = ex.centre
        assert (ex.clip[0] + int(cy), ex.clip[1] + int(cx)) == (ex.entry.y, ex.entry.x)
        inside = ex.crop[int(cy)]  # the unit's own row
        assert inside[0].max() < inside[-1].min()  # dark on the left, bright on the right
        # the map: the layer's output for that image, computed independently by torch
        x = torch.from_numpy(photo.astype(np.float32).transpose(2, 0, 1) / 255)[None]
        want_map = model.module.edges(x)[0, 0].detach().numpy()
        np.testing.assert_allclose(ex.map, want_map, atol=1e-5)
        assert ex.map[ex.entry.y, ex.entry.x] == pytest.approx(ex.entry.value, rel=1e-5)
        assert ex.map.max() == pytest.approx(ex.entry.value, rel=1e-5)  # the unit is the best one
        assert ex.overlay.shape == ex.crop.shape[:2]
        assert ex.overlay[int(cy), int(cx)] == pytest.approx(ex.entry.value, rel=1e-5)  # the unit


def test_classic_sobel_filters_find_the_bars(tmp_path) -> None:
    """The catalog's hand-made model: its Sobel x / y (dark -> light) filters, channels 3 and 5
    of ``edges``, rank vertical / horizontal bars by brightness."""
    made = bars_folder(tmp_path / "imgs", size=64)
    model = load_model("classic", input_size=(64, 64))
    result = scan(model, tmp_path / "imgs", "im2col", k=3)
    assert [la.name for la in result.layers] == ["edges", "combine"]
    assert [e.path.name for e in result.entries("edges", 3)] == expected_top(made, "v", 3)
    assert [e.path.name for e in result.entries("edges", 5)] == expected_top(made, "h", 3)
    combine_vertical = {e.path.name[0] for e in result.entries("combine", 0)}
    assert combine_vertical == {"v"}  # "vertical edges" of the second layer


def test_cancel_then_resume_gives_exactly_the_uninterrupted_result(tmp_path, monkeypatch) -> None:
    made = bars_folder(tmp_path / "imgs", vertical=8, horizontal=8, blank=6)
    model = edge_model()
    whole = scan(model, tmp_path / "imgs", "reference", k=3, batch=4, store=Store(tmp_path / "a.db"))
    seen: list[int] = []

    def cancel() -> bool:
        return bool(seen) and seen[-1] >= 8

    with pytest.raises(Cancelled):
        scan(
            model,
            tmp_path / "imgs",
            "reference",
            k=3,
            batch=4,
            store=Store(tmp_path / "b.db"),
            progress=lambda done, total, rate, eta: seen.append(done),
            cancel=cancel,
        )
    # asked after 8, it stops within a batch (the one already run is kept, no new one starts)
    assert seen[:2] == [4, 8] and seen[-1] <= 12
    read = _reads(monkeypatch)
    resumed = scan(model, tmp_path / "imgs", "reference", k=3, batch=4, store=Store(tmp_path / "b.db"))
    # everything reported done was stored: the resumed scan reads only the rest
    assert len(read) == len(made) - seen[-1] and resumed.stats.scanned == len(made) - seen[-1]
    _same_state(whole, resumed)


def _same_state(a, b) -> None:
    """Every stored rank of every channel equal, image ids and floors too."""
    with a.store.connect() as ca, b.store.connect() as cb:
        sa, sb = a.store.load_state(ca, a.scan_id), b.store.load_state(cb, b.scan_id)
    assert all(x.equal(y) for x, y in zip(sa, sb, strict=True))
    assert _top(a) == _top(b)


@pytest.mark.parametrize("every", [0.0, None])
def test_a_killed_scan_resumes_in_a_new_process(tmp_path, every) -> None:
    """Storing after every batch (written on the scan's helper while the next batch runs), it
    resumes after the last or the one before; with the default interval it may redo a few
    batches: either way the result is the uninterrupted scan's."""
    made = bars_folder(tmp_path / "imgs", vertical=8, horizontal=8, blank=6)
    code = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from tests.models.topk_folders import edge_model
from models.topk import Store, scan, batches
if {every!r} is not None:
    batches.CHECKPOINT_SECONDS = {every!r}
def progress(done, total, rate, eta):
    if done >= 12:
        os._exit(7)  # no cleanup, no exception: as if the process were killed
scan(edge_model(), {str(tmp_path / "imgs")!r}, "reference", k=3, batch=4,
     store=Store({str(tmp_path / "b.db")!r}), progress=progress)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 7, proc.stderr
    resumed = scan(edge_model(), tmp_path / "imgs", "reference", k=3, batch=4, store=Store(tmp_path / "b.db"))
    if every == 0:  # the checkpoint of the batch reported last may still have been written:
        assert len(made) - 12 <= resumed.stats.scanned <= len(made) - 8  # at most one batch lost
    else:
        assert len(made) - 12 <= resumed.stats.scanned <= len(made)
    whole = scan(edge_model(), tmp_path / "imgs", "reference", k=3, batch=4, store=Store(tmp_path / "a.db"))
    _same_state(whole, resumed)


def test_reopening_is_instant_and_a_changed_folder_runs_only_what_changed(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "imgs"
    made = bars_folder(folder)
    model = edge_model()
    scan(model, folder, "reference", k=3, batch=4)
    read = _reads(monkeypatch)
    again = scan(edge_model(), folder, "reference", k=3, batch=4, store=Store())  # new connection
    assert read == [] and again.stats.scanned == 0
    # add two, change one, delete one (none of them among the top three of either channel)
    Image.fromarray(bar_image("v", 20, 250)).save(folder / "new_v.png")  # the new strongest
    (folder / "sub").mkdir()
    Image.fromarray(bar_image("h", 9, 65)).save(folder / "sub" / "new_h.png")  # recursive
    Image.fromarray(bar_image("blank", 0, 0) + 1).save(folder / "blank00.png")
    os.utime(folder / "blank00.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    (folder / "v00.png").unlink()
    updated = scan(model, folder, "reference", k=3, batch=4)
    assert sorted(read) == ["blank00.png", "new_h.png", "new_v.png"]
    assert updated.stats.scanned == 3 and updated.stats.removed == 2  # v00 gone, blank00 changed
    assert not updated.stats.rescanned_all
    assert updated.entries("edges", 0)[0].path.name == "new_v.png"
    fresh = scan(model, folder, "reference", k=3, batch=4, store=Store(tmp_path / "fresh.db"))
    assert _top(updated) == _top(fresh)
    del made


def scan_module_layers(model):
    from models.topk.scanner import conv_layers

    return conv_layers(model)


def prepare(path, model) -> torch.Tensor:
    from models.images import load_image, prepare_image

    return prepare_image(load_image(path), model.preprocess).tensor


def _stored(result, layer="edges") -> list:
    """Every row of the store's entries for ``layer``: (channel, rank, path, value, y, x)."""
    return result.layer_rows(layer)


def test_tied_entries_rank_by_path_whatever_the_scan_history(tmp_path, monkeypatch) -> None:
    """Duplicate images under two names tie exactly; a fresh scan and incremental rescans
    (files added later, a file rewritten with the same pixels) must give the same entries in
    the same order: value descending, then path. One image per batch: a convolution's rounding
    may depend on the batch (values near 0 differ in the 8th digit), a duplicate's must not."""
    folder = tmp_path / "imgs"
    bars_folder(folder, vertical=5, horizontal=3, blank=2)
    model = edge_model()
    scan(model, folder, "reference", k=9, batch=1)  # the originals first
    (folder / "dup").mkdir()
    for name in ("v01.png", "v03.png", "v04.png", "h02.png", "blank00.png"):
        (folder / "dup" / name).write_bytes((folder / name).read_bytes())  # "dup/..." < "v..."
    read = _reads(monkeypatch)
    added = scan(model, folder, "reference", k=9, batch=1)
    assert added.stats.scanned == 5 and sorted(read) == [
        "blank00.png",
        "h02.png",
        "v01.png",
        "v03.png",
        "v04.png",
    ]
    fresh = scan(model, folder, "reference", k=9, batch=1, store=Store(tmp_path / "fresh.db"))
    top = _top(fresh, channels=[0])[0]
    names = [(e.path.relative_to(fresh.folder).as_posix(), e.value) for e in fresh.entries("edges", 0)]
    # the ties are there, and the earlier path goes first
    assert names[:2] == [("dup/v04.png", top[0][1]), ("v04.png", top[0][1])]
    assert names[2:4] == [("dup/v03.png", top[2][1]), ("v03.png", top[2][1])]
    assert _stored(added) == _stored(fresh) and _top(added) == _top(fresh)
    # the original rewritten (same pixels, a later time): a new image for the store, same order
    os.utime(folder / "v04.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = scan(model, folder, "reference", k=9, batch=1)
    assert changed.stats.scanned == 1 and changed.stats.removed == 1 and not changed.stats.rescanned_all
    assert _stored(changed) == _stored(fresh)
    # the duplicate deleted and written again: the same once more
    data = (folder / "dup" / "v03.png").read_bytes()
    (folder / "dup" / "v03.png").unlink()
    scan(model, folder, "reference", k=9, batch=1)
    (folder / "dup" / "v03.png").write_bytes(data)
    again = scan(model, folder, "reference", k=9, batch=1)
    assert _stored(again) == _stored(fresh)
    # and in memory: the state's rows in the order of the store's
    with again.store.connect() as conn:
        state = again.store.load_state(conn, again.scan_id)[0]
        paths = {r.id: p for p, r in again.store.images(conn, again.scan_id).items()}
    assert [(c, r, paths[i], v, y, x) for c, r, i, v, y, x in state.rows(9)] == _stored(again)


def test_deleting_into_the_reserve_keeps_the_result_exact_then_rescans(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "imgs"
    made = bars_folder(folder, vertical=12, horizontal=4, blank=3)
    model = edge_model()
    scan(model, folder, "reference", k=3, batch=4)  # reserve: 9 per channel
    order = expected_top(made, "v", 12)
    for name in order[:2]:
        (folder / name).unlink()
    read = _reads(monkeypatch)
    kept = scan(model, folder, "reference", k=3, batch=4)
    assert read == [] and not kept.stats.rescanned_all  # the reserve answers
    assert [e.path.name for e in kept.entries("edges", 0)] == order[2:5]
    for name in order[2:8]:  # now 8 of the 9 reserve entries of channel 0 are gone
        (folder / name).unlink()
    redone = scan(model, folder, "reference", k=3, batch=4)
    assert redone.stats.rescanned_all and redone.stats.scanned == redone.stats.images
    assert [e.path.name for e in redone.entries("edges", 0)] == order[8:11]
    fresh = scan(model, folder, "reference", k=3, batch=4, store=Store(tmp_path / "fresh.db"))
    assert _top(redone) == _top(fresh)


def test_unreadable_files_are_skipped_and_counted(tmp_path) -> None:
    folder = tmp_path / "imgs"
    made = bars_folder(folder, vertical=4, horizontal=4, blank=0)
    (folder / "garbage.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    good = (folder / "v00.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, not listed")
    (folder / ".hidden.png").write_bytes(b"hidden files are not listed")
    result = scan(edge_model(), folder, "reference", k=3, batch=3)
    assert result.stats.images == len(made) + 3 and result.stats.unreadable == 3
    assert result.stats.scanned == len(made)
    skipped = {p.name: why for p, why in result.skipped()}
    assert set(skipped) == {"garbage.jpg", "truncated.png", "empty.png"}
    assert all(skipped.values())
    assert skipped["empty.png"] == "empty file (0 bytes)"  # not a decoder's complaint
    assert "empty" not in skipped["truncated.png"] and "empty" not in skipped["garbage.jpg"]
    assert [e.path.name for e in result.entries("edges", 0)] == expected_top(made, "v", 3)


def test_folders_without_readable_images_are_one_line_errors(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no images in"):
        scan(edge_model(), tmp_path / "empty", "reference")
    with pytest.raises(ImageError, match="no such folder"):
        scan(edge_model(), tmp_path / "missing", "reference")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"nope")
    (tmp_path / "bad" / "b.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"none of the 2 images .* could be read \(a.png"):
        scan(edge_model(), tmp_path / "bad", "reference")


def test_the_store_is_keyed_by_weights_and_preprocessing_not_the_engine(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "imgs"
    made = bars_folder(folder)
    first = scan(edge_model(), folder, "reference", k=3)
    read = _reads(monkeypatch)
    other_engine = scan(edge_model(), folder, "im2col", k=3)
    assert other_engine.stats.scanned == 0 and read == []
    other = edge_model()
    with torch.no_grad():
        other.module.edges.weight[1] *= -1  # a light -> dark detector now
    changed = scan(other, folder, "reference", k=3)
    assert changed.stats.scanned == len(made) and changed.scan_id != first.scan_id
    assert {e.path.name[0] for e in changed.entries("edges", 1)} == {"h"}
    model = edge_model()
    pre = model.preprocess
    model.preprocess = Preprocess(size=pre.size, resize=None, crop=False, mean=(0.5,) * 3, std=(1.0,) * 3)
    assert scan(model, folder, "reference", k=3).stats.scanned == len(made)
    assert scan(edge_model(), folder, "reference", k=4).stats.scanned == len(made)  # another k
    # the engines agree: a scan on im2col from scratch ranks the same as torch's
    ours = scan(edge_model(), folder, "im2col", k=3, store=Store(tmp_path / "other.db"))
    assert [[(n, y, x) for n, _, y, x in v] for v in _top(ours).values()] == [
        [(n, y, x) for n, _, y, x in v] for v in _top(first).values()
    ]


def test_rescan_forgets_the_stored_scan_and_runs_every_image_on_the_engine(tmp_path, monkeypatch) -> None:
    """The view's "Scan again on <engine>": the stored scan is replaced by one computed on it."""
    folder = tmp_path / "imgs"
    made = bars_folder(folder)
    oracle = scan(edge_model(), folder, "reference", k=3, store=Store(tmp_path / "oracle.db"))
    assert scan(edge_model(), folder, "reference", k=3).engines == ["reference"]
    read = _reads(monkeypatch)
    again = scan(edge_model(), folder, "im2col", k=3, rescan=True)
    assert again.stats.scanned == len(made) and sorted(read) == sorted(made)
    assert again.engines == ["im2col"]
    assert [[(n, y, x) for n, _, y, x in v] for v in _top(again).values()] == [
        [(n, y, x) for n, _, y, x in v] for v in _top(oracle).values()
    ]
    with again.store.connect() as conn:  # one scan for these keys, not two
        assert conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0] == 1


def test_a_damaged_store_file_is_replaced(tmp_path) -> None:
    bars_folder(tmp_path / "imgs", vertical=3, horizontal=3, blank=0)
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not an SQLite database" * 100)
    result = scan(edge_model(), tmp_path / "imgs", "reference", k=3, store=Store(path))
    assert result.stats.scanned == 6
    assert scan(edge_model(), tmp_path / "imgs", "reference", k=3, store=Store(path)).stats.scanned == 0


def test_memory_stays_flat_over_a_large_folder(tmp_path) -> None:
    """1,500 images: what the scan holds at the end is what it held after the first 300
    (the 10,000-image run is in benchmarks/topk.py)."""
    import tracemalloc

    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1500):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    model = load_model("classic", input_size=(16, 16))
    samples: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        scan(
            model,
            folder,
            "reference",
            k=9,
            batch=16,
            progress=lambda done, total, rate, eta: samples.append(
                (done, tracemalloc.get_traced_memory()[0])
            ),
        )
    finally:
        tracemalloc.stop()
    early = max(m for d, m in samples if 300 <= d < 450)
    late = max(m for d, m in samples if d >= 1350)
    assert late - early < 512 * 1024, f"grew by {(late - early) / 1024:.0f} KiB"


def test_channels_last_outputs_are_ranked_on_their_grid() -> None:
    """A layer whose grid is not last (``grid_axes`` (1, 2), NHWC) is read as
    :func:`models.layers.grid_maps` reads it: channels first, grid last."""
    from models.layers import LayerInfo, grid_maps
    from models.topk.batches import batch_maps
    from models.topk.scanner import map_shape

    nhwc = torch.randn(3, 5, 7, 4)
    la = LayerInfo(
        name="x",
        type="Conv2d",
        output_shape=(1, 5, 7, 4),
        params=0,
        macs=0,
        time_ms=0.0,
        algorithm=None,
        receptive_field=None,
        grid_axes=(1, 2),
    )
    assert map_shape(la) == (4, 5, 7)
    got = batch_maps(nhwc, la)
    want = np.stack([grid_maps(nhwc[i].numpy(), (1, 2)) for i in range(3)])
    np.testing.assert_array_equal(got, want)


def test_odd_file_names_are_scanned_and_found_again(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "imgs"
    made = bars_folder(folder, vertical=3, horizontal=0, blank=2)
    odd = {"v00.png": "with space é.PNG", "v01.png": os.fsdecode(b"bytes \xff\xfe.png")}
    for old, new in odd.items():
        (folder / old).rename(folder / new)
    first = scan(edge_model(), folder, "reference", k=3)
    names = [e.path.name for e in first.entries("edges", 0)]
    assert names == ["v02.png", odd["v01.png"], odd["v00.png"]]
    assert all(e.path.exists() for e in first.entries("edges", 0))
    read = _reads(monkeypatch)
    assert scan(edge_model(), folder, "reference", k=3).stats.scanned == 0 and read == []
    del made


def test_a_second_scan_of_the_same_folder_takes_over_and_the_first_stops(tmp_path, monkeypatch) -> None:
    from models.errors import ConvScopeError

    monkeypatch.setattr(batch_module, "CHECKPOINT_SECONDS", 0)  # the first stores every batch
    bars_folder(tmp_path / "imgs", vertical=6, horizontal=6, blank=0)
    calls = []

    def progress(done, total, rate, eta):
        if not calls:
            calls.append(scan(edge_model(), tmp_path / "imgs", "reference", k=3, batch=4))

    with pytest.raises(ConvScopeError, match="another scan"):
        scan(edge_model(), tmp_path / "imgs", "reference", k=3, batch=4, progress=progress)
    assert calls[0].stats.scanned == 12 - 4
    again = scan(edge_model(), tmp_path / "imgs", "reference", k=3, batch=4)
    assert again.stats.scanned == 0 and again.engines == ["reference"]


def test_bad_arguments_are_refused_before_any_work(tmp_path) -> None:
    from models.errors import ConvScopeError

    bars_folder(tmp_path / "imgs", vertical=1, horizontal=0, blank=0)
    for kwargs in ({"k": 0}, {"k": 51}, {"batch": -1}):
        with pytest.raises(ConvScopeError):
            scan(edge_model(), tmp_path / "imgs", "reference", **kwargs)
    with pytest.raises(ImageError, match="not a folder"):
        scan(edge_model(), tmp_path / "imgs" / "v00.png", "reference")


@pytest.mark.parametrize(
    ("on_helper", "dense"),
    [(True, None), (True, 1.0), (False, -1.0)],
    ids=["helper", "helper-units-apart", "inline-one-pass"],
)
def test_the_ranked_top_k_is_the_brute_force_top_k_of_run_batch(
    tmp_path, monkeypatch, on_helper, dense
) -> None:
    """Every conv layer's stored entries equal a plain top-k over ``run_batch``'s outputs of
    the same batches (each image's maximum per channel, the first on a tie, sorted by value
    then path), wherever the batches are measured and however the units are found."""
    from models.layers import grid_maps
    from models.runner import run_batch
    from models.topk import running

    monkeypatch.setattr(batch_module, "MEASURE_ON_HELPER", on_helper)
    if dense is not None:  # 1.0: maxima first, then the units of those entering; -1: one pass
        monkeypatch.setattr(running, "DENSE", dense)
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(30):
        Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    model = load_model("classic", input_size=(32, 32))
    k, batch = 3, 4
    result = scan(model, folder, "reference", k=k, batch=batch, store=Store(tmp_path / "s.db"))
    names = sorted(p.name for p in folder.iterdir())
    layers = scan_module_layers(model)
    x = torch.cat([prepare(folder / n, model) for n in names])
    outs = [
        run_batch(model, x[i : i + batch], "reference", layers=[la.name for la in layers])[1]
        for i in range(0, 30, batch)
    ]
    for la in layers:
        maps = np.concatenate(
            [
                np.stack(
                    [grid_maps(o[la.name][j].numpy(), la.grid_axes or (1, 2)) for j in range(len(o[la.name]))]
                )
                for o in outs
            ]
        )
        flat = maps.reshape(len(names), maps.shape[1], -1)
        want = []
        for c in range(maps.shape[1]):
            where = flat[:, c].argmax(axis=1)
            best = flat[np.arange(len(names)), c, where]
            order = sorted(range(len(names)), key=lambda i: (-best[i], names[i]))[:k]
            w = maps.shape[-1]
            want += [
                (c, r, names[i], float(best[i]), int(where[i] // w), int(where[i] % w))
                for r, i in enumerate(order)
            ]
        got = result.layer_rows(la.name)
        # the scan runs each batch as two halves side by side (batches.LANES): torch may sum a
        # batch of 2 in another order than one of 4, a last-bit difference
        assert [(c, r, n, y, x) for c, r, n, _, y, x in got] == [
            (c, r, n, y, x) for c, r, n, _, y, x in want
        ], la.name
        np.testing.assert_allclose([g[3] for g in got], [w[3] for w in want], rtol=1e-5, atol=1e-6)
