"""The top-examples view's showing half: for the window's layer and channel, the stored top-k as
tiles (values at once, crops cut on the ``topk-crops`` lane), or a message saying why there are
none; a click on a tile opens its photo in the main view at the unit (or, when the photo is gone
since the scan, says so in the status line and stays). Mixed into
:class:`gui.views.topk.TopKView`, whose widgets and scan state it reads."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from gui.view import Shown
from gui.views.topk_tiles import blend_overlay, entry_tip, rgb_image
from gui.worker import error_message
from models.topk.crops import Example, examples_of, frame, layer_info


def engine_of(outcome) -> str:
    """The engine a window's outcome was run on ("auto" when it does not say)."""
    request = getattr(outcome, "request", None)
    return str(getattr(request, "engine", "auto"))


class ExamplesShown:
    """Drawing the examples of what is shown (see the module's docstring)."""

    def draw(self, shown: Shown) -> None:
        if self._stop_said_at is not None and shown.outcome is not self._stop_said_at:
            # "stopped: the window now shows X" is not true once it shows something else
            self._stop_said_at = None
            self.progress_label.setText("")
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
                name = f" ({shown.outcome.model.name})" if shown.outcome is not None else ""
                self._show_message(f"{self.folder} has no results for this model{name} yet: Scan.")
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
                f"{layer.name} ({layer.type}) is not a convolution layer: top examples "
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
                tile.set_content(None, f"#{e.rank + 1}  {e.value:.4g}", self._name(e.path), entry_tip(e))
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

    def open_example(self, index: int) -> None:
        """A click on a crop: its photo in the main view, at the unit, layer and channel."""
        if not 0 <= index < len(self._entries) or self.window_services is None:
            return
        e = self._entries[index]
        gone = self.examples[index].error if index < len(self.examples) else None
        if gone or not e.path.is_file():  # deleted or damaged since the scan: its tile says so
            self.window_services.show_status(
                f"cannot open {self._name(e.path)}: "
                f"{'it is no longer there' if not e.path.exists() else gone or 'not a file'} "
                f"(changed since the scan; Scan again to update the top examples)"
            )
            return
        self.window_services.open_image_at(
            str(e.path), self._layer, (e.y, e.x), channel=self.channel_box.value()
        )
