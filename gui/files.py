"""Files in and out of the window: the open dialogs, paste and drops (:mod:`gui.drops`), and
the exports (a view as PNG, a layer's activations, everything on the export lane). A mixin of
:class:`gui.main_window.MainWindow`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication, QFileDialog

from gui import drops
from models.export import export_run
from models.sources import MODEL_SUFFIXES

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"
MODEL_FILTER = f"Models ({' '.join('*' + s for s in MODEL_SUFFIXES)});;All files (*)"


class Files:
    # ----------------------------------------------------------------- dialogs
    def dialog_folder(self) -> str:
        """Where a file dialog opens: the folder used last, else the user's Pictures (never the
        folder the app happens to run from)."""
        last = str(self.settings.value("dialogs/folder", ""))
        if last and Path(last).is_dir():
            return last
        pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        return pictures if pictures and Path(pictures).is_dir() else str(Path.home())

    def _after_dialog(self, path: str, folder: bool = False) -> None:
        """Remember the folder of what was picked; give the keyboard back to the window."""
        if path:
            self.settings.setValue("dialogs/folder", str(Path(path) if folder else Path(path).parent))
        self.activateWindow()
        self.setFocus()

    def save_path(self, title: str, name: str, filters: str) -> str:
        """A save dialog opening in :meth:`dialog_folder`, remembered; "" when cancelled."""
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path(self.dialog_folder()) / name), filters)
        self._after_dialog(path)
        return path

    # ----------------------------------------------------------------- opening
    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self.dialog_folder(), IMAGE_FILTER)
        self._after_dialog(path)
        if path:
            self.open_image(path)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model file", self.dialog_folder(), MODEL_FILTER)
        self._after_dialog(path)
        if path:
            self.open_model(path)

    def paste_image(self) -> None:
        qimage = QApplication.clipboard().image()
        if qimage.isNull():
            self.show_error("the clipboard holds no image")
            return
        self.open_pil_image(drops.qimage_to_pil(qimage), "pasted image")

    def dragEnterEvent(self, event) -> None:
        if drops.accepts(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        what = drops.dropped(event.mimeData())
        if what is None:
            return
        kind, value = what
        {
            "model": self.open_model,
            "image": self.open_image,
            "picture": lambda pil: self.open_pil_image(pil, "dropped image"),
        }[kind](value)
        event.acceptProposedAction()

    # ----------------------------------------------------------------- exporting
    def export_view(self, path: str) -> Path | None:
        """The tab in front as a PNG (``.png`` added when the name has no suffix)."""
        target = _with_suffix(path, ".png")
        try:
            self.tabs.currentWidget().export_png(target)
        except OSError:
            self.show_error(f"cannot write {target}: check the folder exists and is writable")
            return None
        self.show_status(f"saved the {self.current_view()} view to {target}")
        return target

    def export_npy(self, path: str) -> Path | None:
        """The current layer's activations, ``(C, H, W)`` float32, as ``.npy``."""
        layer = self.current_layer()
        if layer is None:
            return None
        target = _with_suffix(path, ".npy")
        try:
            np.save(target, self.outcome.result.activations[layer.name])
        except OSError as exc:
            self.show_error(f"cannot write {target}: {exc.strerror or exc}")
            return None
        self.show_status(f"saved the activations of {layer.name} to {target}")
        return target

    def export_all(self, directory: str) -> None:
        """Everything about what is shown, written to ``directory`` on the export lane: a run
        under way goes on (and is not what is written), exports queue one after another."""
        outcome = self.outcome
        if outcome is None:
            return
        what = f"{outcome.model.name} on {outcome.source}"

        def job(progress, cancel):
            return export_run(
                outcome.result,
                outcome.model,
                outcome.image,
                Path(directory),
                progress=progress,
                cancel=cancel,
            )

        running = self.worker.busy and not self.worker.quiet
        self.show_status(
            f"exporting {what} to {directory}…"
            + (" (what is shown; the run under way goes on)" if running else "")
        )
        self.exports.submit(
            job,
            lambda paths: self.show_status(f"wrote {len(paths)} files ({what}) to {directory}"),
            self._show_exception,
            supersede=False,
        )

    def export_name(self, what: str, suffix: str) -> str:
        """``model.layer.what.suffix``: a file name that says what it shows."""
        layer = self.current_layer()
        model = self.outcome.model.name if self.outcome is not None else "convscope"
        parts = [Path(model).stem, layer.name if layer else "", what]
        return ".".join(p for p in parts if p).replace("/", "_").replace("\\", "_") + suffix

    def export_view_dialog(self) -> None:
        path = self.save_path("Export view", self.export_name(self.current_view(), ".png"), "PNG (*.png)")
        if path:
            self.export_view(path)

    def export_photo_dialog(self) -> None:
        path = self.save_path(
            "Export the photo with its overlay", self.export_name("photo", ".png"), "PNG (*.png)"
        )
        if path:
            self.export_photo(path)

    def export_photo(self, path: str) -> Path | None:
        """The photo as shown, with the unit's box and effective field drawn on it, as a PNG."""
        target = _with_suffix(path, ".png")
        if not self.input_panel.graphics.grab().save(str(target)):
            self.show_error(f"cannot write {target}: check the folder exists and is writable")
            return None
        self.show_status(f"saved the photo with its overlay to {target}")
        return target

    def export_npy_dialog(self) -> None:
        layer = self.current_layer()
        if layer is None:
            return
        path = self.save_path("Export activations", self.export_name("activations", ".npy"), "NumPy (*.npy)")
        if path:
            self.export_npy(path)

    def export_all_dialog(self) -> None:
        directory = QFileDialog.getExistingDirectory(self, "Export everything to", self.dialog_folder())
        self._after_dialog(directory, folder=True)
        if directory:
            self.export_all(directory)


def _with_suffix(path: str, suffix: str) -> Path:
    """``path``, with ``suffix`` added when the name typed has none."""
    p = Path(path)
    return p if p.suffix else p.with_name(p.name + suffix)
