"""A short seeded random walk through the real window (issue 11.8); ``tools/monkey.py`` is the
long one. Fails on any exception, Qt warning, Python warning, a job's unexpected error, or a final
state that disagrees with itself."""

from __future__ import annotations

import os

from tools.monkey import Monkey, offline

SECONDS = float(os.environ.get("CONVSCOPE_MONKEY_SECONDS", "20"))
SEED = int(os.environ.get("CONVSCOPE_MONKEY_SEED", "11"))


def test_a_random_walk_through_the_window_finds_nothing(window, qtbot, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # nothing cached: downloads are tried
    monkey = Monkey(window, SEED, tmp_path)
    with offline(), monkey.watching():
        window.start(model="classic", engine="im2col")
        assert monkey.settle_fully()
        monkey.run(SECONDS)
        idle = monkey.settle_fully(patience_s=5.0)  # the test's time is bounded: cancel what is long
        monkey.check_settled()  # consistent, and showing what was asked for since the last settle
        problems = monkey.problems
    assert idle, "the window never became idle"
    assert not problems, f"seed {SEED}:\n" + "\n".join(problems[:10])
    done = sum(monkey.done.values())
    assert done > 100 and len(monkey.done) >= 12, monkey.done  # it did walk about
