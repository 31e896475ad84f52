"""The sandbox's controls: settings, the formula, and tables to edit the input and a kernel."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine import PADDING_MODES
from models.errors import ConvScopeError
from models.explain import SANDBOX_LIMITS, Sandbox

_CONTROLS = (  # attribute, Sandbox field, label, tooltip
    ("size_spin", "size", "Input size", "input height and width"),
    ("channels_spin", "channels", "Input channels", "input channels: one kernel per channel in each filter"),
    ("filters_spin", "out_channels", "Filters", "filters = output channels"),
    ("kernel_spin", "kernel_size", "Kernel size", "kernel height and width"),
    ("stride_spin", "stride", "Stride", "how far the window jumps"),
    ("padding_spin", "padding", "Padding", "border added around the input"),
    ("dilation_spin", "dilation", "Dilation", "gaps between the kernel's taps"),
)


class SandboxPanel(QWidget):
    """Edits a :class:`Sandbox`.

    Signals
    -------
    changed(Sandbox) : the user changed a setting or a value
    message(str) : a line for the status (a cell that is not a number)
    """

    changed = Signal(object)
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._sandbox: Sandbox | None = None
        self._filter = 0
        self._syncing = False
        form = self.form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for attr, name, label, tip in _CONTROLS:
            lo, hi = SANDBOX_LIMITS[name]
            spin = QSpinBox()
            spin.setRange(lo, hi)
            spin.setToolTip(f"{tip} ({lo}–{hi})")
            spin.valueChanged.connect(self._on_control)
            setattr(self, attr, spin)
            form.addRow(f"{label} ({lo}–{hi})", spin)  # the range is said, never silently enforced
        self.padding_mode_combo = QComboBox()
        self.padding_mode_combo.addItems(list(PADDING_MODES))
        self.padding_mode_combo.setToolTip("what the border is filled with")
        self.padding_mode_combo.currentTextChanged.connect(self._on_control)
        form.addRow("Padding mode", self.padding_mode_combo)
        self.formula_label = QLabel()
        self.formula_label.setWordWrap(True)
        self.formula_label.setTextFormat(Qt.TextFormat.RichText)
        self.random_button = QPushButton("Randomize")
        self.random_button.setToolTip("new random values for the input and the kernels")
        self.edit_channel_spin = QSpinBox()
        self.edit_channel_spin.setToolTip("which input channel (and kernel) the tables edit")
        self.edit_channel_spin.valueChanged.connect(lambda _v: self.fill_tables())
        self.input_table = _table()
        self.kernel_table = _table()
        self.input_table.cellChanged.connect(lambda r, c: self._on_cell("input", self.input_table, r, c))
        self.kernel_table.cellChanged.connect(lambda r, c: self._on_cell("weight", self.kernel_table, r, c))
        edit_row = QHBoxLayout()
        edit_row.addWidget(QLabel("Edit channel"))
        edit_row.addWidget(self.edit_channel_spin)
        edit_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.formula_label)
        layout.addWidget(
            self.random_button, 0, Qt.AlignmentFlag.AlignLeft
        )  # a row of its own: never squeezed
        layout.addLayout(edit_row)
        input_caption = QLabel("Input (double-click a cell to edit)")
        input_caption.setWordWrap(True)
        layout.addWidget(input_caption)
        layout.addWidget(self.input_table, 1)
        self.kernel_caption = QLabel()
        self.kernel_caption.setWordWrap(True)
        layout.addWidget(self.kernel_caption)
        layout.addWidget(self.kernel_table)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ParentChange and self.parentWidget() is not None:
            self.parentWidget().installEventFilter(self)  # a scroll area's viewport: its width
        return super().event(event)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self._wrap_form()
        return False

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._wrap_form()

    def _wrap_form(self) -> None:
        """Labels beside their fields when the column has room for both, else every field
        under its label (a narrow column, the window at 1024 px): never a squeezed spin box."""
        form = self.form
        labels = [form.itemAt(i, QFormLayout.ItemRole.LabelRole) for i in range(form.rowCount())]
        fields = [form.itemAt(i, QFormLayout.ItemRole.FieldRole) for i in range(form.rowCount())]
        margins = self.layout().contentsMargins()
        need = (
            max(item.sizeHint().width() for item in labels if item is not None)
            + max(form.horizontalSpacing(), 6)
            + max(item.sizeHint().width() for item in fields if item is not None)
            + margins.left()
            + margins.right()
        )
        room = self.parentWidget().width() if self.parentWidget() is not None else self.width()
        policy = (
            QFormLayout.RowWrapPolicy.DontWrapRows if room >= need else QFormLayout.RowWrapPolicy.WrapAllRows
        )
        if form.rowWrapPolicy() != policy:
            form.setRowWrapPolicy(policy)

    def load(self, sandbox: Sandbox, out_channel: int) -> None:
        """Show ``sandbox``'s settings, formula and values (kernel of filter ``out_channel``)."""
        self._sandbox = sandbox
        self._filter = out_channel
        self._syncing = True
        for attr, name, _label, _tip in _CONTROLS:
            getattr(self, attr).setValue(getattr(sandbox, name))
        self.padding_mode_combo.setCurrentText(sandbox.padding_mode)
        self.edit_channel_spin.setRange(0, sandbox.channels - 1)
        self._syncing = False
        problem, formula = sandbox.problem(), sandbox.formula()
        if problem:
            self.formula_label.setText(
                f"{formula}<br><span style='color:#c81e1e'>no output: {problem}</span>"
            )
        else:
            o, (ho, wo) = sandbox.out_channels, sandbox.output_hw()
            s = "s" if o > 1 else ""
            self.formula_label.setText(
                f"<b>{formula}</b><br>output: {o}×{ho}×{wo} ({o} filter{s} → {o} output channel{s})"
            )
        self.fill_tables()

    def set_filter(self, out_channel: int) -> None:
        self._filter = out_channel
        self.fill_tables()

    def fill_tables(self) -> None:
        s = self._sandbox
        if s is None:
            return
        c = min(self.edit_channel_spin.value(), s.channels - 1)
        f = min(self._filter, s.out_channels - 1)
        self._syncing = True
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

    def _on_control(self, *_args) -> None:
        if self._syncing or self._sandbox is None:
            return
        try:
            sandbox = self._sandbox.with_settings(
                size=self.size_spin.value(),
                channels=self.channels_spin.value(),
                out_channels=self.filters_spin.value(),
                kernel_size=self.kernel_spin.value(),
                stride=self.stride_spin.value(),
                padding=self.padding_spin.value(),
                dilation=self.dilation_spin.value(),
                padding_mode=self.padding_mode_combo.currentText(),
            )
        except ConvScopeError as exc:
            self.formula_label.setText(f"<span style='color:#c81e1e'>{exc}</span>")
            return
        self.changed.emit(sandbox)

    def _on_cell(self, array: str, table: QTableWidget, row: int, col: int) -> None:
        if self._syncing or self._sandbox is None:
            return
        text = table.item(row, col).text().strip()
        try:
            value = float(text)
        except ValueError:
            self.message.emit(f"not a number: {text!r}")
            self.fill_tables()
            return
        c = self.edit_channel_spin.value()
        index = (
            (c, row, col)
            if array == "input"
            else (min(self._filter, self._sandbox.out_channels - 1), c, row, col)
        )
        self.changed.emit(self._sandbox.with_value(array, index, value))


def _table() -> QTableWidget:
    table = QTableWidget()
    # the columns share the column's width (34 px each at most, 20 at least: then it scrolls)
    table.horizontalHeader().setMinimumSectionSize(20)
    table.horizontalHeader().setMaximumSectionSize(34)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.verticalHeader().setDefaultSectionSize(24)
    table.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
    return table
