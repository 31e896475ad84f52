"""The window's requests: every choice the user makes becomes a :class:`~models.pipeline.Request`
run on the worker (:func:`models.pipeline.run`); its outcome is shown, its failure answered by
its type (a question for a pickled file or a state dict, the offline message with its button,
else the message), then torch's comparison runs quietly. A mixin of :class:`gui.main_window.MainWindow`.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QTimer

from gui import dialogs, model_settings
from gui.model_settings import ModelSettings, file_key
from gui.worker import error_message, settle_heap
from models import pipeline
from models.errors import (
    ArchitectureNeededError,
    ImageError,
    LayerError,
    ModelError,
    UntrustedModelError,
    WeightsUnavailableError,
)
from models.layers import find_layer
from models.pipeline import ALL_FIELDS, IMAGE_FIELDS, MODEL_FIELDS, Outcome, Request
from models.sources import DEFAULT_MODEL, available_models


class Requests:
    # ----------------------------------------------------------------- requests
    # Every user action updates ``wanted`` (all the choices so far) and submits it, superseding
    # the run before it: a click made while a run is under way builds on what was asked, not on
    # what is shown. The menus show ``wanted``; when the latest run fails or is cancelled,
    # ``wanted`` goes back to what is shown, so a choice that never ran is never shown as made.
    def start(
        self,
        image: str | None = None,
        model: str | None = None,
        engine: str | None = None,
        untrained: bool | None = None,
        trust: bool = False,
        layer: str | None = None,
        arch: str | None = None,
        input_size: tuple[int, int] | None = None,
        channels: int | None = None,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        labels: str | None = None,
        fall_back: bool = True,
    ) -> None:
        """The first run: command-line choices over remembered settings over defaults (a model
        file's own settings, Model file settings…, when the command line gives none).
        ``fall_back``: a first model that fails to load gives way to the default model (a
        window the user works in; not a screenshot, which shows exactly what was asked)."""
        remembered = self.model_settings.get(model) if model else None
        given = {"input_size": input_size, "channels": channels, "mean": mean, "std": std, "labels": labels}
        if remembered is not None and not any(v is not None for v in given.values()):
            given = remembered.load_kwargs()
        changes: dict = {"image": image, "arch": arch, "trust": trust, **given}
        if model:
            changes["model"] = model
        self._fall_back = self._interactive = fall_back
        if engine:
            changes["engine"] = engine
        if untrained is not None and (untrained or model):
            changes["untrained"] = untrained
            self._untrained_once = False
        self._initial_layer = layer
        self._ask(**changes)

    @property
    def request(self) -> Request:
        """What the user has asked for so far (``wanted``)."""
        return self.wanted

    def open_image(self, path: str) -> None:
        self._ask(image=path, pasted=None)

    def open_pil_image(self, image: Image.Image, source: str) -> None:
        """An image that is not a file (pasted, dropped)."""
        self._ask(image=f"<{source}>", pasted=(image, source))

    def open_model(self, name: str, trust: bool = False) -> None:
        """Another model. Random weights chosen for one model (the offline message's button) do
        not carry over: only the Untrained tick, set by the user, applies to every model."""
        changes = {"untrained": False} if self._untrained_once else {}
        self._untrained_once = False
        remembered = self.model_settings.get(name) or ModelSettings()  # this file's, if set
        self._ask(model=name, trust=trust, arch=None, **remembered.load_kwargs(), **changes)

    def edit_model_settings(self) -> None:
        """Model > Model file settings…: input size, channels, mean/std and labels of the model
        file shown; remembered for that file, and run."""
        path = self.wanted.model
        if file_key(path) is None:
            self.show_error("settings are for model files: a catalog model has its own")
            return
        w = self.wanted
        current = ModelSettings(w.input_size, w.channels, w.mean, w.std, w.labels)
        shown = (
            self.outcome.model.preprocess
            if self.outcome is not None and self.outcome.request.model == path
            else None
        )
        values = model_settings.ask(self, path, self.model_settings, current, shown)
        if values is not None and values != current:
            self._ask(**values.load_kwargs())

    def load_random_weights(self, model: str) -> None:
        """``model`` with random weights, this once (the offline message's button)."""
        self._ask(model=model, untrained=True, arch=None, input_size=None, channels=None)
        self._untrained_once = True  # the tick shows what runs; the next model clears it

    def set_untrained(self, untrained: bool) -> None:
        self._untrained_once = False  # the user's own tick: it applies to every model from now
        if untrained != self.wanted.untrained:
            self._ask(untrained=untrained)

    def set_engine(self, engine: str) -> None:
        if engine != self.wanted.engine or self.outcome is None:
            self._ask(engine=engine)

    def cancel(self) -> None:
        """The Cancel button: stop the run (a run that does not stop is left behind)."""
        if self.worker.busy and not self.worker.quiet:
            self.show_status("cancelling…")
        self.worker.cancel()

    def _ask(self, **changes) -> None:
        self.wanted = replace(self.wanted, **changes)
        self._sync_menus()
        self._submit(self.wanted)

    def _back_to_shown(self) -> None:
        """The latest request was cancelled: what is wanted is what is shown again."""
        if self.outcome is not None:
            self.wanted = self.outcome.request
        self._sync_menus()

    def _drop_failed_choice(self, exc: BaseException) -> None:
        """The latest request failed: take back the choice that failed (the image for an image
        error, the model for a model error, everything for anything else) and run the user's
        other choices made meanwhile, e.g. an engine picked while a broken photo was opening."""
        shown = self.outcome.request if self.outcome is not None else None
        if self._falls_back(exc):
            # the first model fails to load — a remembered file deleted, weights not
            # downloadable, a question declined: start with the default model, not an empty window
            self._fall_back = False
            if self.wanted.model != DEFAULT_MODEL:
                self._ask(
                    model=DEFAULT_MODEL,
                    arch=None,
                    trust=False,
                    input_size=None,
                    channels=None,
                    mean=None,
                    std=None,
                    labels=None,
                )
                return
        if shown is None:
            if isinstance(exc, ImageError):
                self.wanted = replace(self.wanted, image=None, pasted=None)  # the sample, next time
            self._sync_menus()
            return
        fields = (
            IMAGE_FIELDS
            if isinstance(exc, ImageError)
            else MODEL_FIELDS
            if isinstance(exc, ModelError)
            else ALL_FIELDS
        )
        kept = replace(self.wanted, **{f: getattr(shown, f) for f in fields})
        if pipeline.same(kept, shown) or pipeline.same(kept, self.wanted):  # nothing else asked
            self._back_to_shown()
            return
        self._ask(**{f: getattr(kept, f) for f in ALL_FIELDS})

    def _falls_back(self, exc: BaseException) -> bool:
        """Whether this failure of the first run gives way to the default model."""
        return (
            self.outcome is None
            and self._fall_back
            and isinstance(exc, ModelError)
            and self.wanted.model != DEFAULT_MODEL
        )

    def _submit(self, request: Request) -> None:
        previous, models = self.outcome, self._models
        self._erf_for = None  # a field still being computed is for what this run replaces
        self.show_status(f"running {request.model} on {request.engine}…")
        self.worker.submit(
            lambda progress, cancel: pipeline.run(request, previous, models, progress, cancel),
            self._on_outcome,
            lambda exc, r=request: self._on_failed(exc, r),
        )

    def _compare(self) -> None:
        """Run torch on the shown image (once per model and image) for the engine's Δ."""
        outcome = self.outcome
        if outcome is None or outcome.comparison is not None:  # called as a job finishes
            return
        painted = threading.Event()
        QTimer.singleShot(0, painted.set)  # runs after the pending paint events
        models = self._models

        def job(progress, cancel) -> pipeline.Comparison:
            painted.wait(1.0)  # the user's maps first, then the comparison
            return pipeline.compare(outcome, models, progress, cancel)

        def done(comparison: pipeline.Comparison) -> None:
            outcome.compared(comparison)
            self._comparing = False
            if outcome is self.outcome:
                self._show()  # the engines' table takes torch's run and the Δ
                if self._status_kind == "run":
                    self._show_run_status()

        def failed(exc: BaseException) -> None:
            self._comparing = False
            self._show_exception(exc)

        self._comparing = True
        self.worker.submit(job, done, failed, quiet=True)
        if self._status_kind == "run":
            self._show_run_status()

    def _show_run_status(self) -> None:
        outcome = self.outcome
        self.show_status(outcome.summary() + outcome.comparison_text(self._comparing), kind="run")

    def _on_failed(self, exc: BaseException, request: Request) -> None:
        name = Path(request.model).name
        actions: list = []
        if isinstance(exc, UntrustedModelError) and not request.trust:
            self.show_status(f"{name} can run code: load it?")  # not "running…" meanwhile
            if dialogs.ask_trust(self, request.model, str(exc)):
                self._ask(trust=True)
                return
            message = dialogs.declined_trust(name)
        elif isinstance(exc, ArchitectureNeededError) and not request.arch:
            self.show_status(f"{name} holds weights only: which architecture?")
            arch = dialogs.ask_arch(self, request.model, exc.guess)
            if arch:
                self._ask(arch=arch)
                return
            message = dialogs.no_architecture(name)
        elif isinstance(exc, ArchitectureNeededError):  # the architecture chosen does not fit
            what = exc.guess or "the architecture they were trained in"
            message = (
                f"{error_message(exc)}.\n\nOpen the file again (Model > Open model file…) "
                f"and choose {what} when asked which architecture."
            )
            actions = [("Choose the architecture again…", lambda m=request.model: self.open_model(m))]
        elif isinstance(exc, WeightsUnavailableError):
            message = dialogs.weights_unavailable(exc, request.model)
            actions = [(dialogs.RANDOM_WEIGHTS, lambda m=request.model: self.load_random_weights(m))]
        else:
            message = error_message(exc)
        if self._falls_back(exc):
            message += f"\n\nShowing {DEFAULT_MODEL} instead."
        self.show_error(message, actions)
        self._drop_failed_choice(exc)

    def _on_cancelled(self) -> None:
        self.show_status("cancelled" + self._still_showing())
        self._back_to_shown()

    def _on_abandoned(self) -> None:
        left = self.worker.left_behind
        self.show_status(
            "cancelled: the run did not stop and was left behind"
            + (
                f" ({left} runs go on in the background until they end)"
                if left > 1
                else " (it may go on in the background until it ends)"
            )
            + self._still_showing()
        )
        self._back_to_shown()

    def _still_showing(self) -> str:
        shown = self.outcome
        return f" · still showing {shown.model.name} on {shown.source}" if shown else ""

    def _show_exception(self, exc: BaseException) -> None:
        self.show_error(error_message(exc))

    def _on_outcome(self, outcome: Outcome) -> None:
        previous = self.outcome
        self.outcome = outcome  # the latest request's: outcome.request is what is wanted
        settle_heap()  # the first model's objects out of later collections
        self.last_error = None
        result = outcome.result
        if (
            previous is None
            or previous.model is not outcome.model
            or previous.image.source != outcome.image.source
        ):
            self.input_panel.set_image(outcome.image)
        self._sync_menus()
        QTimer.singleShot(
            0,
            lambda: (
                outcome is self.outcome
                and self.predictions.set_predictions(
                    result.predictions, outcome.model.pretrained, result.prediction_note
                )
            ),
        )  # after the maps
        names = [la.name for la in result.layers]
        keep = (
            previous.result.layers[self.navigator.index()].name
            if previous and 0 <= self.navigator.index() < len(previous.result.layers)
            else None
        )
        asked_layer, self._initial_layer = self._initial_layer, None
        layer_name = asked_layer or keep
        index = (
            names.index(layer_name)
            if layer_name in names
            else next((i for i, la in enumerate(result.layers) if la.is_conv), 0)
        )
        self._show_run_status()  # before the layer: the layer's own lines replace a readout
        if asked_layer and asked_layer not in names:  # --layer, or a top-k crop's layer
            try:
                find_layer(result, asked_layer)
            except LayerError as exc:  # names close matches
                shown_instead = f"; showing {names[index]}" if self._interactive else ""
                self.show_error(f"{error_message(exc)}{shown_instead}")
        self.navigator.set_layers(result.layers, index)  # announces the layer: _show_layer
        self._remember()
        self.setWindowTitle(f"ConvScope — {outcome.model.name} — {outcome.source}")
        if outcome.request.image and not outcome.request.image.startswith("<"):
            self._add_recent(outcome.request.image)
        asked, self._initial_unit = self._initial_unit, None
        if asked is not None:
            unit, channel = asked
            if channel is not None:
                self.feature_maps.select_channel(channel)
            if unit is not None:
                self.select_unit(*unit, channel=channel)
        self._compare()  # on the worker thread while the maps paint

    def _sync_menus(self) -> None:
        """The model menu, the Untrained tick and the engine box show what is wanted (what is
        shown, once nothing runs)."""
        wanted = self.wanted
        action = self.model_actions.get(wanted.model)
        for a in self.model_actions.values():
            a.setChecked(a is action)
        self.untrained_action.blockSignals(True)
        self.untrained_action.setChecked(wanted.untrained)
        self.untrained_action.blockSignals(False)
        self.engine_panel.set_engine(wanted.engine)
        self.settings_action.setEnabled(file_key(wanted.model) is not None)

    def _remember(self) -> None:
        shown = self.outcome.request
        if shown.model in available_models():
            self.settings.setValue("model", shown.model)
            self.settings.setValue("untrained", shown.untrained)
            self.settings.setValue("untrained_once", self._untrained_once)
        self.settings.setValue("engine", shown.engine)
