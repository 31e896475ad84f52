"""The explainer tab: one output value term by term, on the selected layer or a sandbox.

Two modes share one animation: "This layer" walks the window over the user's own layer input
(the unit picked in the feature maps, and a block of positions around it); "Sandbox" runs a
small integer convolution whose controls update the formula and the animation live. Each mode
has its own :class:`~models.explain.Source` (what is animated) and
:class:`~models.explain.Player` (where the animation is), and keeps its own scroll position.
Frames are laid out to fit the pane (:func:`models.explain.draw_frame`), the same drawing as
the headless ``--explain`` GIF.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import QSize, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from gui.explainer.export import GifExport, why_text
from gui.explainer.frame_view import frame_job
from gui.explainer.layer_mode import NO_LAYER, LayerMode
from gui.explainer.panes import MODES as _MODES
from gui.explainer.panes import Panes
from gui.explainer.player_bar import SPEEDS
from gui.view import Shown, View
from gui.worker import Worker, error_message
from models.errors import ConvScopeError
from models.explain import (
    Frame,
    Player,
    Sandbox,
    Source,
    UnitTrace,
    agrees,
    draw_frame,
    warm_up,
)

NARROW = 700  # px: a narrower explainer hides its side column in "This layer" (the button shows it)


class ExplainerView(Panes, LayerMode, GifExport, View):
    """The explainer tab: "This layer" and "Sandbox" modes, a player and the export.

    Signals
    -------
    unit_changed(out_channel, y, x) : the unit now shown (playing moves it)
    """

    key = "explain"
    title = "Explain"
    tab_tip = "Explain the convolution: one unit computed term by term, and a sandbox to try sizes"
    unit_changed = Signal(int, int, int)

    def __init__(self, window=None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self.sources: dict[str, Source | None] = {"layer": None, "sandbox": None}
        self.players = {mode: Player() for mode in _MODES}
        self._scroll = {mode: (0, 0) for mode in _MODES}
        self._scroll_to_restore = False
        self._pending_layer: tuple | None = None  # (model, result, LayerInfo) until drawn
        self._pending_unit: tuple[int, int, int] | None = None
        self._drawn_layer: tuple | None = None  # (outcome, layer name) last taken from a Shown
        self._drawn_unit: tuple | None = None  # (that, (channel, y, x)) last taken from a Shown
        self._sandbox = Sandbox(size=6, channels=1, out_channels=2, padding=1)
        self._mode = "layer"
        self._trace: UnitTrace | None = None
        self._frame: Frame | None = None
        # a layer's first frame (10-30 ms of drawing) is drawn on a thread of its own, so a layer
        # step repaints the window without waiting for it; frames of the player stay here
        self._frames = Worker(self, name="explainer-frame")
        self._gif = Worker(self, name="explainer-gif")  # GIF exports: seconds of drawing
        self._frame_token = 0  # the frame the view should show; older ones are dropped
        self._frame_waiting = False
        self._in_background = False
        self._syncing = False
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self._relayout = QTimer(self, singleShot=True, interval=150)  # a resize draws the frame again
        self._relayout.timeout.connect(self._on_resized)
        self._box: tuple[int, int] | None = None
        self._narrow = False
        # fonts and number glyphs (15 ms), on the frame thread: not at start-up, nor in a first frame
        self._frames.submit(lambda progress, cancelled: warm_up(), quiet=True)
        self._build()
        self.set_sandbox(self._sandbox, show=False)
        self._show_empty_layer()

    # ----------------------------------------------------------------- the view protocol
    def draw(self, shown: Shown) -> None:
        """Explain ``shown.layer`` of ``shown.outcome`` (its ``model`` and ``result``) at
        ``shown.unit`` of ``shown.channel``; a non-conv layer or no outcome clears the layer mode."""
        outcome, layer = shown.outcome, shown.layer
        if outcome is None or layer is None:
            if self._drawn_layer is not None:  # (a window still on set_layer never gets here)
                self._drawn_layer = None
                self.clear()
            return
        last = self._drawn_layer
        if last is None or last[0] is not outcome or last[1] != layer.name:  # identity: no array compares
            self._drawn_layer = (outcome, layer.name)
            self.set_layer(outcome.model, outcome.result, layer.name)
        unit = (shown.channel or 0, *shown.unit) if shown.unit is not None else None
        if unit is not None and layer.is_conv and (self._drawn_layer, unit) != self._drawn_unit:
            self._drawn_unit = (self._drawn_layer, unit)  # the same unit again: keep playing
            self.set_unit(*unit)

    def workers(self) -> list[Worker]:
        """The view's lanes: frames drawn in the background, GIF exports."""
        return [self._frames, self._gif]

    def busy(self) -> bool:
        """A frame being drawn, or about to be laid out again for a new pane size (shown only)."""
        return super().busy() or (self.isVisible() and (self.loading() or self._relayout.isActive()))

    # ----------------------------------------------------------------- sandbox
    def sandbox(self) -> Sandbox:
        return self._sandbox

    def set_sandbox(self, sandbox: Sandbox, show: bool = True) -> None:
        """Show ``sandbox`` (settings and values) in the sandbox mode."""
        self._sandbox = sandbox
        source = self.sources["sandbox"] = Source.of_sandbox(sandbox)
        player = self.players["sandbox"]
        if source is None:
            player.load([], sandbox.out_channels)
        else:
            player.load(source.all_steps(), sandbox.out_channels)
        self.sandbox_panel.load(sandbox, player.filter)
        if show:
            self._set_mode("sandbox")
            self._sync_filter()
            self._update_why()
            self._refresh()

    def randomize_sandbox(self) -> None:
        self.set_sandbox(self._sandbox.randomized())

    # ----------------------------------------------------------------- the player
    @property
    def player(self) -> Player:
        """The player of the mode shown."""
        return self.players[self._mode]

    def mode(self) -> str:
        """``"layer"`` or ``"sandbox"``."""
        return self._mode

    def set_mode(self, mode: str) -> None:
        self.modes.setCurrentIndex(_MODES.index(mode))

    def step_index(self) -> int:
        return self.player.index

    def step_count(self) -> int:
        return len(self.player.steps)

    def loading(self) -> bool:
        """A layer was set and its frame is not drawn yet (the last frame is still shown)."""
        return self._mode == "layer" and (self._pending_layer is not None or self._frame_waiting)

    def wait_frame(self, msecs: int = 10000) -> bool:
        """Block until the frame being drawn off the GUI thread is done (tests, screenshots);
        it is shown once its signal is delivered."""
        return self._frames.wait(msecs)

    def current_unit(self) -> tuple[int, int, int] | None:
        return None if self.loading() else self.player.current()

    def current_value(self) -> float | None:
        """The traced value (sum of products plus bias) of the unit shown."""
        return None if self._trace is None or self.loading() else self._trace.value

    def engine_value(self) -> float | None:
        """What the engine computed at the unit shown (the layer's feature map, the sandbox output)."""
        unit, source = self.current_unit(), self.sources[self._mode]
        return None if unit is None or source is None else source.engine_value(*unit)

    def render_image(self):
        """The frame shown, ``(H, W, 3)`` uint8."""
        return None if self._frame is None else self._frame.image

    def frame(self) -> Frame | None:
        """The frame shown, with its grids (values on hover) and channel pages."""
        return self._frame

    def is_playing(self) -> bool:
        return self.timer.isActive()

    def play(self) -> None:
        if self.player.play():
            self.timer.start()
            self.bar.set_playing(True)

    def pause(self) -> None:
        for player in self.players.values():
            player.pause()
        self.timer.stop()
        self.bar.set_playing(False)

    def toggle_play(self) -> None:
        self.pause() if self.is_playing() else self.play()

    def step(self, delta: int = 1) -> None:
        """Move ``delta`` positions (wrapping round at the ends)."""
        if self.player.step(delta):
            self._refresh()

    def go_to(self, index: int) -> None:
        if self.player.go_to(index):
            self._refresh()

    def set_speed(self, label: str) -> None:
        """One of ``SPEEDS`` ("0.5×" … "8×")."""
        self.speed_combo.setCurrentText(label)

    def set_filter(self, out_channel: int) -> None:
        if self._syncing or not self.player.set_filter(out_channel):
            return
        self._sync_filter()
        self._refresh()

    def next_filter(self) -> None:
        """The next filter, from the first position: it fills the next output channel."""
        self.player.next_filter()
        self._sync_filter()
        self._refresh()

    def set_channel_page(self, page: int) -> None:
        """Draw another page of the input channels (every channel is summed whatever the page)."""
        pages = self._frame.pages if self._frame is not None else 1
        if self.player.set_channel_page(page, pages):
            self._refresh()

    # ----------------------------------------------------------------- internals
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._pending_layer is not None:
            self._load_pending()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        narrow = self.width() < NARROW
        if narrow != self._narrow:  # crossing the line: the side column follows (then the user)
            self._narrow = narrow
            self.bar.set_narrow(narrow)
            self._show_side(not narrow or self._mode == "sandbox")
        self._relayout.start()

    def _show_side(self, visible: bool) -> None:
        if visible and self._narrow and not self.side.isVisible():  # as narrow as it can be
            self.splitter.setSizes([self.side.minimumWidth(), self.width()])
        self.side.setVisible(visible)
        self.side_button.blockSignals(True)
        self.side_button.setChecked(visible)
        self.side_button.blockSignals(False)
        self._relayout.start()

    def _on_resized(self) -> None:
        if self._frame is not None and self._fit_box() != self._box and not self.loading():
            self._refresh()

    def _fit_box(self) -> tuple[int, int]:
        """The pixels a frame is laid out to fit: the frame pane (at least 280x300)."""
        size = self.view_scroll.viewport().size()
        return (max(size.width(), 280), max(size.height(), 300))

    def _set_mode(self, mode: str) -> None:
        if mode != self._mode:
            self._remember_scroll()
            self._scroll_to_restore = True
        self._mode = mode
        self.modes.blockSignals(True)
        self.modes.setCurrentIndex(_MODES.index(mode))
        self.modes.blockSignals(False)
        self.mode_pages.setCurrentIndex(_MODES.index(mode))
        if self._narrow:  # a narrow pane: the sandbox needs its settings, a layer its frame
            self._show_side(mode == "sandbox")

    def _switch_mode(self, mode: str) -> None:
        """The user picked a mode's tab: show where that mode was."""
        self.pause()
        self._set_mode(mode)
        self._sync_filter()
        if mode == "layer" and self.sources["layer"] is None:
            self._show_empty_layer(self.layer_label.text() or NO_LAYER)
            return
        self._update_why()
        self._refresh()

    def _remember_scroll(self) -> None:
        self._scroll[self._mode] = (
            self.view_scroll.horizontalScrollBar().value(),
            self.view_scroll.verticalScrollBar().value(),
        )

    def _restore_scroll(self) -> None:
        h, v = self._scroll[self._mode]
        self.view_scroll.horizontalScrollBar().setValue(h)
        self.view_scroll.verticalScrollBar().setValue(v)

    def _sync_filter(self) -> None:
        player = self.player
        self._syncing = True
        self.filter_spin.setRange(0, player.filters - 1)
        self.filter_spin.setValue(player.filter)
        self._syncing = False
        if self._mode == "sandbox":
            self.sandbox_panel.set_filter(player.filter)

    def _refresh(self) -> None:
        source, player = self.sources[self._mode], self.player
        self._frame_token += 1
        self._frame_waiting = False
        if source is None or not player.steps:
            self._trace, self._frame = None, None
            self.view.set_image(None)
            self.step_label.setText("")
            self._scroll_back()
            return
        y, x = player.position()
        try:
            self._trace = source.trace(player.filter, y, x)
        except ConvScopeError as exc:
            self.status.setText(str(exc))
            return
        region = player.region()
        engine_value = source.engine_value(player.filter, y, x)
        self._box = self._fit_box()
        draw = partial(
            draw_frame,
            self._trace,
            source.input,
            source.conv,
            done=source.done_grid(player.filter, player.visited()),
            region=region,
            title=source.title,
            engine_value=engine_value,
            out_scale=source.out_scale(player.filter, region),
            out_channels=source.conv.c_out,
            box=self._box,
            channel_page=player.channel_page,
            out_map=None if source.output is None else source.output[player.filter],
        )
        token = self._frame_token
        if self._in_background:
            self._frame_waiting = True
            viewport = self.view_scroll.viewport().size()
            dpr = self.view.devicePixelRatioF()
            self._frames.submit(
                lambda progress, cancelled: frame_job(cancelled, draw, viewport, dpr),
                on_done=lambda frame: self._show_frame(token, *frame),
                on_error=lambda exc: self._frame_failed(token, exc),
                quiet=True,
            )
        else:
            self._show_frame(token, draw())
        self.position_slider.blockSignals(True)
        self.position_slider.setRange(0, len(player.steps) - 1)
        self.position_slider.setValue(player.index)
        self.position_slider.blockSignals(False)
        self.step_label.setText(f"step {player.index + 1} / {len(player.steps)}")
        if self._mode == "layer":
            self.unit_label.setText(f"Unit: filter {player.filter}, y={y}, x={x}")
            text = f"traced value: <b>{self._trace.value:.5g}</b>"
            if engine_value is not None:
                ok = agrees(self._trace.value, engine_value)
                colour = "#1e823c" if ok else "#c81e1e"
                text += (
                    f"<br>engine's feature map: <b>{engine_value:.5g}</b> "
                    f"<span style='color:{colour}'>{'✓ equal' if ok else '✗ differs'}</span>"
                )
            self.value_label.setText(text)
        self.unit_changed.emit(player.filter, y, x)

    def _show_frame(
        self, token: int, frame: Frame, image: QImage | None = None, scaled: QImage | None = None
    ) -> None:
        if token != self._frame_token:  # a later refresh drew (or is drawing) another
            return
        self._frame_waiting = False
        self._frame = frame
        self.view.set_image(frame.image if image is None else image, scaled, frame)
        self.player.channel_page = frame.page
        self.bar.set_pages(frame.pages, frame.page, frame.channels)
        self._scroll_back()

    def _scroll_back(self) -> None:
        """After a change of mode: where that mode was scrolled to, once the view has taken the
        new frame's size."""
        if self._scroll_to_restore:
            self._scroll_to_restore = False
            QTimer.singleShot(0, self._restore_scroll)

    def _frame_failed(self, token: int, exc: BaseException) -> None:
        if token == self._frame_token:
            self._frame_waiting = False
            self.status.setText(f"could not draw the frame: {error_message(exc)}")

    def _tick(self) -> None:
        if self.player.tick():
            self._refresh()
        elif not self.player.playing:
            self.pause()

    def _apply_speed(self) -> None:
        self.timer.setInterval(SPEEDS[self.speed_combo.currentText()])

    def _update_why(self) -> None:
        self.why.setText(why_text(self.sources[self._mode]))

    def sizeHint(self) -> QSize:
        return QSize(1200, 800)
