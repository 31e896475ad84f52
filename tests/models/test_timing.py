"""Timing every engine: per-layer medians of several runs, the algorithm each engine ran, and
each engine's difference from torch."""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import pytest

from models.errors import Cancelled
from models.timing import summarize, time_engines


def _fake_result(times: dict[str, float], total: float, algorithm: str) -> SimpleNamespace:
    layers = [SimpleNamespace(name=n, is_conv=True, time_ms=t, algorithm=algorithm) for n, t in times.items()]
    layers.append(SimpleNamespace(name="relu", is_conv=False, time_ms=99.0, algorithm=None))
    return SimpleNamespace(layers=layers, total_ms=total)


def test_summarize_takes_the_median_of_each_layer_and_of_the_totals() -> None:
    # one wild run (a page fault, another process) must not move the answer
    runs = [
        _fake_result({"a": a, "b": b}, t, "im2col+gemm")
        for a, b, t in [
            (5.0, 1.0, 10.0),
            (1.0, 2.0, 11.0),
            (100.0, 3.0, 500.0),
            (2.0, 4.0, 12.0),
            (3.0, 5.0, 13.0),
        ]
    ]
    timing = summarize("im2col", runs)
    assert timing.runs == 5
    assert timing.times == {"a": statistics.median([5, 1, 100, 2, 3]), "b": 3.0}
    assert timing.total_ms == 12.0
    assert timing.algorithms == {"a": "im2col+gemm", "b": "im2col+gemm"}
    assert "relu" not in timing.times
    mixed = summarize("auto", [_fake_result({"a": 1.0}, 1.0, "x"), _fake_result({"a": 1.0}, 1.0, "y")])
    assert mixed.algorithms == {"a": "x / y"}  # an engine that changed its mind says so
    with pytest.raises(ValueError):
        summarize("im2col", [])


@pytest.fixture(scope="module")
def classic_input():
    from models.images import load_image, prepare_image, sample_images
    from models.sources import load_model

    model = load_model("classic")
    image = prepare_image(load_image(sample_images()["chelsea"]), model.preprocess, source="cat")
    return model, image


def test_every_engine_runs_n_times_and_is_compared_with_torch(classic_input) -> None:
    model, image = classic_input
    seen = []

    def progress(done, total):
        seen.append((done, total))

    timings = time_engines(model, image, ["im2col", "reference"], runs=3, progress=progress)
    assert [t.engine for t in timings] == ["reference", "im2col"]  # torch first: the oracle
    assert seen == [(k, 6) for k in range(1, 7)]
    for t in timings:
        assert t.runs == 3 and set(t.times) == {"edges", "combine"}
        for name, values in t.all_times.items():
            assert len(values) == 3 and t.times[name] == statistics.median(values)
    im2col = timings[1]
    assert im2col.algorithms["edges"] == "im2col+gemm"
    assert timings[0].max_diff == 0.0 and 0 <= im2col.max_diff < 1e-4


def test_timing_stops_when_cancelled(classic_input) -> None:
    model, image = classic_input
    calls = []

    def cancel() -> bool:
        return len(calls) >= 1

    def run(*args, **kwargs):
        calls.append(args)
        return _fake_result({"edges": 1.0}, 1.0, "x")

    with pytest.raises(Cancelled):
        time_engines(model, image, ["im2col", "fft"], runs=5, cancel=cancel, run=run)
    assert len(calls) == 1
