"""What the window computes, without the window: a request in, an outcome out.

A :class:`Request` is what the user asked to see; :func:`run` turns it into an :class:`Outcome`
(the model loaded, the picture read and prepared, the run on the chosen engine), reusing what the
previous outcome already holds; :func:`compare` runs torch on the same input for the engine's
difference from it. Both are plain functions of ``progress(done, total)`` and ``cancel()`` (the
worker's job signature): they run on any thread, raise :class:`~models.errors.Cancelled` when
cancelled, and change nothing they were given (a cancelled run leaves the previous outcome whole).

Reuse rules (:func:`run`):

- the same model (name, untrained tick, trust, architecture, input settings) → the loaded model
  object is reused, unless a job left behind still runs on it (:class:`Models`);
- the same picture (path, or the same paste) → the picture already read is reused;
- the same model and picture → torch's outputs (the reference) are reused for the comparison;
- engine ``reference`` is torch itself: its outputs are the reference (difference 0).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from models.errors import Cancelled
from models.images import DEFAULT_SAMPLE, PreparedImage, load_image, prepare_image, sample_images
from models.runner import RunResult, run_model
from models.sources import LoadedModel, load_model

MODEL_FIELDS = ("model", "untrained", "trust", "arch", "input_size", "channels", "mean", "std", "labels")
IMAGE_FIELDS = ("image", "pasted")
ALL_FIELDS = (*MODEL_FIELDS, *IMAGE_FIELDS, "engine")


@dataclass
class Request:
    """What the user asked to see."""

    model: str
    untrained: bool
    trust: bool
    image: str | None  # a path; None: the bundled sample
    engine: str
    arch: str | None = None  # a state dict's architecture
    input_size: tuple[int, int] | None = None  # for a model file that does not tell
    channels: int | None = None
    mean: tuple[float, ...] | None = None  # a model file's settings (gui/model_settings.py)
    std: tuple[float, ...] | None = None
    labels: str | None = None
    # a pasted or dropped picture (not a file): the picture and how to name it
    pasted: tuple[Image.Image, str] | None = field(default=None, compare=False, repr=False)


def same(a: Request, b: Request) -> bool:
    """The same request (a pasted picture is the same only if it is the same paste)."""
    return a == b and a.pasted is b.pasted


def same_model(a: Request, b: Request) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in MODEL_FIELDS)


def same_picture(a: Request, b: Request) -> bool:
    return a.image == b.image and a.pasted is b.pasted


@dataclass(eq=False)  # an outcome is itself: compared by identity, never by its arrays
class Outcome:
    """A request's result. ``comparison`` (torch's run: ``reference`` outputs, ``max_diff``) is
    None until the comparison has run (:func:`compare`, then :meth:`compared`)."""

    request: Request
    model: LoadedModel
    pil: Image.Image
    source: str
    image: PreparedImage
    result: RunResult
    comparison: Comparison | None = None

    @property
    def reference(self) -> dict[str, np.ndarray] | None:
        return None if self.comparison is None else self.comparison.reference

    @property
    def max_diff(self) -> float | None:
        return None if self.comparison is None else self.comparison.max_diff

    def compared(self, comparison: Comparison) -> None:
        """Take the comparison's answer (on the thread that owns the outcome)."""
        self.comparison = comparison

    def summary(self) -> str:
        """One line about the run, and the comparison's state."""
        result = self.result
        top = ""
        if result.predictions:
            top = f" · top-1 {result.predictions[0][0]} ({result.predictions[0][1]:.0%})"
        name = os.path.basename(self.model.name) or self.model.name  # a file: its name, not its path
        return (
            f"{name} on {self.request.engine}: {len(result.layers)} layers, "
            f"{result.conv_calls} convolutions in {result.total_ms:.0f} ms{top}"
        )

    def comparison_text(self, comparing: bool) -> str:
        """`` · comparing with torch…`` while torch runs, `` · max |Δ| from torch 1.2e-06`` after."""
        if self.max_diff is not None:
            return f" · max |Δ| from torch {self.max_diff:.1e}"
        return " · comparing with torch…" if comparing else ""


@dataclass(frozen=True)
class Comparison:
    """Torch's run on an outcome's input: its conv outputs, per-conv times, total, and the
    outcome's largest difference from it over every conv output."""

    reference: dict[str, np.ndarray]
    times: dict[str, float]
    total_ms: float
    max_diff: float | None
    diffs: dict[str, float]


