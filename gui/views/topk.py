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
model's scan); another engine keeps them (engines agree within 1e-4 of torch) and says so.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
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
from gui.views.topk_folder import SAMPLES, FolderBar, ask_clear, dropped_folder
from gui.views.topk_status import ElidedLabel, ScanStatus, StaleBanner
from gui.views.topk_tiles import TileGrid, blend_overlay, rgb_image
from gui.worker import Worker, error_message
from models.cache import clear_cache
from models.topk import DEFAULT_K, Store, TopKResult, messages, scan
from models.topk.crops import Example, examples_of, frame, layer_info
from models.topk.keys import same_model

__all__ = ["SAMPLES", "TopKView", "ask_clear", "same_model"]


def engine_of(outcome) -> str:
    request = getattr(outcome, "request", None)
    return str(getattr(request, "engine", "auto"))


class TopKView(View):
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

        self.banner.setVisible(False)
        self.progress_label.setText(f"scanning {folder.name or folder} with {model.name} on {engine}…")
        self.scans.submit(job, done, self._scan_failed)

    def cancel_scan(self) -> None:
        if self.scans.busy:
            self.progress_label.setText("cancelling…")
        self.scans.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        self._last_progress = (done, total)
        self.status.show_progress(done, total, *self._rate)

    def _on_scan_busy(self, busy: bool) -> None:
        self.status.show_busy(busy)
        self.cancel_button.setVisible(busy)
        self.scan_button.setEnabled(not busy)

    def _on_scan_cancelled(self) -> None:
        done, total = self._last_progress
        self.progress_label.setText(
            f"cancelled at {done} / {total} images: what was scanned is kept, Scan goes on from there"
        )

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
        """Delete the stored scans, after asking."""
        where = (self.store or Store()).path
        if not ask_clear(self, where.parent):
            return
        self.scans.cancel()
        self.crops.cancel()
        if self.store is None:
            removed = clear_cache()
        else:
            removed = []
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{where}{suffix}")
                    removed.append(f"{where}{suffix}")
        self.result = self.scanned_with = None
        self.status.clear_skipped()
        self.progress_label.setText(f"top-k cache cleared ({len(removed)} files)")
        if self.window_services is not None:
            self.window_services.show_status(f"top-k cache cleared: {where.parent}")
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

    def draw(self, shown: Shown) -> None:
        if shown.channel is not None and shown.channel != self._window_channel:
            self._window_channel = shown.channel  # the window's pick; the box may differ after
            self.channel_box.blockSignals(True)
            self.channel_box.setMaximum(max(self.channel_box.maximum(), shown.channel))
            self.channel_box.setValue(shown.channel)
            self.channel_box.blockSignals(False)
        self.show_examples()

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(True)
        self.channel_box.setEnabled(False)
        self.overlay_box.setEnabled(False)
        self.grid.setVisible(False)
        self.hint.setVisible(False)
        self.layer_label.setText("")
        self._entries, self.examples, self._layer = [], [], None
        self.crops.cancel()

    def show_examples(self) -> None:
        """The stored top-k of the selected layer and channel: values at once, crops from the
        crops lane (no model run unless the activation map is on)."""
        self._update_banner()
        shown, result = self.shown, self.result
        if result is None:
            if self.folder is None:
                self._show_message(
                    "Pick a folder of images (Open folder…, drop one here, or Recent ▸ Bundled samples)."
                )
            else:
                self._show_message(f"{self.folder} has no results for this model yet: Scan.")
            return
        if shown.outcome is None or shown.layer is None:
            self._show_message("Open a model and a photo first.")
            return
        if self.stale() == "model":
            self._show_message("These results are of another model: scan again to see this one's.")
            return
        names = [la.name for la in result.layers]
        layer = shown.layer
        if layer.name not in names:
            self._show_message(
                f"{layer.name} ({layer.type}) is not a convolution with a spatial map: top examples "
                f"are kept for conv layers ({', '.join(names[:6])}{', …' if len(names) > 6 else ''}). "
                f"Step to one (Page Up / Page Down)."
            )
            return
        summary = result.layer(layer.name)
        self.channel_box.blockSignals(True)
        self.channel_box.setRange(0, summary.channels - 1)
        self.channel_box.blockSignals(False)
        channel = self.channel_box.value()
        entries = result.entries(layer.name, channel)
        self.layer_label.setText(
            f"{layer.name}: {summary.channels} channels, maps {summary.height}"
            f"×{summary.width} · channel {channel}: its {len(entries)} "
            f"strongest images in {result.folder.name or result.folder}"
        )
        self.message.setVisible(False)
        self.grid.setVisible(True)
        self.hint.setVisible(True)
        self.channel_box.setEnabled(True)
        self.overlay_box.setEnabled(True)
        self.grid.set_count(result.k)
        self._entries, self._layer, self.examples = entries, layer.name, []
        for i, tile in enumerate(self.grid.tiles):
            if i < len(entries):
                e = entries[i]
                tile.set_content(None, f"#{e.rank + 1}  {e.value:.4g}", self._name(e.path), self._tip(e))
            else:
                tile.set_content(None, "", "", "")  # fewer readable images than k
        model, engine, maps = shown.outcome.model, engine_of(shown.outcome), self.overlay_box.isChecked()
        name = layer.name

        def job(progress, cancel) -> tuple[list[Example], tuple[int, int]]:
            info = layer_info(model, name)  # the model's plan, looked up once per model
            return (
                examples_of(model, name, entries, channel, engine, maps=maps, cancel=cancel, info=info),
                frame(info.receptive_field, model.preprocess.size),
            )

        self.crops.submit(
            job, lambda done: self._show_crops(entries, *done), lambda exc: self._error(error_message(exc))
        )

    def _show_crops(
        self, entries: list, found: list[Example], frame_size: tuple[int, int] | None = None
    ) -> None:
        if entries is not self._entries:
            return  # the user has moved on
        self.examples, self._frame = found, frame_size
        maps = [ex.overlay for ex in found if ex.overlay is not None]
        top = max((float(np.nanmax(m)) for m in maps if np.isfinite(m).any()), default=0.0)
        for tile, ex in zip(self.grid.tiles, found, strict=False):
            rgb = ex.crop if ex.overlay is None else blend_overlay(ex.crop, ex.overlay, top)
            note = f"unreadable now: {ex.error}" if ex.error else tile.note
            tile.set_content(
                rgb_image(rgb),
                tile.caption,
                note,
                tile.toolTip(),
                self._frame,
                None if ex.error else ex.centre,
            )

    def _name(self, path: Path) -> str:
        root = self.result.folder if self.result is not None else None
        with contextlib.suppress(ValueError):
            return str(path.relative_to(root)) if root is not None else path.name
        return path.name

    def _tip(self, e) -> str:
        return (
            f"{e.path}\nunit (y {e.y}, x {e.x}), activation {e.value:.6g}, rank {e.rank + 1}"
            f"\nThe crop is the unit's receptive field clipped to the photo (what the unit "
            f"sees of it); the ticks point at the unit.\nClick: open this photo in the main "
            f"view at this unit"
        )

    def open_example(self, index: int) -> None:
        """A click on a crop: its photo in the main view, at the unit, layer and channel."""
        if not 0 <= index < len(self._entries) or self.window_services is None:
            return
        e = self._entries[index]
        self.window_services.open_image_at(
            str(e.path), self._layer, (e.y, e.x), channel=self.channel_box.value()
        )

    def _error(self, message: str) -> None:
        if self.window_services is not None:
            self.window_services.show_error(message)
        else:
            self.progress_label.setText(f"⚠ {message}")
