"""The convolution explainer: one output value term by term, on the selected layer or a sandbox.

Two modes share one animation: "This layer" walks the window over the user's own layer input
(the unit picked in the feature maps, and a block of positions around it); "Sandbox" runs a
small integer convolution whose controls (size, kernel, stride, padding, dilation, channels,
padding mode) update the formula and the animation live. Every frame is drawn by
:func:`models.explain.render_frame`, the same pixels the headless ``--explain`` GIF holds.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import ConvSpec
from engine._common import PADDING_MODES
from gui.worker import Worker, error_message
from models.errors import Cancelled, ConvScopeError
from models.explain import (
    SANDBOX_LIMITS,
    Sandbox,
    UnitTrace,
    agrees,
    conv_spec,
    explain_unit,
    layer_formulas,
    positions,
    region_of,
    render_explain_gif,
    render_frame,
    warm_up,
    why_convolution,
)

LAYER_STEPS = 49  # the block of positions played around the picked unit (7x7)
SPEEDS = {"0.5×": 1600, "1×": 800, "2×": 400, "4×": 200, "8×": 100}  # ms per step


MIN_SCALE = 0.75


def to_qimage(rgb: np.ndarray) -> QImage:
    """An ``(H, W, 3)`` uint8 array as a QImage of its own (safe on any thread)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).convertToFormat(
        QImage.Format.Format_RGB32)


def fit(image: QSize, box: QSize) -> QRect:
    """Where an image of size ``image`` is drawn in a widget of size ``box``: scaled down to fit,
    never up, aspect kept, centred across the top."""
    scale = min(box.width() / image.width(), box.height() / image.height(), 1.0)
    w, h = max(1, round(image.width() * scale)), max(1, round(image.height() * scale))
    return QRect((box.width() - w) // 2, 0, w, h)


def scaled_to(image: QImage, rect: QRect, dpr: float = 1.0) -> QImage:
    """``image`` as drawn in ``rect`` (logical pixels) on a screen of device pixel ratio ``dpr``:
    smoothly scaled down to the device pixels it covers, or itself where it needs no shrinking
    (a HiDPI screen shows the frame's own pixels, not a blurred copy)."""
    size = QSize(round(rect.width() * dpr), round(rect.height() * dpr))
    if size.width() >= image.width():
        return image
    scaled = image.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio,
                          Qt.TransformationMode.SmoothTransformation)
    scaled.setDevicePixelRatio(dpr)
    return scaled


