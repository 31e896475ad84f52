"""What the command line and the Top examples tab say: plurals, a cached scan without a rate,
the skipped files named, what an export wrote as it was asked."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from models.topk import messages
from models.topk.scanner import LayerSummary, ScanStats


def _result(images=500, scanned=0, unreadable=0, layers=49, k=9):
    summaries = [LayerSummary(f"l{i}", 112 if i == 0 else 16, 14, 14) for i in range(layers)]
    stats = ScanStats(
        images=images, scanned=scanned, unreadable=unreadable, removed=0, rescanned_all=False, seconds=0.0
    )

    def layer(name):
        return next(s for s in summaries if s.name == name)

    return SimpleNamespace(model_name="m", k=k, layers=summaries, stats=stats, layer=layer)


def test_plurals_and_a_cached_scan_has_no_rate() -> None:
    assert messages.plural(1, "file") == "1 file" and messages.plural(0, "file") == "0 files"
    assert messages.progress(500, 500, 0.0, 0.0) == "all 500 images cached: nothing to run"
    assert messages.progress(1, 1, 0.0, 0.0) == "all 1 image cached: nothing to run"
    assert messages.progress(120, 500, 12.34, 30.6) == "120 / 500 images · 12.3 images/s · 0:31 left"
    assert messages.progress(500, 500, 12.0, 0.0).endswith("0:00 left")


def test_scan_summary_says_what_ran() -> None:
    assert messages.scan_summary(_result(500, 0), "auto") == "m: 500 images · all from the cache"
    assert messages.scan_summary(_result(501, 20, 1), "auto") == (
        "m: 500 images · 20 run now on auto, 480 from the cache · 1 file skipped"
    )


def test_skipped_files_are_named() -> None:
    root = Path("/photos")
    skipped = [(root / "a.txt.jpg", "why a"), (root / "sub" / "b.png", "why b"), (root / "c.gif", "why c")]
    assert messages.skipped_line(skipped, root) == (
        "3 files skipped (not readable as images): a.txt.jpg, sub/b.png, c.gif"
    )
    assert messages.skipped_line(skipped[:1], root) == "1 file skipped (not readable as images): a.txt.jpg"
    many = [(root / f"{i}.jpg", "bad") for i in range(8)]
    assert messages.skipped_line(many, root).endswith("0.jpg, 1.jpg, 2.jpg, 3.jpg, 4.jpg, … and 3 more")
    assert messages.skipped_details(skipped, root) == "a.txt.jpg: why a\nsub/b.png: why b\nc.gif: why c"
    assert messages.skipped_details(many, root, limit=2).splitlines()[-1] == "… and 6 more"
    assert messages.skipped_line([], root) == ""


def test_written_says_what_was_written() -> None:
    r = _result()
    assert messages.written(r, ["l0"], 64, 2, "out") == (
        "wrote the top 9 of layer l0 (channels 0-63 of 112 in the montage, all in the JSON): 2 files in out"
    )
    assert messages.written(r, ["l1"], 64, 2, "out") == (
        "wrote the top 9 of layer l1 (all 16 channels): 2 files in out"
    )
    assert messages.written(r, [s.name for s in r.layers], 64, 98, "out") == (
        "wrote the top 9 of each of the 49 conv layers (montages: up to 64 channels each, the "
        "JSON: all): 98 files in out"
    )
    one = _result(layers=1)
    assert messages.written(one, ["l0"], 200, 1, "o").endswith(": 1 file in o")
