"""The engines' pieces on numba's OpenMP team: every piece runs, GEMMs split either way give
NumPy's product (padded rows, batches, float64), the Python helper threads still work when the
team is off, the user's OpenMP settings are left as found, and torch keeps its cores in the
runner only when the team is on."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from engine import _jit, _parallel
from models import engine_mode
from models.engine_mode import ConvRouter


@pytest.fixture(autouse=True)
def _team_not_resting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Earlier tests' concurrent launches (two threads, three pieces on two cores) may have put
    the team aside as if the machine were busy: each test here starts with it back."""
    monkeypatch.setattr(_parallel.team, "_resting_until", 0.0)


@pytest.fixture(params=["team", "python threads"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test once on the team (where this machine has one) and once on Python threads."""
    if request.param == "team" and not _parallel.uses_team():
        pytest.skip(f"no thread team here: {_parallel.team.reason}")
    if request.param == "python threads":
        monkeypatch.setattr(_parallel.team, "_ready", False)
    monkeypatch.setattr(_parallel, "WORKERS", 2)
    return request.param


def test_the_team_says_what_it_is_or_why_not() -> None:
    assert isinstance(_parallel.uses_team(), bool)
    assert _parallel.team.reason  # "numba's omp team", or why the helper threads are used


def test_every_piece_of_a_kernel_runs_once(mode: str) -> None:
    kernels = _jit.kernels()
    if kernels is None:
        pytest.skip("numba is not available")
    marks = np.zeros(10, dtype=np.int64)
    _parallel.run_kernel(kernels.blas.probe, (marks,), [(0, 3), (3, 7), (7, 10)])
    assert marks.tolist() == list(range(1, 11))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("m", "k", "n"),
    [(8, 27, 700), (64, 30, 20), (5, 3, 1), (40, 40, 40)],  # columns split, rows split, tiny, even
)
def test_split_gemms_equal_numpy(mode: str, dtype: type, m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m * n)
    a = rng.standard_normal((m, k + 3)).astype(dtype)[:, 1 : k + 1]  # rows padded on both ends
    b = rng.standard_normal((k, n + 5)).astype(dtype)[:, :n]
    wide = np.full((m, n + 7), np.nan, dtype=dtype)
    out = wide[:, 2 : n + 2]
    _parallel.matmul_rows(a, b, out, _parallel.pieces(m))
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-4)
    assert np.isnan(wide[:, :2]).all() and np.isnan(wide[:, n + 2 :]).all()  # nothing outside


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_split_batch_of_gemms_equals_numpy(mode: str, dtype: type) -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((16, 12, 9)).astype(dtype)
    a.flags.writeable = False  # a cached transformed filter is read-only
    b = rng.standard_normal((16, 9, 30)).astype(dtype)
    out = np.empty((16, 12, 30), dtype=dtype)
    _parallel.matmul_batch(a, b, out, _parallel.pieces(16))
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-5, atol=1e-4)


def test_the_probe_leaves_the_users_openmp_settings_as_found(monkeypatch: pytest.MonkeyPatch) -> None:
    if not _parallel.uses_team():
        pytest.skip(f"no thread team here: {_parallel.team.reason}")
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    fresh = _parallel._Team()
    assert fresh.ready()
    assert "GOMP_SPINCOUNT" not in os.environ
    monkeypatch.setenv("GOMP_SPINCOUNT", "123")
    assert _parallel._Team().ready()
    assert os.environ["GOMP_SPINCOUNT"] == "123"


def test_the_python_threads_can_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVSCOPE_ENGINE_THREADS", "python")
    fresh = _parallel._Team()
    assert not fresh.ready()
    assert fresh.reason == "CONVSCOPE_ENGINE_THREADS=python"


@pytest.mark.parametrize("share", [False, True])
def test_torch_keeps_its_threads_in_the_runner_only_beside_the_team(
    mode: str, share: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch job leaves torch every core beside the team; the window (share_cores) keeps
    torch to one thread while an engine computes; torch computing the convolutions itself
    (reference) keeps its threads either way."""
    before = torch.get_num_threads()
    if before < 2:
        pytest.skip("one core: nothing to keep")
    monkeypatch.setattr(engine_mode, "_share_cores", False)
    engine_mode.share_cores(share)
    with ConvRouter("auto").threads():
        inside = torch.get_num_threads()
    assert torch.get_num_threads() == before
    assert inside == (before if mode == "team" and not share else 1)
    with ConvRouter("reference").threads():
        assert torch.get_num_threads() == before


def test_warm_up_compiles_every_team_wrapper() -> None:
    """The first image does not wait for numba to compile the team's wrappers (~30 s on two
    cores the first time on a machine)."""
    if not _parallel.uses_team():
        pytest.skip(f"no thread team here: {_parallel.team.reason}")
    import importlib

    from numba.core.registry import CPUDispatcher

    assert _jit.warm_up()
    cold = []
    for name in ("blas", "depthwise", "direct", "im2col", "winograd"):
        module = importlib.import_module(f"engine._kernels.{name}")
        for attr, value in vars(module).items():
            if attr.endswith("_team") and attr != "probe_team" and isinstance(value, CPUDispatcher):
                if not any("float32" in str(sig) for sig in value.signatures):
                    cold.append(f"{name}.{attr}")
    assert not cold, f"not warmed up: {cold}"


def test_two_threads_launching_at_once_each_get_their_own_result(mode: str) -> None:
    """Two GUI lanes (the maps and the explainer) may run convolutions at the same time: each
    thread's launches get their own team and their own answer."""
    import threading

    from engine import get_engine
    from tests.conftest import assert_conv_close

    rng = np.random.default_rng(11)
    cases = [  # winograd, strided (phase planes), depthwise, pointwise
        (
            rng.standard_normal((1, 16, 30, 30), dtype=np.float32),
            rng.standard_normal((24, 16, 3, 3), dtype=np.float32),
            1,
            1,
            1,
        ),
        (
            rng.standard_normal((1, 8, 40, 40), dtype=np.float32),
            rng.standard_normal((16, 8, 3, 3), dtype=np.float32),
            2,
            1,
            1,
        ),
        (
            rng.standard_normal((1, 32, 28, 28), dtype=np.float32),
            rng.standard_normal((32, 1, 3, 3), dtype=np.float32),
            1,
            1,
            32,
        ),
        (
            rng.standard_normal((1, 64, 20, 20), dtype=np.float32),
            rng.standard_normal((48, 64, 1, 1), dtype=np.float32),
            1,
            0,
            1,
        ),
    ]
    expected = [get_engine("reference").conv2d(x, w, None, s, p, 1, g) for x, w, s, p, g in cases]
    failures: list[str] = []

    def lane(offset: int) -> None:
        try:
            for turn in range(40):
                i = (turn + offset) % len(cases)
                x, w, s, p, g = cases[i]
                assert_conv_close(get_engine("auto").conv2d(x, w, None, s, p, 1, g), expected[i])
        except BaseException as exc:  # reported below, on the test's thread
            failures.append(f"lane {offset}: {exc!r}")

    threads = [threading.Thread(target=lane, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a lane hung"
    assert not failures, failures


def test_a_busy_machine_puts_the_team_aside_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    """Launches that mostly wait for the team's other thread (another process has it off its
    core) send the pieces to the helper threads, and torch to one thread, for REST seconds;
    launches that wait little never do."""
    if not _parallel.uses_team():
        pytest.skip(f"no thread team here: {_parallel.team.reason}")
    import time

    fresh = _parallel._Team()
    assert fresh.ready()
    for _ in range(400):  # computing: no waiting at all
        fresh.timed(lambda: sum(range(20_000)))
    assert fresh.ready() and fresh.rests == 0
    for _ in range(80):  # waiting: 5 ms asleep per launch (one in SAMPLE is timed)
        fresh.timed(lambda: time.sleep(0.005))
    assert not fresh.ready() and fresh.rests >= 1
    monkeypatch.setattr(_parallel, "team", fresh)
    assert not _parallel.uses_team()
    with ConvRouter("auto").threads():
        assert torch.get_num_threads() == 1  # torch on one thread meanwhile
    monkeypatch.setattr(fresh, "_resting_until", time.monotonic() - 1)  # REST is over
    assert fresh.ready()


def test_a_forked_child_computes_on_its_own_thread(tmp_path) -> None:
    """fork() after the team ran: the child must not touch GNU OpenMP (numba stops the process)
    nor wait for helper threads it does not have; it gets the right answer on its own thread."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import os, sys
        import numpy as np
        from engine import get_engine, _parallel
        _parallel.WORKERS = 2
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, 16, 40, 40), dtype=np.float32)
        w = rng.standard_normal((32, 16, 3, 3), dtype=np.float32)
        expected = get_engine("reference").conv2d(x, w, None, 1, 1)
        get_engine("auto").conv2d(x, w, None, 1, 1)  # the team (or the helpers) in the parent
        pid = os.fork()
        if pid == 0:
            out = get_engine("im2col").conv2d(x, w, None, 1, 1)
            ok = np.abs(out - expected).max() < 1e-3 and not _parallel.uses_team()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_damaged_kernel_cache_gives_way_to_the_numpy_forms(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel whose disk cache file is damaged (numba's unpickling fails) does not stop the
    engine: the cache files are deleted, the call is answered by the NumPy forms (against the
    oracle), and the reason is said."""
    import pickle
    import types

    from engine import get_engine

    kernels = _jit.kernels()
    if kernels is None:
        pytest.skip("numba is not available")
    cache = tmp_path / "_kernels" / "__pycache__"
    cache.mkdir(parents=True)
    for name in ("im2col.patches-59.py311.nbi", "im2col.patches-59.py311.1.nbc", "keep.txt"):
        (cache / name).write_bytes(b"x")

    def damaged(*args: object) -> None:
        raise pickle.UnpicklingError("pickle data was truncated")

    fake = types.SimpleNamespace(**{k: getattr(kernels, k) for k in kernels.__all__})
    fake.__file__ = str(tmp_path / "_kernels" / "__init__.py")
    fake.winograd_input = fake.depthwise = fake.patches = damaged
    monkeypatch.setattr(_jit, "_module", fake)
    monkeypatch.setattr(_jit, "_error", None)
    monkeypatch.setattr(_parallel.team, "_ready", _parallel.team._ready)
    monkeypatch.setattr(_parallel.team, "reason", _parallel.team.reason)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 8, 20, 20), dtype=np.float32)
    w = rng.standard_normal((8, 8, 3, 3), dtype=np.float32)
    out = get_engine("winograd").conv2d(x, w, None, 1, 1)
    np.testing.assert_allclose(out, get_engine("reference").conv2d(x, w, None, 1, 1), rtol=1e-4, atol=1e-4)
    assert _jit.kernels() is None
    assert "disk cache was damaged" in (_jit.unavailable_reason() or "")
    assert sorted(p.name for p in cache.iterdir()) == ["keep.txt"]
    assert not _parallel.uses_team()