class FrameView(QWidget):
    """Paints an RGB image scaled to fit, keeping its aspect ratio (lives in a scroll area).

    The scaled image is kept: repaints only copy it. Smooth scaling of a 1000 px frame took 3-5 ms
    of every paint; a frame drawn off the GUI thread can come scaled already (``scaled``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._scaled: QImage | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)

    def set_image(self, rgb: np.ndarray | QImage | None, scaled: QImage | None = None) -> None:
        self._image = rgb if isinstance(rgb, QImage) or rgb is None else to_qimage(rgb)
        self._scaled = scaled
        if self._image is not None:
            # below 3/4 scale the numbers become unreadable: the scroll area takes over
            self.setMinimumSize(int(self._image.width() * MIN_SCALE), int(self._image.height() * MIN_SCALE))
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(900, 700) if self._image is None else self._image.size()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.white)
        if self._image is not None:
            rect = fit(self._image.size(), self.size())
            dpr = self.devicePixelRatioF()
            if self._scaled is None or self._scaled.deviceIndependentSize().toSize() != rect.size() \
                    or self._scaled.devicePixelRatio() != dpr:
                self._scaled = scaled_to(self._image, rect, dpr)
            if self._scaled is self._image and self._image.size() != rect.size():
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawImage(QRectF(rect), self._image)  # no shrinking in device pixels
            else:
                painter.drawImage(rect.topLeft(), self._scaled)
        painter.end()


def _scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area: text that changes on every layer step relays out
    inside it, not the whole tab (7 ms a step), and long text scrolls instead of pushing."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def _frame_job(cancelled, draw, viewport: QSize, dpr: float) -> tuple[np.ndarray, QImage, QImage]:
    """A frame job: the frame, as an image, and scaled to where the view in ``viewport`` will
    draw it (the view grows to at least ``MIN_SCALE`` of the frame and scrolls)."""
    if cancelled():
        raise Cancelled()
    frame = draw()
    image = to_qimage(frame)
    box = QSize(max(viewport.width(), int(image.width() * MIN_SCALE)),
                max(viewport.height(), int(image.height() * MIN_SCALE)))
    return frame, image, scaled_to(image, fit(image.size(), box), dpr)


class ExplainerView(QWidget):
    """The explainer tab: "This layer" and "Sandbox" modes, a player and the export.

    Signals
    -------
    unit_changed(out_channel, y, x) : the unit now shown (playing moves it)
    """

    unit_changed = Signal(int, int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx: dict | None = None          # weight, bias, input, conv, feature_map, layer
        self._pending_layer: tuple | None = None  # (model, result, LayerInfo) until drawn
        self._pending_unit: tuple[int, int, int] | None = None
        self._sandbox = Sandbox(size=6, channels=1, out_channels=2, padding=1)
        self._sandbox_out: np.ndarray | None = None
        self._mode = "layer"
        self._filter = 0
        self._steps: list[tuple[int, int]] = []
        self._index = 0
        self._trace: UnitTrace | None = None
        self._frame: np.ndarray | None = None
        # a layer's first frame (10-30 ms of drawing) is drawn on a thread of its own, so a layer
        # step repaints the window without waiting for it; frames of the player stay here
        self._frames = Worker(self, name="explainer-frame")
        self._gif = Worker(self, name="explainer-gif")  # GIF exports: seconds of drawing
        self._gif.progress.connect(self._on_gif_progress)
        self._gif.busy_changed.connect(self._on_gif_busy)
        self._gif.cancelled.connect(lambda: self.status.setText("GIF export cancelled"))
        self._frame_token = 0      # the frame the view should show; older ones are dropped
        self._frame_waiting = False
        self._in_background = False
        self._syncing = False
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        # fonts and number glyphs (15 ms), on the frame thread: not at start-up, nor in a first frame
        self._frames.submit(lambda progress, cancelled: warm_up(), quiet=True)

        self.modes = QTabWidget()
        self.modes.addTab(self._build_layer_page(), "This layer")
        self.modes.addTab(self._build_sandbox_page(), "Sandbox")
        self.modes.setMaximumWidth(300)
        self.modes.currentChanged.connect(self._on_mode_tab)

        self.view = FrameView()
        player = self._build_player()
        self.why = QLabel()
        self.why.setWordWrap(True)
        self.why.setTextFormat(Qt.TextFormat.RichText)
        self.why.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        why_box = QGroupBox("Why convolution?")
        QVBoxLayout(why_box).addWidget(_scrolled(self.why))

        right = QVBoxLayout()
        self.view_scroll = QScrollArea()
        self.view_scroll.setWidget(self.view)
        self.view_scroll.setWidgetResizable(True)
        self.view_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        right.addWidget(self.view_scroll, 1)
        right.addLayout(player)
        left = QVBoxLayout()
        left.addWidget(self.modes, 3)  # the why text is read too: it gets room, not a peephole
        left.addWidget(why_box, 2)
        layout = QHBoxLayout(self)
        layout.addLayout(left)
        layout.addLayout(right, 1)
        self._load_sandbox_controls()
        self._refresh_sandbox_output()
        self._show_empty_layer()

    # ----------------------------------------------------------------- construction
    def _build_layer_page(self) -> QWidget:
        page = QWidget()
        self.layer_label = QLabel()
        self.layer_label.setWordWrap(True)
        self.unit_label = QLabel()
        self.unit_label.setWordWrap(True)
        self.value_label = QLabel()
        self.value_label.setWordWrap(True)
        self.value_label.setTextFormat(Qt.TextFormat.RichText)
        self.layer_formula_label = QLabel()
        self.layer_formula_label.setWordWrap(True)
        hint = QLabel("Click a unit in the feature maps to explain it. The window plays over the "
                      "positions around it; only the first 3 input channels are drawn, but every "
                      "channel is summed.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray")
        layout = QVBoxLayout(page)
        for w in (self.layer_label, self.unit_label, self.value_label, self.layer_formula_label, hint):
            layout.addWidget(w)
        layout.addStretch(1)
        return _scrolled(page)

    def _spin(self, name: str, tip: str) -> QSpinBox:
        lo, hi = SANDBOX_LIMITS[name]
        spin = QSpinBox()
        spin.setRange(lo, hi)
        spin.setToolTip(tip)
        spin.valueChanged.connect(self._on_sandbox_control)
        return spin

    def _build_sandbox_page(self) -> QWidget:
        page = QWidget()
        self.size_spin = self._spin("size", "input height and width")
        self.channels_spin = self._spin("channels", "input channels: one kernel per channel in each filter")
        self.filters_spin = self._spin("out_channels", "filters = output channels")
        self.kernel_spin = self._spin("kernel_size", "kernel height and width")
        self.stride_spin = self._spin("stride", "how far the window jumps")
        self.padding_spin = self._spin("padding", "border added around the input")
        self.dilation_spin = self._spin("dilation", "gaps between the kernel's taps")
        self.padding_mode_combo = QComboBox()
        self.padding_mode_combo.addItems(list(PADDING_MODES))
        self.padding_mode_combo.setToolTip("what the border is filled with")
        self.padding_mode_combo.currentTextChanged.connect(self._on_sandbox_control)
        form = QFormLayout()
        form.addRow("Input size", self.size_spin)
        form.addRow("Input channels", self.channels_spin)
        form.addRow("Filters", self.filters_spin)
        form.addRow("Kernel size", self.kernel_spin)
        form.addRow("Stride", self.stride_spin)
        form.addRow("Padding", self.padding_spin)
        form.addRow("Dilation", self.dilation_spin)
        form.addRow("Padding mode", self.padding_mode_combo)
        self.formula_label = QLabel()
        self.formula_label.setWordWrap(True)
        self.formula_label.setTextFormat(Qt.TextFormat.RichText)
        self.random_button = QPushButton("New random values")
        self.random_button.clicked.connect(self.randomize_sandbox)
        self.edit_channel_spin = QSpinBox()
        self.edit_channel_spin.setToolTip("which input channel (and kernel) the tables edit")
        self.edit_channel_spin.valueChanged.connect(self._fill_tables)
        self.input_table = self._table()
        self.kernel_table = self._table()
        self.input_table.cellChanged.connect(lambda r, c: self._on_cell("input", self.input_table, r, c))
        self.kernel_table.cellChanged.connect(lambda r, c: self._on_cell("weight", self.kernel_table, r, c))
        edit_row = QHBoxLayout()
        edit_row.addWidget(QLabel("Edit channel"))
        edit_row.addWidget(self.edit_channel_spin)
        edit_row.addStretch(1)
        edit_row.addWidget(self.random_button)
        layout = QVBoxLayout(page)
        layout.addLayout(form)
        layout.addWidget(self.formula_label)
        layout.addLayout(edit_row)
        layout.addWidget(QLabel("Input (double-click a cell to edit)"))
        layout.addWidget(self.input_table, 1)
        self.kernel_caption = QLabel()
        layout.addWidget(self.kernel_caption)
        layout.addWidget(self.kernel_table)
        return page

    @staticmethod
    def _table() -> QTableWidget:
        table = QTableWidget()
        table.horizontalHeader().setDefaultSectionSize(34)
        table.verticalHeader().setDefaultSectionSize(24)
        table.horizontalHeader().setMinimumSectionSize(20)
        table.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        return table

    def _build_player(self) -> QVBoxLayout:
        self.first_button = QPushButton("|◀")
        self.first_button.setToolTip("back to the first position")
        self.back_button = QPushButton("◀")
        self.back_button.setToolTip("one step back")
        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("play / pause")
        self.forward_button = QPushButton("▶|")
        self.forward_button.setToolTip("one step forward")
        self.first_button.clicked.connect(lambda: self.go_to(0))
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.play_button.clicked.connect(self.toggle_play)
        self.position_slider = QSlider(Qt.Orientation.Horizontal)
        self.position_slider.setToolTip("scrub through the positions")
        self.position_slider.valueChanged.connect(self._on_slider)
        self.step_label = QLabel()
        self.speed_combo = QComboBox()
        self.speed_combo.addItems(list(SPEEDS))
        self.speed_combo.setCurrentText("2×")
        self.speed_combo.setToolTip("animation speed")
        self.speed_combo.currentTextChanged.connect(lambda _t: self._apply_speed())
        self.filter_spin = QSpinBox()
        self.filter_spin.setToolTip("which filter (= output channel) is explained")
        self.filter_spin.valueChanged.connect(self.set_filter)
        self.next_filter_button = QPushButton("Next filter")
        self.next_filter_button.setToolTip("the next filter fills the next output channel")
        self.next_filter_button.clicked.connect(self.next_filter)
        self.export_button = QPushButton("Export GIF…")
        self.export_button.clicked.connect(self._export_dialog)
        self.gif_progress = QProgressBar()
        self.gif_progress.setMaximumWidth(120)
        self.gif_progress.setVisible(False)
        self.gif_cancel_button = QPushButton("Cancel export")
        self.gif_cancel_button.setVisible(False)
        self.gif_cancel_button.clicked.connect(self._gif.cancel)
        self.status = QLabel()
        self.status.setStyleSheet("color: gray")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setMinimumWidth(60)
        row = QHBoxLayout()
        for w in (self.first_button, self.back_button, self.forward_button):
            w.setMaximumWidth(40)
        for w in (self.first_button, self.back_button, self.play_button, self.forward_button):
            row.addWidget(w)
        row.addWidget(self.position_slider, 1)
        row.addWidget(self.step_label)
        row2 = QHBoxLayout()  # two rows: the tab fits beside the photo and the layer list
        row2.addWidget(QLabel("Speed"))
        row2.addWidget(self.speed_combo)
        row2.addWidget(QLabel("Filter"))
        row2.addWidget(self.filter_spin)
        row2.addWidget(self.next_filter_button)
        row2.addWidget(self.export_button)
        row2.addWidget(self.gif_progress)
        row2.addWidget(self.gif_cancel_button)
        row2.addWidget(self.status, 1)
        rows = QVBoxLayout()
        rows.addLayout(row)
        rows.addLayout(row2)
        self._apply_speed()
        return rows

    # ----------------------------------------------------------------- public API: this layer
    def set_context(self, weight: np.ndarray, bias: np.ndarray | None, layer_input: np.ndarray,
                    conv: dict | None, feature_map: np.ndarray | None, layer: str) -> None:
        """Explain a conv layer on real data.

        Parameters
        ----------
        weight : ``(O, C/groups, kH, kW)`` float32
        bias : ``(O,)`` or None
        layer_input : ``(C, H, W)`` the layer's input activation
        conv : stride, padding, dilation, groups, padding_mode (``LayerInfo.conv``)
        feature_map : ``(O, H_out, W_out)`` what the engine computed (shown beside the traced value), or None
        layer : the layer's name
        """
        self._pending_layer = None
        try:
            spec = conv_spec(np.shape(layer_input), np.shape(weight), conv)
        except ConvScopeError as exc:
            self._ctx = None
            self._show_empty_layer(f"Cannot explain {layer}: {exc}")
            return
        fm = None
        if feature_map is not None:
            fm = np.asarray(feature_map, dtype=np.float32)
            if fm.shape != (spec.c_out, spec.out_h, spec.out_w):
                fm = None  # not this conv's direct output (e.g. a repeated call): trace only
        self._ctx = {"weight": np.asarray(weight, dtype=np.float32), "bias": bias,
                     "input": np.asarray(layer_input, dtype=np.float32),
                     "conv": conv if isinstance(conv, ConvSpec) else dict(conv or {}),
                     "feature_map": fm, "layer": layer, "spec": spec}
        c, h, w = np.shape(layer_input)
        self.layer_label.setText(
            f"<b>{layer}</b>: {spec.c_in}×{h}×{w} → {spec.c_out}×{spec.out_h}×{spec.out_w}, "
            f"{spec.c_out} filters of {spec.c_in_per_group}×{spec.kh}×{spec.kw}"
            + (f", {spec.groups} groups" if spec.groups > 1 else ""))
        self.layer_formula_label.setText("<br>".join(layer_formulas((c, h, w), np.shape(weight), conv)))
        self._set_mode("layer")
        self.set_unit(min(self._filter, spec.c_out - 1), spec.out_h // 2, spec.out_w // 2)

    def set_layer(self, model, result, layer: str) -> None:
        """Explain ``layer`` of a run (``models.runner.RunResult``); non-conv layers clear the view.

        The layer's input comes from the run (``result.conv_inputs``). A hidden view loads the
        layer when it is shown; the frame is drawn off the GUI thread (:meth:`loading` until then),
        and a request superseded before its frame is ready is dropped, so holding an arrow key
        down does not queue up frames.
        """
        info = next((la for la in result.layers if la.name == layer), None)
        if info is None or not info.is_conv:
            self._ctx = None
            self._pending_layer = None
            self._show_empty_layer(f"{layer} is not a convolution: pick a conv layer to explain it.")
            return
        self._pending_layer = (model, result, info)
        self._pending_unit = None
        self._ctx = None
        if self.isVisible():  # the frame is drawn off the GUI thread; the last one stays till then
            self.pause()
            self._load_pending()
        else:
            self._show_empty_layer(f"<b>{layer}</b>: loading…")

    def set_unit(self, out_channel: int, y: int, x: int) -> None:
        """Show output element ``[out_channel, y, x]`` of the current layer and play around it."""
        if self._pending_layer is not None:
            self._pending_unit = (out_channel, y, x)
            if self.isVisible():
                self._load_pending()
            return
        if self._ctx is None:
            return
        spec = self._ctx["spec"]
        if not (0 <= out_channel < spec.c_out and 0 <= y < spec.out_h and 0 <= x < spec.out_w):
            self.status.setText(f"unit ({out_channel}, {y}, {x}) is outside {self._ctx['layer']}")
            return
        self._set_mode("layer")
        self._steps = positions(spec.out_h, spec.out_w, LAYER_STEPS, center=(y, x))
        self._index = self._steps.index((y, x))
        self._set_filter_range(spec.c_out, out_channel)
        self._update_why()
        self._refresh()

    # ----------------------------------------------------------------- public API: sandbox
    def sandbox(self) -> Sandbox:
        return self._sandbox

    def set_sandbox(self, sandbox: Sandbox) -> None:
        """Show ``sandbox`` (settings and values) in the sandbox mode."""
        self._sandbox = sandbox
        self._load_sandbox_controls()
        self._refresh_sandbox_output()
        self._set_mode("sandbox")
        self._sandbox_steps()
        self._update_why()
        self._refresh()

    def randomize_sandbox(self) -> None:
        self.set_sandbox(self._sandbox.randomized())

    # ----------------------------------------------------------------- public API: player
    def mode(self) -> str:
        """``"layer"`` or ``"sandbox"``."""
        return self._mode

    def set_mode(self, mode: str) -> None:
        self.modes.setCurrentIndex(0 if mode == "layer" else 1)

    def step_index(self) -> int:
        return self._index

    def step_count(self) -> int:
        return len(self._steps)

    def loading(self) -> bool:
        """A layer was set and its frame is not drawn yet (the last frame is still shown)."""
        return self._mode == "layer" and (self._pending_layer is not None or self._frame_waiting)

    def wait_frame(self, msecs: int = 10000) -> bool:
        """Block until the frame being drawn off the GUI thread is done (tests, screenshots);
        it is shown once its signal is delivered."""
        return self._frames.wait(msecs)

    def current_unit(self) -> tuple[int, int, int] | None:
        if not self._steps or self.loading():
            return None
        y, x = self._steps[self._index]
        return (self._filter, y, x)

    def current_value(self) -> float | None:
        """The traced value (sum of products plus bias) of the unit shown."""
        return None if self._trace is None or self.loading() else self._trace.value

    def engine_value(self) -> float | None:
        """What the engine computed at the unit shown (the layer's feature map, the sandbox output)."""
        unit = self.current_unit()
        out = self._engine_output()
        if unit is None or out is None:
            return None
        return float(out[unit])

    def render_image(self) -> np.ndarray | None:
        """The frame shown, ``(H, W, 3)`` uint8."""
        return self._frame

    def is_playing(self) -> bool:
        return self.timer.isActive()

    def play(self) -> None:
        if self._steps:
            self.timer.start()
            self.play_button.setText("⏸ Pause")

    def pause(self) -> None:
        self.timer.stop()
        self.play_button.setText("▶ Play")

    def toggle_play(self) -> None:
        self.pause() if self.is_playing() else self.play()

    def step(self, delta: int = 1) -> None:
        """Move ``delta`` positions (wrapping round at the ends)."""
        if self._steps:
            self.go_to((self._index + delta) % len(self._steps))

    def go_to(self, index: int) -> None:
        if self._steps and 0 <= index < len(self._steps) and index != self._index:
            self._index = index
            self._refresh()

    def set_speed(self, label: str) -> None:
        """One of ``SPEEDS`` ("0.5×" … "8×")."""
        self.speed_combo.setCurrentText(label)

    def set_filter(self, out_channel: int) -> None:
        if out_channel == self._filter or self._syncing:
            return
        self._filter = int(out_channel)
        self._syncing = True
        self.filter_spin.setValue(self._filter)
        self._syncing = False
        if self._mode == "sandbox":
            self._fill_tables()
        self._refresh()

    def next_filter(self) -> None:
        """The next filter, from the first position: it fills the next output channel."""
        count = self.filter_spin.maximum() + 1
        self._index = 0
        self.set_filter((self._filter + 1) % count)

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
        self._gif.submit(job, lambda n: self.status.setText(f"saved {n} frames to {name}"),
                         lambda exc: self.status.setText(f"could not export: {error_message(exc)}"))

    def exporting(self) -> bool:
        return self._gif.busy

    def workers(self) -> list[Worker]:
        """The view's lanes: frames drawn in the background, GIF exports."""
        return [self._frames, self._gif]

    def _gif_job(self, path: str | Path):
        """The export of what is shown now (this filter, these positions), as a worker job."""
        source = self._source()
        if source is None or not self._steps:
            raise ConvScopeError("nothing to export: pick a conv layer or use the sandbox")
        weight, bias, layer_input, conv, title = source
        out_channel, steps = self._filter, list(self._steps)
        duration = SPEEDS[self.speed_combo.currentText()]

        def job(progress, cancel) -> int:
            try:
                return render_explain_gif(weight, bias, layer_input, conv, path, out_channel=out_channel,
                                          positions=steps, duration_ms=duration, title=title,
                                          progress=progress, cancel=cancel)
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
        name = (self._ctx["layer"] if self._mode == "layer" and self._ctx else "sandbox").replace("/", "_")
        path, _ = QFileDialog.getSaveFileName(self, "Export the animation", f"{name}.explain.gif",
                                              "Animated GIF (*.gif)")
        if path:
            self.start_gif_export(path)

    def clear(self) -> None:
        self.pause()
        self._ctx = None
        self._pending_layer = None
        self._show_empty_layer()

    # ----------------------------------------------------------------- internals
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._pending_layer is not None:
            self._load_pending()

    def _load_pending(self) -> None:
        from models.runner import conv_bias, layer_weights

        if self._pending_layer is None:
            return
        model, result, info = self._pending_layer
        unit, self._pending_unit = self._pending_unit, None
        self._pending_layer = None
        try:
            weight = layer_weights(model, info.name)
        except ConvScopeError as exc:
            self._show_empty_layer(f"Cannot explain {info.name}: {exc}")
            return
        x = result.conv_inputs.get(info.name)  # captured by the run: no forward pass here
        if weight is None or x is None or x.ndim != 3:
            self._show_empty_layer(f"{info.name}: no 2-D filters to explain")
            return
        self._in_background = True
        try:
            self.set_context(weight, conv_bias(model, info.name), x, info.conv,
                             result.activations.get(info.name), info.name)
            if unit is not None:
                self.set_unit(*unit)
        finally:
            self._in_background = False

    def _show_empty_layer(self, message: str = "Pick a convolution layer to explain it.") -> None:
        self.layer_label.setText(message)
        self.unit_label.clear()
        self.value_label.clear()
        self.layer_formula_label.clear()
        if self._mode == "layer":
            self.pause()
            self._frame_token += 1  # a frame still being drawn is for a layer no longer shown
            self._frame_waiting = False
            self._steps, self._index, self._trace, self._frame = [], 0, None, None
            self.view.set_image(None)
            self.step_label.clear()
            self.why.clear()

    def _set_mode(self, mode: str) -> None:
        self._mode = mode
        self.modes.blockSignals(True)
        self.modes.setCurrentIndex(0 if mode == "layer" else 1)
        self.modes.blockSignals(False)

    def _on_mode_tab(self, index: int) -> None:
        if index == 1:
            self._mode = "sandbox"
            self._index = 0
            self._sandbox_steps()
        else:
            self._mode = "layer"
            if self._ctx is None:
                self._show_empty_layer(self.layer_label.text() or "Pick a convolution layer to explain it.")
                return
            spec = self._ctx["spec"]
            self.set_unit(min(self._filter, spec.c_out - 1), spec.out_h // 2, spec.out_w // 2)
            return
        self._update_why()
        self._refresh()

    def _set_filter_range(self, count: int, value: int) -> None:
        self._syncing = True
        self.filter_spin.setRange(0, max(count - 1, 0))
        self.filter_spin.setValue(value)
        self._syncing = False
        self._filter = value

    def _source(self) -> tuple | None:
        """(weight, bias, input, conv, title) of the mode shown."""
        if self._mode == "sandbox":
            s = self._sandbox
            if self._sandbox_out is None:
                return None
            return s.weight, s.bias, s.input, s.conv, "Sandbox"
        if self._ctx is None:
            return None
        c = self._ctx
        return c["weight"], c["bias"], c["input"], c["conv"], c["layer"]

    def _engine_output(self) -> np.ndarray | None:
        if self._mode == "sandbox":
            return self._sandbox_out
        return None if self._ctx is None else self._ctx["feature_map"]

    def _done_grid(self, weight, bias, layer_input, conv) -> np.ndarray:
        """Output values of the positions already visited (NaN elsewhere): the grid filling up."""
        out = self._engine_output()
        spec = conv_spec(np.shape(layer_input), np.shape(weight), conv)
        done = np.full((spec.out_h, spec.out_w), np.nan)
        for y, x in self._steps[: self._index]:
            if out is not None:
                done[y, x] = out[self._filter, y, x]
            else:  # no feature map: trace the earlier positions too
                done[y, x] = explain_unit(weight, bias, layer_input, conv, self._filter, y, x).value
        return done

    def _refresh(self) -> None:
        source = self._source()
        self._frame_token += 1
        self._frame_waiting = False
        if source is None or not self._steps:
            self._trace, self._frame = None, None
            self.view.set_image(None)
            self.step_label.setText("")
            return
        weight, bias, layer_input, conv, title = source
        y, x = self._steps[self._index]
        try:
            self._trace = explain_unit(weight, bias, layer_input, conv, self._filter, y, x)
        except ConvScopeError as exc:
            self.status.setText(str(exc))
            return
        out = self._engine_output()
        region = region_of(self._steps)
        scale = None
        if out is not None:
            y0, y1, x0, x1 = region
            scale = float(np.abs(out[self._filter, y0:y1, x0:x1]).max(initial=0.0))
        engine_value = self.engine_value()
        draw = partial(render_frame, self._trace, layer_input, conv,
                       done=self._done_grid(weight, bias, layer_input, conv), region=region, title=title,
                       engine_value=engine_value, out_scale=scale, out_channels=weight.shape[0])
        token = self._frame_token
        if self._in_background:
            self._frame_waiting = True
            viewport = self.view_scroll.viewport().size()
            dpr = self.view.devicePixelRatioF()
            self._frames.submit(lambda progress, cancelled: _frame_job(cancelled, draw, viewport, dpr),
                                on_done=lambda frame: self._show_frame(token, *frame),
                                on_error=lambda exc: self._frame_failed(token, exc), quiet=True)
        else:
            self._show_frame(token, draw())
        self.position_slider.blockSignals(True)
        self.position_slider.setRange(0, len(self._steps) - 1)
        self.position_slider.setValue(self._index)
        self.position_slider.blockSignals(False)
        self.step_label.setText(f"step {self._index + 1} / {len(self._steps)}")
        if self._mode == "layer":
            self.unit_label.setText(f"Unit: filter {self._filter}, y={y}, x={x}")
            text = f"traced value: <b>{self._trace.value:.5g}</b>"
            if engine_value is not None:
                ok = agrees(self._trace.value, engine_value)
                colour = "#1e823c" if ok else "#c81e1e"
                text += (f"<br>engine's feature map: <b>{engine_value:.5g}</b> "
                         f"<span style='color:{colour}'>{'✓ equal' if ok else '✗ differs'}</span>")
            self.value_label.setText(text)
        self.unit_changed.emit(self._filter, y, x)

    def _show_frame(self, token: int, frame: np.ndarray, image: QImage | None = None,
                    scaled: QImage | None = None) -> None:
        if token != self._frame_token:  # a later refresh drew (or is drawing) another
            return
        self._frame_waiting = False
        self._frame = frame
        self.view.set_image(frame if image is None else image, scaled)

    def _frame_failed(self, token: int, exc: BaseException) -> None:
        if token == self._frame_token:
            self._frame_waiting = False
            self.status.setText(f"could not draw the frame: {error_message(exc)}")

    def _tick(self) -> None:
        if not self._steps:
            self.pause()
            return
        self.step(1)

    def _apply_speed(self) -> None:
        self.timer.setInterval(SPEEDS[self.speed_combo.currentText()])

    def _on_slider(self, value: int) -> None:
        self.go_to(int(value))

    def _update_why(self) -> None:
        source = self._source()
        if source is None:
            self.why.clear()
            return
        weight, bias, layer_input, conv, _ = source
        spec = conv_spec(np.shape(layer_input), np.shape(weight), conv)
        info = why_convolution(weight.shape, np.shape(layer_input), (spec.c_out, spec.out_h, spec.out_w),
                               bias=bias is not None)
        self.why.setText(
            f"<b>{info['conv_params']:,}</b> parameters in this convolution vs "
            f"<b>{info['fc_params']:,}</b> for a fully connected layer with the same input and output "
            f"({info['ratio']:,.0f}× more).<br><br>{info['locality']}<br><br>{info['sharing']}")

    # ----------------------------------------------------------------- sandbox internals
    def _load_sandbox_controls(self) -> None:
        s = self._sandbox
        self._syncing = True
        for spin, value in ((self.size_spin, s.size), (self.channels_spin, s.channels),
                            (self.filters_spin, s.out_channels), (self.kernel_spin, s.kernel_size),
                            (self.stride_spin, s.stride), (self.padding_spin, s.padding),
                            (self.dilation_spin, s.dilation)):
            spin.setValue(value)
        self.padding_mode_combo.setCurrentText(s.padding_mode)
        self.edit_channel_spin.setRange(0, s.channels - 1)
        self._syncing = False
        self._fill_tables()

    def _on_sandbox_control(self, *_args) -> None:
        if self._syncing:
            return
        try:
            sandbox = self._sandbox.with_settings(
                size=self.size_spin.value(), channels=self.channels_spin.value(),
                out_channels=self.filters_spin.value(), kernel_size=self.kernel_spin.value(),
                stride=self.stride_spin.value(), padding=self.padding_spin.value(),
                dilation=self.dilation_spin.value(), padding_mode=self.padding_mode_combo.currentText())
        except ConvScopeError as exc:
            self.formula_label.setText(f"<span style='color:#c81e1e'>{exc}</span>")
            return
        self.set_sandbox(sandbox)

    def _refresh_sandbox_output(self) -> None:
        s = self._sandbox
        problem = s.problem()
        formula = s.formula()
        if problem:
            self._sandbox_out = None
            self.formula_label.setText(
                f"{formula}<br><span style='color:#c81e1e'>no output: {problem}</span>")
        else:
            self._sandbox_out = s.compute()
            o, ho, wo = self._sandbox_out.shape
            self.formula_label.setText(f"<b>{formula}</b><br>output: {o}×{ho}×{wo} "
                                       f"({o} filter{'s' if o > 1 else ''} → {o} output channel"
                                       f"{'s' if o > 1 else ''})")

    def _sandbox_steps(self) -> None:
        """Every output position of the sandbox, keeping the step (and filter) where possible."""
        o, ho, wo = self._sandbox_out.shape if self._sandbox_out is not None else (1, 0, 0)
        self._steps = positions(ho, wo)
        self._index = min(self._index, max(len(self._steps) - 1, 0))
        self._set_filter_range(o, min(self._filter, o - 1))
        self._fill_tables()

    def _fill_tables(self) -> None:
        s = self._sandbox
        c = min(self.edit_channel_spin.value(), s.channels - 1)
        self._syncing = True
        f = min(self._filter, s.out_channels - 1)
        for table, values in ((self.input_table, s.input[c]), (self.kernel_table, s.weight[f, c])):
            table.blockSignals(True)
            table.setRowCount(values.shape[0])
            table.setColumnCount(values.shape[1])
            for r in range(values.shape[0]):
                for col in range(values.shape[1]):
                    item = QTableWidgetItem(f"{values[r, col]:g}")
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    table.setItem(r, col, item)
            table.blockSignals(False)
        self.kernel_table.setMaximumHeight(24 * s.kernel_size + 30)
        self.kernel_caption.setText(f"Kernel of filter {f}, channel {c} (editable)")
        self._syncing = False

    def _on_cell(self, array: str, table: QTableWidget, row: int, col: int) -> None:
        if self._syncing:
            return
        text = table.item(row, col).text().strip()
        try:
            value = float(text)
        except ValueError:
            self.status.setText(f"not a number: {text!r}")
            self._fill_tables()
            return
        c = self.edit_channel_spin.value()
        index = (c, row, col) if array == "input" else (min(self._filter, self._sandbox.out_channels - 1), c,
                                                         row, col)
        self.set_sandbox(self._sandbox.with_value(array, index, value))