class Models:
    """Which models a job is running on. A lane runs one job at a time, so a model still in use
    when a job starts is in the hands of a job that was left behind, stuck inside it; its hooks
    are still on the modules and would fire in our run too. Such a model is not reused: the job
    loads a fresh copy. Thread-safe."""

    def __init__(self, loader=None) -> None:
        self._lock = threading.Lock()
        self._in_use: dict[int, int] = {}
        self._loader = loader  # None: models.sources.load_model, looked up at call time

    def get(self, request: Request, model: LoadedModel | None, progress=None, cancel=None) -> LoadedModel:
        """``model`` if given and free, else ``request``'s model, loaded."""
        if model is not None and not self.in_use(model):
            return model
        loader = self._loader or load_model
        return loader(
            request.model,
            untrained=request.untrained,
            trust=request.trust,
            arch=request.arch,
            input_size=request.input_size,
            channels=request.channels,
            mean=request.mean,
            std=request.std,
            labels=request.labels,
            progress=progress,
            cancel=cancel,
        )

    def in_use(self, model: LoadedModel) -> bool:
        with self._lock:
            return id(model.module) in self._in_use

    @contextlib.contextmanager
    def using(self, model: LoadedModel):
        key = id(model.module)  # alive while in use: the job holds it
        with self._lock:
            self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use[key] -= 1
                if not self._in_use[key]:
                    del self._in_use[key]


def _check(cancel) -> None:
    if cancel is not None and cancel():
        raise Cancelled("cancelled")


def picture(request: Request, previous: Outcome | None = None) -> tuple[Image.Image, str]:
    """The request's picture and its name (the previous one's, if the same picture)."""
    if previous is not None and same_picture(request, previous.request):
        return previous.pil, previous.source
    if request.pasted is not None:
        return request.pasted
    if request.image is None:
        return load_image(sample_images()[DEFAULT_SAMPLE]), f"sample: {DEFAULT_SAMPLE}"
    return load_image(request.image), request.image


def run(request: Request, previous: Outcome | None, models: Models, progress=None, cancel=None) -> Outcome:
    """``request`` run: a new :class:`Outcome` (``previous`` is read, never changed)."""
    _check(cancel)
    reuse_model = previous is not None and same_model(request, previous.request)
    model = models.get(request, previous.model if reuse_model else None, progress, cancel)
    _check(cancel)
    pil, source = picture(request, previous)
    image = prepare_image(pil, model.preprocess, source=source)
    with models.using(model):
        result = run_model(model, image, request.engine, progress=progress, cancel=cancel)
    outcome = Outcome(request, model, pil, source, image, result)
    if request.engine == "reference":
        outcome.compared(_compared(result, conv_outputs(result), result))
    elif reuse_model and previous.source == source and previous.comparison is not None:
        outcome.compared(_compared(result, previous.comparison.reference, previous.comparison))
    return outcome


def compare(outcome: Outcome, models: Models, progress=None, cancel=None) -> Comparison:
    """Run torch on ``outcome``'s input (the outcome is not changed: hand the answer to
    :meth:`Outcome.compared` on its own thread)."""
    if outcome.request.engine == "reference":
        return _compared(outcome.result, conv_outputs(outcome.result), outcome.result)
    model = models.get(outcome.request, outcome.model, progress, cancel)
    with models.using(model):
        # torch's first pass of a model pays its one-time set-up (2 s seen against 20 ms), and
        # on a busy machine one pass can take 50x another: each time shown is the best of two
        runs = [run_model(model, outcome.image, "reference", cancel=cancel) for _ in range(2)]
    ref = runs[-1]
    comparison = _compared(outcome.result, conv_outputs(ref), ref)
    times = [conv_times(r) for r in runs]
    best = {k: min(t[k] for t in times if k in t) for k in comparison.times}
    return replace(comparison, times=best, total_ms=min(r.total_ms for r in runs))


def _compared(
    result: RunResult, reference: dict[str, np.ndarray], torch_run: RunResult | Comparison
) -> Comparison:
    """``result`` against ``reference``; torch's times from its run (or an earlier comparison)."""
    diffs = differences(result, reference)
    times = torch_run.times if isinstance(torch_run, Comparison) else conv_times(torch_run)
    return Comparison(reference, times, torch_run.total_ms, max(diffs.values()) if diffs else None, diffs)


def differences(result: RunResult, reference: dict[str, np.ndarray]) -> dict[str, float]:
    """Max |result − reference| per conv output present in both."""
    return {
        n: float(np.abs(result.activations[n] - a).max())
        for n, a in reference.items()
        if n in result.activations
    }


def conv_outputs(result: RunResult) -> dict[str, np.ndarray]:
    return {la.name: result.activations[la.name] for la in result.layers if la.is_conv}


def conv_times(result: RunResult) -> dict[str, float]:
    return {la.name: la.time_ms for la in result.layers if la.is_conv}
