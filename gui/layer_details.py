"""The current layer's numbers: shape, parameters, MACs, receptive field, time, algorithm."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from models.explain import why_convolution
from models.runner import LayerInfo


def why_convolution_text(layer: LayerInfo) -> str:
    """A conv layer's parameter count beside a fully connected layer's for the same mapping."""
    if not layer.is_conv or layer.input_shape is None or len(layer.input_shape) != 4:
        return ""
    cv = layer.conv
    weight_shape = (cv.c_out, cv.c_in_per_group, cv.kh, cv.kw)
    has_bias = layer.params > weight_shape[0] * weight_shape[1] * weight_shape[2] * weight_shape[3]
    info = why_convolution(weight_shape, layer.input_shape[1:], layer.output_shape[1:], bias=has_bias)
    return (
        f"<br><b>Why convolution?</b> {info['conv_params']:,} parameters here; a fully "
        f"connected layer for the same mapping would need {info['fc_params']:,} "
        f"({info['ratio']:,.0f}× more). More in the Explain tab."
    )


class LayerDetails(QLabel):
    def __init__(self) -> None:
        super().__init__("no model yet")
        self.setWordWrap(True)
        self.setTextFormat(self.textFormat().RichText)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setMargin(4)

    def show_layer(self, layer: LayerInfo, index: int, count: int, input_hw: tuple[int, int]) -> None:
        rf = layer.receptive_field
        shape = " × ".join(str(s) for s in layer.output_shape[1:])
        rows = [
            f"<b>{layer.name}</b> · {layer.type} · layer {index + 1} of {count}",
            f"output {shape} · {layer.params:,} parameters · {layer.macs:,} MACs",
            f"time {layer.time_ms:.2f} ms"
            + (f" · algorithm: <b>{layer.algorithm}</b>" if layer.algorithm else ""),
        ]
        if layer.conv:
            cv = layer.conv
            top, bottom, left, right = cv.pad
            padding = f"({top}, {left})" if (top, left) == (bottom, right) else str(cv.pad)
            rows.append(
                f"kernel {cv.kh}×{cv.kw} · stride {cv.stride} · padding {padding} "
                f"({cv.padding_mode}) · dilation {cv.dilation} · groups {cv.groups}"
            )
        if rf:
            share = rf.share_of(*input_hw)
            rows.append(
                f"receptive field {rf.size[0]}×{rf.size[1]} px · jump {rf.jump[0]} · "
                f"one unit sees {share * 100:.3g}% of the image"
                + (" (channels-last: the grid is the output's middle axes)" if layer.channels_last else "")
            )
            if rf.global_context:
                rows.append(
                    "it also receives global context: a squeeze-and-excitation gate (or a "
                    "global normalisation) computed from the whole image scales it"
                )
            if rf.assumed:
                rows.append(f"assumed pointwise on the way: {', '.join(rf.assumed)}")
        elif layer.field_note:
            rows.append(f"no receptive-field box: {layer.field_note}")
        else:
            rows.append("no receptive-field box: this output has no spatial grid")
        self.setText("<br>".join(rows) + why_convolution_text(layer))
