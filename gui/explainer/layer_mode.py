"""The explainer's "This layer" mode: a conv layer of a run, its labels, loading it when shown."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from gui.explainer.frame_view import scrolled
from models.errors import ConvScopeError
from models.explain import Source, layer_formulas

NO_LAYER = "Pick a convolution layer to explain it."


class LayerMode:
    """The layer part of :class:`~gui.explainer.ExplainerView`: the old entry points
    (``set_layer``, ``set_unit``, ``set_context``), which :meth:`ExplainerView.draw` uses too."""

    def _build_layer_page(self) -> QWidget:
        page = QWidget()
        self.layer_label = QLabel()
        self.unit_label = QLabel()
        self.value_label = QLabel()
        self.value_label.setTextFormat(Qt.TextFormat.RichText)
        self.layer_formula_label = QLabel()
        hint = QLabel(
            "Click a unit in the feature maps to explain it. The window plays over the "
            "positions around it; the input channels are drawn a page at a time, but every "
            "channel is summed. Hover a cell to read its value."
        )
        hint.setStyleSheet("color: gray")
        layout = QVBoxLayout(page)
        for w in (self.layer_label, self.unit_label, self.value_label, self.layer_formula_label, hint):
            w.setWordWrap(True)
            layout.addWidget(w)
        layout.addStretch(1)
        return scrolled(page)

    def set_context(self, weight, bias, layer_input, conv, feature_map, layer: str) -> None:
        """Explain a conv layer on real data.

        Parameters
        ----------
        weight : ``(O, C/groups, kH, kW)`` float32
        bias : ``(O,)`` or None
        layer_input : ``(C, H, W)`` the layer's input activation
        conv : the layer's :class:`~engine.ConvSpec` (``LayerInfo.conv``)
        feature_map : ``(O, H_out, W_out)`` what the engine computed (shown beside the traced value), or None
        layer : the layer's name
        """
        self._pending_layer = None
        try:
            source = Source.of_layer(weight, bias, layer_input, conv, feature_map, layer)
        except ConvScopeError as exc:
            self.sources["layer"] = None
            self._show_empty_layer(f"Cannot explain {layer}: {exc}")
            return
        self.sources["layer"] = source
        self.players["layer"].channel_page = 0  # a new layer starts at its first channels
        spec = source.conv
        self.layer_label.setText(
            f"<b>{layer}</b>: {spec.c_in}×{spec.h}×{spec.w} → {spec.c_out}×{spec.out_h}×{spec.out_w}, "
            f"{spec.c_out} filters of {spec.c_in_per_group}×{spec.kh}×{spec.kw}"
            + (f", {spec.groups} groups" if spec.groups > 1 else "")
        )
        self.layer_formula_label.setText("<br>".join(layer_formulas(spec)))
        self._set_mode("layer")
        self.set_unit(min(self.players["layer"].filter, spec.c_out - 1), spec.out_h // 2, spec.out_w // 2)

    def set_layer(self, model, result, layer: str) -> None:
        """Explain ``layer`` of a run (``models.runner.RunResult``); non-conv layers clear the view.

        The layer's input comes from the run (``result.conv_inputs``). A hidden view loads the
        layer when it is shown; the frame is drawn off the GUI thread (:meth:`loading` until then),
        and a request superseded before its frame is ready is dropped, so holding an arrow key
        down does not queue up frames.
        """
        info = next((la for la in result.layers if la.name == layer), None)
        self.sources["layer"] = None
        if info is None or not info.is_conv:
            self._pending_layer = None
            self._show_empty_layer(f"{layer} is not a convolution: pick a conv layer to explain it.")
            return
        self._pending_layer = (model, result, info)
        self._pending_unit = None
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
        source = self.sources["layer"]
        if source is None:
            return
        spec = source.conv
        if not (0 <= out_channel < spec.c_out and 0 <= y < spec.out_h and 0 <= x < spec.out_w):
            self.status.setText(f"unit ({out_channel}, {y}, {x}) is outside {source.title}")
            return
        self._set_mode("layer")
        self.players["layer"].load(source.steps_around(y, x), spec.c_out, at=(y, x), filter=out_channel)
        self._sync_filter()
        self._update_why()
        self._refresh()

    def clear(self) -> None:
        self.pause()
        self.sources["layer"] = None
        self._pending_layer = None
        self._show_empty_layer()

    def _load_pending(self) -> None:
        from models.layers import conv_bias, layer_weights

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
            self.set_context(
                weight,
                conv_bias(model, info.name),
                x,
                info.conv,
                result.activations.get(info.name),
                info.name,
            )
            if unit is not None:
                self.set_unit(*unit)
        finally:
            self._in_background = False

    def _show_empty_layer(self, message: str = NO_LAYER) -> None:
        self.layer_label.setText(message)
        for label in (self.unit_label, self.value_label, self.layer_formula_label):
            label.clear()
        if self._mode == "layer":
            self.pause()
            self._frame_token += 1  # a frame still being drawn is for a layer no longer shown
            self._frame_waiting = False
            self.players["layer"].clear()
            self._trace, self._frame = None, None
            self.view.set_image(None)
            self.step_label.clear()
            self.why.clear()
