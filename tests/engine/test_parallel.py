"""The engines' own threads: every piece runs once, errors surface, NumPy's BLAS is given back
as it was, and results do not depend on how many threads did the work."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine import _jit, _parallel, get_engine
from engine._common import make_spec
from engine.auto import AutoEngine
from tests.conftest import assert_conv_close


def test_pieces_cover_the_range_once() -> None:
    for total in (0, 1, 5, 97):
        for workers in (1, 2, 3):
            old, _parallel.WORKERS = _parallel.WORKERS, workers
            try:
                parts = _parallel.pieces(total)
            finally:
                _parallel.WORKERS = old
            assert len(parts) <= workers
            covered = [i for a, b in parts for i in range(a, b)]
            assert covered == list(range(total))
    assert _parallel.pieces(10, cost_per_item=100, min_cost=800) == [(0, 10)]  # not worth it
    assert len(_parallel.pieces(10, cost_per_item=100, min_cost=400)) == min(2, _parallel.WORKERS)


def test_run_calls_every_piece_on_distinct_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_parallel, "WORKERS", 3)
    seen: dict[tuple[int, int], str] = {}
    lock = threading.Lock()

    def work(a: int, b: int) -> None:
        with lock:
            seen[(a, b)] = threading.current_thread().name

    parts = _parallel.pieces(30)
    _parallel.run(work, parts)
    assert sorted(seen) == parts
    assert seen[parts[0]] == threading.current_thread().name  # the caller does a piece itself
    assert all(name.startswith("convscope-engine") for p, name in seen.items() if p != parts[0])


def test_concurrent_callers_each_get_all_their_pieces_done(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads (two GUI lanes) fork-joining at once: one uses the engine's helper threads,
    the other the executor; neither returns before its own pieces are done, and neither sees the
    other's error."""
    monkeypatch.setattr(_parallel, "WORKERS", 2)
    results: dict[str, list] = {"a": [], "b": []}
    errors: dict[str, BaseException | None] = {}

    def caller(tag: str) -> None:
        try:
            for turn in range(300):
                out = [0, 0]

                def work(i: int, j: int, out: list = out, turn: int = turn) -> None:
                    if tag == "b" and turn == 150 and i == 1:
                        raise ValueError("b's piece failed")
                    out[i] = i + 1

                try:
                    _parallel.run(work, [(0, 1), (1, 2)])
                except ValueError:
                    results[tag].append("error")
                    continue
                results[tag].append(tuple(out))
            errors[tag] = None
        except BaseException as exc:  # reported by the assertion below
            errors[tag] = exc

    threads = [threading.Thread(target=caller, args=(tag,)) for tag in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == {"a": None, "b": None}
    assert results["a"] == [(1, 2)] * 300
    assert results["b"] == [(1, 2)] * 150 + ["error"] + [(1, 2)] * 149


def test_run_raises_a_pieces_error_after_all_pieces_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_parallel, "WORKERS", 2)
    done = []

    def work(a: int, b: int) -> None:
        if a > 0:
            raise ValueError(f"piece {a}..{b} failed")
        done.append(a)

    with pytest.raises(ValueError, match=r"piece 5\.\.10 failed"):
        _parallel.run(work, [(0, 5), (5, 10)])
    assert done == [0]


