"""The "Top examples" tab (#16): what a channel responds to, over a folder of the user's images.

Pick a folder (the button, a drop, the recent folders, the bundled samples); it is scanned with
the window's model on the window's engine (:func:`models.topk.scan`, on this view's ``topk-scan``
lane, with progress and Cancel; a cancelled scan resumes where it stopped, the store keeps
it). Then, for the window's layer and channel (or the channel box here), the ``k`` strongest
examples are read from the store and drawn as receptive-field crops (:mod:`gui.views.topk_tiles`;
the crops are cut on the ``topk-crops`` lane: stepping layers never runs the model). The
activation map overlay is the one thing that runs the model: the ``k`` images, on demand.
Clicking a crop opens its photo in the main view at that unit.

Results belong to the model and weights they were computed with: when the window shows another
model the crops are hidden and the view offers to scan again (instant when the store has that
model's scan); another engine keeps them (engines agree within 1e-4 of torch) and says so. A
scan running when the window changes model or engine is stopped (what it scanned is kept), and
so is one running when the cache is cleared (before the files go).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.view import Shown, View, Window
from gui.views.topk_folder import SAMPLES, FolderBar, ask_clear, clear_store, dropped_folder
from gui.views.topk_shown import ExamplesShown, engine_of
from gui.views.topk_status import ElidedLabel, ScanStatus, StaleBanner
from gui.views.topk_tiles import TileGrid
from gui.worker import Worker, error_message
from models.topk import DEFAULT_K, Store, TopKResult, messages, scan
from models.topk.crops import Example
from models.topk.keys import same_model

__all__ = ["SAMPLES", "TopKView", "ask_clear", "engine_of", "same_model"]


class TopKView(ExamplesShown, View):
    key = "topk"
    title = "Top examples"
    short_title = "Top-k"

    def __init__(
        self,
        window: Window | None = None,
        parent: QWidget | None = None,
        store: Store | None = None,
        k: int = DEFAULT_K,
        batch: int | None = None,
    ) -> None:
        super().__init__(window, parent)
        self.store = store  # None: the cache's, found when a scan starts ($CONVSCOPE_CACHE)
        self.k, self.batch = k, batch  # batch None: the scan's default
        self.folder: Path | None = None
        self.result: TopKResult | None = None
        self.scanned_with: tuple[object, str] | None = None  # (model, engine) of ``result``
        self.examples: list[Example] = []
        self._entries: list = []  # what the tiles show, for clicks
        self._layer: str | None = None  # the layer the tiles are of
        self._want_scan = False  # scan when a model is shown
        self._rate: list = [0.0, None]  # images/s and seconds left, written by the scan's thread
        self._last_progress = (0, 0)
        self._window_channel: int | None = None
        self._frame: tuple[int, int] | None = None  # the shown layer's crop frame (crops lane)
        self._scanning: tuple | None = None  # (model, engine, outcome) of the running scan
        self._stop_reason: str | None = None  # why the view stopped it: said when it stops
        self._stop_said_at = None  # the outcome shown when that was said (it goes stale after)
        self.scans = Worker(self, name="topk-scan")
        self.crops = Worker(self, name="topk-crops")
        self.setAcceptDrops(True)
        self._build()
        self.scans.progress.connect(self._on_progress)
        self.scans.busy_changed.connect(self._on_scan_busy)
        self.scans.cancelled.connect(self._on_scan_cancelled)
        self.scans.abandoned.connect(
            lambda: self.progress_label.setText(
                "the scan did not stop and was left behind; what it stored is kept"
            )
        )
        self._show_message(
            "Pick a folder of images: each channel's strongest examples in it are "
            "shown here. Try the bundled samples (Recent ▸ Bundled samples)."
        )

    # ----------------------------------------------------------------- construction
    def _build(self) -> None:
        self.folder_bar = FolderBar(lambda: getattr(self.window_services, "settings", None))
        self.folder_bar.chosen.connect(self.set_folder)
        self.scan_button, self.cancel_button = self.folder_bar.scan_button, self.folder_bar.cancel_button
        self.scan_button.clicked.connect(lambda: self.start_scan())
        self.cancel_button.clicked.connect(self.cancel_scan)

        self.status = ScanStatus()
        self.progress, self.progress_label = self.status.bar, self.status.label
        self.skipped_label = self.status.skipped

        self.banner = StaleBanner()
        self.banner_label, self.banner_button = self.banner.label, self.banner.button
        self.banner.scan.connect(lambda rescan: self.start_scan(rescan=rescan))

        self.layer_label = ElidedLabel()
        self.channel_box = QSpinBox()
        self.channel_box.setRange(0, 0)
        self.channel_box.setKeyboardTracking(False)
        self.channel_box.valueChanged.connect(lambda _: self.show_examples())
        self.overlay_box = QCheckBox("Activation map")
        self.overlay_box.setToolTip(
            f"Lay the channel's map over each crop (runs the model on the {self.k} images)"
        )
        self.overlay_box.toggled.connect(lambda _: self.show_examples())
        pick = QHBoxLayout()
        pick.addWidget(self.layer_label, 1)
        pick.addWidget(QLabel("Channel"))
        pick.addWidget(self.channel_box)
        pick.addWidget(self.overlay_box)

        self.hint = QLabel(
            "Each crop is what the unit sees: its receptive field, clipped to the "
            "photo. The ticks point at the unit."
        )
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #9a9a9a;")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.grid = TileGrid()
        self.grid.clicked.connect(self.open_example)

        layout = QVBoxLayout(self)
        layout.addWidget(self.folder_bar)
        layout.addWidget(self.status)
        layout.addWidget(self.banner)
        layout.addLayout(pick)
        layout.addWidget(self.hint)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.grid, 1)

        self.open_action = QAction("Open folder for top examples…", self)
        self.open_action.triggered.connect(self.folder_bar.choose)
        self.clear_action = QAction("Clear top-k cache…", self)
        self.clear_action.triggered.connect(self.clear_cache)

    def actions_for_menu(self) -> list[QAction]:
        """The window's File menu entries: open a folder here, clear the cache."""
        return [self.open_action, self.clear_action]

    def workers(self) -> list[Worker]:
        return [self.scans, self.crops]

    # ----------------------------------------------------------------- folders
    def set_folder(self, path: str | Path, scan_now: bool = True) -> None:
        """Scan ``path`` (at once, or as soon as the window shows a model)."""
        folder = Path(path).expanduser()
        if not folder.is_dir():
            self._error(f"cannot scan {folder}: " + ("not a folder" if folder.exists() else "no such folder"))
            return
        if self.folder is None or folder.resolve() != self.folder.resolve():
            self.scans.cancel()
            self.result = self.scanned_with = None
            self.status.clear_skipped()
            self.progress_label.setText("")
        self.folder = folder
        self.folder_bar.show_folder(folder)
        self.folder_bar.remember(folder)
        self._redraw()
        if scan_now:
            self.start_scan()

    def dragEnterEvent(self, event) -> None:
        if dropped_folder(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        folder = dropped_folder(event.mimeData())
        if folder:
            event.acceptProposedAction()
            self.set_folder(folder)

    # ----------------------------------------------------------------- scanning
    def show_state(self, shown: Shown) -> None:
        super().show_state(shown)
        self._stop_scan_of_another()
        if self._want_scan and shown.outcome is not None and not self.scans.busy:
            self.start_scan()
        elif not self.isVisible():
            self._update_banner()  # the stale notice is right when the tab is next shown

    def start_scan(self, rescan: bool = False) -> None:
        """Scan the folder with the window's model and engine (``rescan``: from nothing)."""
        if self.folder is None:
            self.folder_bar.choose()
            return
        outcome = self.shown.outcome
        if outcome is None:
            self._want_scan = True
            self.progress_label.setText("the scan starts when the model is loaded")
            return
        self._want_scan = False
        model, engine, folder, k, batch = (outcome.model, engine_of(outcome), self.folder, self.k, self.batch)
        store = self.store
        self._rate = rate = [0.0, None]  # this scan's own: a superseded one writes to its list
        self._last_progress = (0, 0)

        def job(progress, cancel) -> TopKResult:
            def report(done: int, total: int, per_s: float, left: float | None) -> None:
                rate[:] = [per_s, left]
                progress(done, total)

            return scan(
                model,
                folder,
                engine,
                k=k,
                batch=batch,
                progress=report,
                cancel=cancel,
                store=store,
                rescan=rescan,
            )

        def done(result: TopKResult) -> None:
            self.result, self.scanned_with = result, (model, engine)
            self._scan_summary(result, engine)
            self._redraw()

        self._scanning, self._stop_reason = (model, engine, outcome), None
        self.banner.setVisible(False)
        self.progress_label.setText(f"scanning {folder.name or folder} with {model.name} on {engine}…")
        self.scans.submit(job, done, self._scan_failed)

    def cancel_scan(self) -> None:
        if self.scans.busy:
            self.progress_label.setText("cancelling…")
        self.scans.cancel()

    def _stop_scan_of_another(self) -> None:
        """The window now shows another model or engine than the running scan's: stop it (what
        it scanned is kept; it goes on from there when that model is scanned again)."""
        outcome = self.shown.outcome
        if not self.scans.busy or self._scanning is None or outcome is None:
            return
        model, engine, seen = self._scanning
        if outcome is seen or self._stop_reason is not None:
            return  # (a layer or channel step: the same outcome)
        if not same_model(model, outcome.model):
            self._stop_reason = f"the window now shows {outcome.model.name}"
        elif engine_of(outcome) != engine:
            self._stop_reason = f"the window now runs {engine_of(outcome)}"
        else:
            self._scanning = (model, engine, outcome)  # the same model run again
            return
        self.progress_label.setText(f"stopping the {model.name} scan: {self._stop_reason}…")
        self.scans.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        self._last_progress = (done, total)
        self.status.show_progress(done, total, *self._rate)

    def _on_scan_busy(self, busy: bool) -> None:
        self.status.show_busy(busy)
        self.cancel_button.setVisible(busy)
        self.scan_button.setEnabled(not busy)
        if busy:
            return
        self._scanning = None
        if self._stop_reason == "clear":  # the scan has let go of the database: clear it now
            self._clear_now(stopped=True)
        self._stop_reason = None
        self._update_banner()  # hidden while the scan ran: "Scan with <model>" at once

    def _on_scan_cancelled(self) -> None:
        done, total = self._last_progress
        reason, scanning = self._stop_reason, self._scanning
        if reason == "clear":
            return  # the cache goes next: nothing scanned is kept (said then)
        name = scanning[0].name if reason and scanning is not None else None
        self.progress_label.setText(messages.stopped(done, total, name, reason))
        self._stop_said_at = self.shown.outcome if reason else None

    def _scan_failed(self, exc: BaseException) -> None:
        self.progress_label.setText(f"⚠ {error_message(exc)}")
        self._error(error_message(exc))

    def _scan_summary(self, result: TopKResult, engine: str) -> None:
        self.progress_label.setText(
            f"{messages.scan_summary(result, engine)} · top {result.k} "
            f"per channel of {len(result.layers)} conv layers"
        )
        self.status.show_skipped(result.skipped() if result.stats.unreadable else [], result.folder)

    def clear_cache(self) -> None:
        """Delete the stored scans, after asking; a running scan is stopped first (the files
        go once it has let go of them)."""
        where = (self.store or Store()).path
        if not ask_clear(self, where.parent):
            return
        self.crops.cancel()
        if self.scans.busy:
            self._stop_reason = "clear"
            self.progress_label.setText("stopping the scan to clear the top-k cache…")
            self.scans.cancel()
            return
        self._clear_now()

    def _clear_now(self, stopped: bool = False) -> None:
        removed, why = clear_store(self.store)
        if why is not None:
            self._error(why)
            return
        self.result = self.scanned_with = None
        self.status.clear_skipped()
        self.progress_label.setText(messages.cleared(len(removed), stopped))
        if self.window_services is not None:
            self.window_services.show_status(f"top-k cache cleared: {(self.store or Store()).path.parent}")
        self._redraw()

    # ----------------------------------------------------------------- staleness
    def stale(self) -> str | None:
        """Why the result is not the shown model's ("model") or engine's ("engine"), or None."""
        outcome = self.shown.outcome
        if self.result is None or outcome is None or self.scanned_with is None:
            return None
        model, _ = self.scanned_with
        if not same_model(model, outcome.model):
            return "model"
        engines = self.result.engines
        if engines and engine_of(outcome) not in engines:
            return "engine"
        return None

    def _update_banner(self) -> None:
        why = self.stale()
        self.banner.setVisible(why is not None and not self.scans.busy)
        if why is not None:
            outcome = self.shown.outcome
            self.banner.say(why, self.result, outcome.model.name, engine_of(outcome))

    # ----------------------------------------------------------------- drawing
    def _redraw(self) -> None:
        self._drawn = None
        if self.isVisible():
            self.refresh()

    def _error(self, message: str) -> None:
        if self.window_services is not None:
            self.window_services.show_error(message)
        else:
            self.progress_label.setText(f"⚠ {message}")
