"""The explainer's GIF export (on a lane of its own, with progress and cancel) and its
"why convolution" text."""

from __future__ import annotations

from pathlib import Path

from gui.explainer.player_bar import SPEEDS
from gui.worker import error_message
from models.errors import ConvScopeError
from models.explain import Source, render_explain_gif, why_convolution


class GifExport:
    """The export part of :class:`~gui.explainer.ExplainerView` (``_gif`` is its lane)."""

    def export_gif(self, path: str | Path) -> int:
        """Write the current animation (this filter, these positions) as a GIF, here and now;
        returns the frame count. The window's button uses :meth:`start_gif_export`."""
        n = self._gif_job(path)(None, None)
        self.status.setText(f"saved {n} frames to {Path(path).name}")
        return n

    def start_gif_export(self, path: str | Path) -> None:
        """Write the current animation as a GIF on a thread of its own, with progress and a
        Cancel button; the player keeps playing. A second export replaces one under way."""
        try:
            job = self._gif_job(path)
        except ConvScopeError as exc:
            self.status.setText(f"could not export: {exc}")
            return
        name = Path(path).name
        self.status.setText(f"exporting {name}…")
        self._gif.submit(
            job,
            lambda n: self.status.setText(f"saved {n} frames to {name}"),
            lambda exc: self.status.setText(f"could not export: {error_message(exc)}"),
        )

    def exporting(self) -> bool:
        return self._gif.busy

    def _gif_job(self, path: str | Path):
        """The export of what is shown now (this filter, these positions), as a worker job."""
        source, player = self.sources[self._mode], self.player
        if source is None or not player.steps:
            raise ConvScopeError("nothing to export: pick a conv layer or use the sandbox")
        out_channel, steps = player.filter, list(player.steps)
        duration = SPEEDS[self.speed_combo.currentText()]

        def job(progress, cancel) -> int:
            try:
                return render_explain_gif(
                    source.weight,
                    source.bias,
                    source.input,
                    source.conv,
                    path,
                    out_channel=out_channel,
                    positions=steps,
                    duration_ms=duration,
                    title=source.title,
                    progress=progress,
                    cancel=cancel,
                )
            except OSError as exc:
                raise ConvScopeError(f"cannot write {path}: {exc.strerror or exc}") from None

        return job

    def _on_gif_progress(self, done: int, total: int) -> None:
        self.gif_progress.setRange(0, total)
        self.gif_progress.setValue(done)
        self.status.setText(f"exporting: frame {done} of {total}")

    def _on_gif_busy(self, busy: bool) -> None:
        if busy:
            self.gif_progress.setRange(0, 0)
        self.gif_progress.setVisible(busy)
        self.gif_cancel_button.setVisible(busy)

    def _export_dialog(self) -> None:
        source = self.sources["layer"]
        name = (source.title if self._mode == "layer" and source else "sandbox").replace("/", "_")
        path = self.save_path("Export the animation", f"{name}.explain.gif", "Animated GIF (*.gif)")
        if path:
            self.start_gif_export(path)


def why_text(source: Source | None) -> str:
    """The "why convolution?" paragraph of what is animated (empty without it)."""
    if source is None:
        return ""
    spec = source.conv
    info = why_convolution(
        spec.weight_shape,
        (spec.c_in, spec.h, spec.w),
        (spec.c_out, spec.out_h, spec.out_w),
        bias=source.bias is not None,
    )
    return (
        f"<b>{info['conv_params']:,}</b> parameters in this convolution vs "
        f"<b>{info['fc_params']:,}</b> for a fully connected layer with the same input and output "
        f"({info['ratio']:,.0f}× more).<br><br>{info['locality']}<br><br>{info['sharing']}"
    )