def test_numpy_blas_threads_are_restored_after_an_engine_call() -> None:
    blas = _parallel.numpy_blas
    if not blas.controllable:
        pytest.skip("no NumPy OpenBLAS to control here")
    before = blas.threads
    inside: list[int | None] = []
    with blas.single_threaded():
        with blas.single_threaded():  # nested: still one thread
            inside.append(blas.threads)
        inside.append(blas.threads)
    assert inside == [1, 1]
    assert blas.threads == before
    seen: list[int | None] = []
    thread = threading.Thread(target=lambda: (blas.__enter__(), seen.append(blas.threads), blas.__exit__()))
    thread.start()
    thread.join()
    assert seen == [1], "another thread can set it too (threadpoolctl's own setter would ignore it)"
    rng = np.random.default_rng(0)
    get_engine("winograd").conv2d(
        rng.standard_normal((1, 4, 9, 9), dtype=np.float32),
        rng.standard_normal((4, 4, 3, 3), dtype=np.float32),
        None,
        1,
        1,
    )
    assert blas.threads == before


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_do_not_depend_on_the_number_of_threads(workers: int, monkeypatch) -> None:
    if _jit.kernels() is None:
        pytest.skip("numba is not available: the engines run their NumPy forms")
    monkeypatch.setattr(_parallel, "WORKERS", workers)
    rng = np.random.default_rng(workers)
    auto = AutoEngine()
    cases = [  # winograd, depthwise, im2col, pointwise, grouped
        ((2, 12, 19, 17), (10, 12, 3, 3), 1, 1, 1),
        ((1, 12, 15, 15), (24, 1, 3, 3), 2, 1, 12),
        ((1, 5, 20, 20), (7, 5, 5, 5), 2, 2, 1),
        ((2, 16, 9, 9), (20, 16, 1, 1), 1, 0, 1),
        ((1, 8, 11, 11), (8, 4, 3, 3), 1, 1, 2),
    ]
    for x_shape, w_shape, stride, padding, groups in cases:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32)
        b = rng.standard_normal(w_shape[0], dtype=np.float32)
        for engine in (auto, get_engine("im2col"), get_engine("direct"), get_engine("winograd")):
            out = engine.conv2d(x, w, b, stride, padding, 1, groups)
            assert_conv_close(out, get_engine("reference").conv2d(x, w, b, stride, padding, 1, groups))


def test_without_numba_every_engine_runs_its_numpy_form(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("_tried", False), ("_module", None), ("_error", None)):
        monkeypatch.setattr(_jit, name, value)
    monkeypatch.setenv("CONVSCOPE_JIT", "0")
    assert _jit.kernels() is None
    assert _jit.unavailable_reason() == "disabled by CONVSCOPE_JIT"
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 6, 13, 13), dtype=np.float32)
    for w_shape, groups in (((6, 6, 3, 3), 1), ((6, 1, 3, 3), 6), ((4, 6, 5, 5), 1)):
        w = rng.standard_normal(w_shape, dtype=np.float32)
        expected = get_engine("reference").conv2d(x, w, None, 1, 1, 1, groups)
        for name in ("auto", "direct", "im2col", "winograd", "fft"):
            assert_conv_close(get_engine(name).conv2d(x, w, None, 1, 1, 1, groups), expected)


