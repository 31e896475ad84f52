"""The filters view: every filter, one kernel per input channel, and it says what it leaves out."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def view(filters_view):
    return filters_view  # tests/gui/conftest.py


def test_a_big_layer_says_what_the_matrix_leaves_out_and_one_channel_shows_every_filter(view) -> None:
    weight = np.random.default_rng(0).standard_normal((512, 64, 3, 3)).astype(np.float32)
    view.set_weights("layer4.0.conv1", weight)
    assert "512 filters · each = 64 kernels of 3×3" in view.caption.text()
    legend = view.legend.text()
    assert "the first 256 of 512 filters" in legend and "the first 32 of 64 input channels" in legend
    image = view.render_image()
    assert max(image.shape[:2]) <= 1600  # no bigger than a screen shows
    view.channel.setCurrentIndex(1 + 5)  # input channel 5
    assert len(view._rects) == 512  # every filter's kernel for that channel
    top, left, h, w = view._rects[511]
    kernel = view.render_image()[top : top + h, left : left + w]
    assert kernel.shape[:2] == (h, w) and (kernel != 40).any()  # drawn, not background
    assert "showing" not in view.legend.text()
