"""The explainer's panes: the side column (a mode's page, why convolution), the tab bar of the
modes over the frame, the frame in its scroll area, the player's bar."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.explainer.frame_view import FrameView, scrolled
from gui.explainer.player_bar import PlayerBar
from gui.explainer.sandbox_panel import SandboxPanel

MODES = ("layer", "sandbox")


class Panes:
    """The construction part of :class:`~gui.explainer.ExplainerView`."""

    def _build(self) -> None:
        self.sandbox_panel = SandboxPanel()
        self.bar = PlayerBar()
        for name in (
            "size_spin",
            "channels_spin",
            "filters_spin",
            "kernel_spin",
            "stride_spin",
            "padding_spin",
            "dilation_spin",
            "padding_mode_combo",
            "formula_label",
            "input_table",
            "kernel_table",
            "edit_channel_spin",
            "random_button",
        ):
            setattr(self, name, getattr(self.sandbox_panel, name))
        for name in (
            "first_button",
            "back_button",
            "play_button",
            "forward_button",
            "position_slider",
            "step_label",
            "speed_combo",
            "filter_spin",
            "next_filter_button",
            "page_spin",
            "export_button",
            "gif_progress",
            "gif_cancel_button",
            "status",
        ):
            setattr(self, name, getattr(self.bar, name))
        self.sandbox_panel.changed.connect(lambda box: self.set_sandbox(box))
        self.sandbox_panel.message.connect(self.status.setText)
        self.random_button.clicked.connect(self.randomize_sandbox)
        self.first_button.clicked.connect(lambda: self.go_to(0))
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.play_button.clicked.connect(self.toggle_play)
        self.position_slider.valueChanged.connect(lambda v: self.go_to(int(v)))
        self.speed_combo.currentTextChanged.connect(lambda _t: self._apply_speed())
        self.filter_spin.valueChanged.connect(self.set_filter)
        self.next_filter_button.clicked.connect(self.next_filter)
        self.page_spin.valueChanged.connect(lambda v: self.set_channel_page(int(v) - 1))
        self.export_button.clicked.connect(self._export_dialog)
        self.gif_cancel_button.clicked.connect(self._gif.cancel)
        self._gif.progress.connect(self._on_gif_progress)
        self._gif.busy_changed.connect(self._on_gif_busy)
        self._gif.cancelled.connect(lambda: self.status.setText("GIF export cancelled"))

        # the modes: a tab bar over the frame (always there), their pages in the side column
        self.modes = QTabBar()
        self.modes.addTab("This layer")
        self.modes.addTab("Sandbox")
        self.modes.setExpanding(False)
        self.modes.setToolTip("explain the selected layer, or play with a small convolution")
        self.modes.currentChanged.connect(lambda i: self._switch_mode(MODES[i]))
        self.mode_pages = QStackedWidget()
        self.mode_pages.addWidget(self._build_layer_page())
        self.mode_pages.addWidget(scrolled(self.sandbox_panel))
        self.side_button = QToolButton()
        self.side_button.setText("Side panel")
        self.side_button.setCheckable(True)
        self.side_button.setChecked(True)
        self.side_button.setToolTip(
            "show or hide the side panel (the layer's numbers, the sandbox's settings, why convolution)"
        )
        self.side_button.toggled.connect(self._show_side)
        self.why = QLabel()
        self.why.setWordWrap(True)
        self.why.setTextFormat(Qt.TextFormat.RichText)
        self.why.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        why_box = QGroupBox("Why convolution?")
        QVBoxLayout(why_box).addWidget(scrolled(self.why))

        self.view = FrameView()
        self.view_scroll = QScrollArea()
        self.view_scroll.setWidget(self.view)
        self.view_scroll.setWidgetResizable(True)
        self.view_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.side_button)
        top.addWidget(self.modes, 1)
        column.addLayout(top)
        column.addWidget(self.view_scroll, 1)
        column.addWidget(self.bar)
        self.side = QWidget()
        column = QVBoxLayout(self.side)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.mode_pages, 3)  # the why text is read too: it gets room, not a peephole
        column.addWidget(why_box, 2)
        self.side.setMinimumWidth(160)
        # the frame gets the room; the side column can be dragged wider (or narrower), or hidden
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.side)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([250, 1000])
        self.splitter.splitterMoved.connect(lambda *_: self._relayout.start())
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self._apply_speed()