def test_warm_up_loads_every_kernel() -> None:
    """Every compiled kernel an engine calls has its float32 version loaded (or compiled) by
    warm_up, so that the first image does not wait for a compiler."""
    assert _jit.warm_up() is (_jit.kernels() is not None)
    kernels = _jit.kernels()
    if kernels is None:
        return
    from numba.core.registry import CPUDispatcher

    public = {
        name: f
        for name, f in vars(kernels).items()
        if isinstance(f, CPUDispatcher) and not name.startswith("_")
    }
    assert {
        "depthwise",
        "patches",
        "phase_planes",
        "patches_wide",
        "crop_rows",
        "winograd_input",
        "winograd_output",
        "winograd_filter",
    } <= set(public)
    cold = [name for name, f in public.items() if not any("float32" in str(sig[0]) for sig in f.signatures)]
    assert not cold, f"not warmed up: {cold}"


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize(("kernel", "mult"), [(3, 1), (5, 1), (3, 2), (5, 2), (7, 1), (2, 1)])
def test_compiled_depthwise_matches_torch_for_every_kernel_path(workers, kernel, mult, monkeypatch) -> None:
    """The 3x3 and 5x5 loops (views made once per call) and the generic one (other sizes,
    channel multipliers): strides, dilation, odd sizes, a batch, with and without bias, the
    channels split in pieces that start anywhere."""
    if _jit.kernels() is None:
        pytest.skip("numba is not available: the engines run their NumPy forms")
    monkeypatch.setattr(_parallel, "WORKERS", workers)
    monkeypatch.setattr(_parallel, "KERNEL_OPS", 1)
    rng = np.random.default_rng(kernel * 10 + mult)
    c = 7
    x = rng.standard_normal((2, c, 14, 13), dtype=np.float32)
    w = rng.standard_normal((c * mult, 1, kernel, kernel), dtype=np.float32)
    b = rng.standard_normal(c * mult, dtype=np.float32)
    direct = get_engine("direct")
    for stride, padding, dilation in [(1, kernel // 2, 1), (2, kernel // 2, 1), (1, 0, 2), (2, 3, 1)]:
        for bias in (b, None):
            expected = get_engine("reference").conv2d(x, w, bias, stride, padding, dilation, c)
            result = direct.run(x, w, bias, stride, padding, dilation, c)
            assert result.algorithm == "direct"
            assert_conv_close(result.output, expected)


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("c_out", [1, 4, 6, 13])
def test_compiled_dense_3x3_matches_torch(workers, c_out, monkeypatch) -> None:
    """The compiled dense tap loop (stems): output channels in groups of four (the last cut),
    split over pieces; strides, dilation, padding, a batch, with and without bias."""
    if _jit.kernels() is None:
        pytest.skip("numba is not available: the engines run their NumPy forms")
    from engine.direct import compiled_dense

    monkeypatch.setattr(_parallel, "WORKERS", workers)
    monkeypatch.setattr(_parallel, "KERNEL_OPS", 1)
    rng = np.random.default_rng(c_out)
    x = rng.standard_normal((2, 3, 23, 18), dtype=np.float32)
    w = rng.standard_normal((c_out, 3, 3, 3), dtype=np.float32)
    b = rng.standard_normal(c_out, dtype=np.float32)
    for stride, padding, dilation in [(1, 1, 1), (2, 1, 1), ((2, 1), (0, 2), 1), (1, 2, 2), (3, 0, 1)]:
        for bias in (b, None):
            spec = make_spec(x.shape, w.shape, None, stride, padding, dilation)
            assert compiled_dense(spec)
            expected = get_engine("reference").conv2d(x, w, bias, stride, padding, dilation)
            result = get_engine("direct").run(x, w, bias, stride, padding, dilation)
            assert_conv_close(result.output, expected)


def test_auto_times_the_dense_tap_loop_only_where_it_can_win() -> None:
    auto = AutoEngine()
    stem = make_spec((1, 3, 32, 32), (8, 3, 3, 3), None, 2, 1)
    assert "direct" in auto.candidates(stem) and "im2col" in auto.candidates(stem)
    wide = make_spec((1, 64, 16, 16), (8, 64, 3, 3), None, 1, 1)
    five = make_spec((1, 3, 32, 32), (8, 3, 5, 5), None, 1, 2)
    grouped = make_spec((1, 8, 16, 16), (8, 4, 3, 3), None, 1, 1, 1, 2)
    for spec in (wide, five, grouped):
        assert "direct" not in auto.candidates(spec)
    assert "direct" not in AutoEngine(jit=False).candidates(stem)


def test_no_compiled_kernel_calls_one_of_another_module() -> None:
    """numba's disk cache checks only the file that defines a kernel: a kernel calling a
    compiled function of another module would run a stale copy of it after that module
    changed (an upgrade of the app, an edit). Every compiled function a kernel module can see
    is its own."""
    if _jit.kernels() is None:
        pytest.skip("numba is not available")
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    package = importlib.import_module("engine._kernels")
    modules = [m.name for m in pkgutil.iter_modules(package.__path__) if m.name != "_shared"]
    assert {"depthwise", "direct", "im2col", "winograd"} <= set(modules)
    for name in modules:
        module = importlib.import_module(f"engine._kernels.{name}")
        foreign = [
            attr
            for attr, value in vars(module).items()
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ != module.__name__
        ]
        assert not foreign, f"engine._kernels.{name} sees compiled functions of other modules: {foreign}"


def test_serial_holds_only_the_calling_thread_to_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import engine

    monkeypatch.setattr(_parallel, "WORKERS", 2)
    seen: dict[str, int] = {}

    def other() -> None:
        seen["other"] = len(_parallel.pieces(1000))

    with engine.serial():
        seen["inside"] = len(_parallel.pieces(1000))
        t = threading.Thread(target=other)
        t.start()
        t.join()
        with engine.serial():  # nested: still one, and the outer one still holds after
            pass
        seen["after nested"] = len(_parallel.pieces(1000))
    seen["outside"] = len(_parallel.pieces(1000))
    assert seen == {"inside": 1, "other": 2, "after nested": 1, "outside": 2}
