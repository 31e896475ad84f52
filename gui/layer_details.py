"""The current layer's numbers: shape, parameters, MACs, receptive field, time, algorithm."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from models.runner import LayerInfo


def why_convolution(layer: LayerInfo, input_shape: tuple[int, ...] | None) -> str:
    """A conv layer's parameter count beside a fully connected layer's for the same mapping."""
    if not layer.is_conv or input_shape is None or len(input_shape) != 4:
        return ""
    c, h, w = input_shape[1:]
    oc, oh, ow = layer.output_shape[1:]
    dense = c * h * w * oc * oh * ow
    return (f"<br><b>Why convolution?</b> A fully connected layer mapping the same "
            f"{c}×{h}×{w} input to the same {oc}×{oh}×{ow} output would need {dense:,} weights; "
            f"this layer has {layer.params:,} ({dense / max(layer.params, 1):,.0f}× fewer). "
            f"<i>Locality</i>: each output looks only at a small window of the input. "
            f"<i>Weight sharing</i>: the same kernel slides over every position.")


class LayerDetails(QLabel):
    def __init__(self) -> None:
        super().__init__("no model yet")
        self.setWordWrap(True)
        self.setTextFormat(self.textFormat().RichText)

    def show_layer(self, layer: LayerInfo, index: int, count: int,
                   input_hw: tuple[int, int], input_shape: tuple[int, ...] | None = None) -> None:
        rf = layer.receptive_field
        shape = " × ".join(str(s) for s in layer.output_shape[1:])
        rows = [
            f"<b>{layer.name}</b> · {layer.type} · layer {index + 1} of {count}",
            f"output {shape} · {layer.params:,} parameters · {layer.macs:,} MACs",
            f"time {layer.time_ms:.2f} ms" + (f" · algorithm: <b>{layer.algorithm}</b>"
                                               if layer.algorithm else ""),
        ]
        if layer.conv:
            cv = layer.conv
            rows.append(f"kernel {cv['kernel'][0]}×{cv['kernel'][1]} · stride {cv['stride']} · "
                        f"padding {cv['padding']} ({cv['padding_mode']}) · dilation "
                        f"{cv['dilation']} · groups {cv['groups']}")
        if rf:
            share = rf.share_of(*input_hw)
            rows.append(f"receptive field {rf.size[0]}×{rf.size[1]} px · jump {rf.jump[0]} · "
                        f"one unit sees {share * 100:.3g}% of the image")
        else:
            rows.append("no receptive-field box: this output has no spatial grid")
        self.setText("<br>".join(rows) + why_convolution(layer, input_shape))
