"""Time every engine on one image, several runs each: per-layer medians, the algorithm each
engine ran per layer, and how far each engine's outputs are from torch's.

One run's layer times are noisy (another process, a cache, a page fault: a single run once made
Winograd's im2col fallback 60x faster than im2col on the same 1x1 layer); the median of several
is what the Engines tab shows. A plain function with ``progress`` and ``cancel``, for a worker
lane.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.capture import CancelFn, ProgressFn
from models.errors import Cancelled
from models.images import PreparedImage
from models.runner import RunResult, run_model
from models.sources import LoadedModel


@dataclass
class EngineTiming:
    """One engine's runs on one image."""

    engine: str
    runs: int
    times: dict[str, float]  # conv layer -> median ms over the runs
    total_ms: float  # median of the runs' totals
    algorithms: dict[str, str] = field(default_factory=dict)  # conv layer -> algorithm(s) run
    max_diff: float | None = None  # max |output - torch's| over the conv outputs, last run
    all_times: dict[str, list[float]] = field(default_factory=dict, repr=False)  # every run's


def summarize(engine: str, results: list[RunResult]) -> EngineTiming:
    """Medians over ``results`` (runs of one engine on one image), per conv layer and in total."""
    if not results:
        raise ValueError("no runs to summarize")
    all_times: dict[str, list[float]] = {}
    algorithms: dict[str, list[str]] = {}
    for r in results:
        for la in r.layers:
            if la.is_conv:
                all_times.setdefault(la.name, []).append(la.time_ms)
                if la.algorithm and la.algorithm not in algorithms.setdefault(la.name, []):
                    algorithms[la.name].append(la.algorithm)
    return EngineTiming(
        engine=engine,
        runs=len(results),
        times={k: float(statistics.median(v)) for k, v in all_times.items()},
        total_ms=float(statistics.median(r.total_ms for r in results)),
        algorithms={k: " / ".join(v) for k, v in algorithms.items()},
        all_times=all_times,
    )


def conv_outputs(result: RunResult) -> dict[str, np.ndarray]:
    return {la.name: result.activations[la.name] for la in result.layers if la.is_conv}


def max_diff(result: RunResult, reference: dict[str, np.ndarray]) -> float | None:
    diffs = [
        float(np.abs(np.asarray(result.activations[n]) - a).max())
        for n, a in reference.items()
        if n in result.activations
    ]
    return max(diffs) if diffs else None


def private_copy(model: LoadedModel) -> LoadedModel:
    """The model with its own copy of the module: the timing runs hook and swap its layers, and
    must not meet the window's runs on the same module."""
    try:
        module = copy.deepcopy(model.module)
    except Exception as exc:  # a module that cannot be copied (rare): say so, do not race
        raise RuntimeError(f"cannot copy {model.name} to time it on its own: {exc}") from exc
    return dataclasses.replace(model, module=module)


def time_engines(
    model: LoadedModel,
    image: PreparedImage,
    engines: list[str],
    runs: int = 5,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    run: Callable[..., RunResult] = run_model,
) -> list[EngineTiming]:
    """Run ``image`` through ``model`` ``runs`` times on each engine (torch's ``reference``
    first, so every other engine's difference from it is known). ``progress(done, total)`` counts
    runs."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    order = sorted(engines, key=lambda e: e != "reference")
    total = len(order) * runs
    done = 0
    reference: dict[str, np.ndarray] | None = None
    timings = []
    for engine in order:
        results = []
        for _ in range(runs):
            if cancel is not None and cancel():
                raise Cancelled("timing cancelled")
            results.append(run(model, image, engine, cancel=cancel))
            done += 1
            if progress is not None:
                progress(done, total)
        timing = summarize(engine, results)
        last = results[-1]
        if engine == "reference":
            reference = conv_outputs(last)
            timing.max_diff = 0.0
        elif reference is not None:
            timing.max_diff = max_diff(last, reference)
        timings.append(timing)
        del results, last
    return timings
