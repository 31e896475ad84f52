"""Labels that change often never cut a line in half: what does not fit ends in "…", and the
whole text is in the tooltip."""

from __future__ import annotations

from gui.widgets import steady_label

LONG = (
    "<b>channel 0</b> (vertical edges) · 112×112 · min 0.00685 · mean 0.241 · max 1.25 "
    "and more words than any narrow pane holds"
)


def test_a_steady_label_that_does_not_fit_ends_in_an_ellipsis(qtbot) -> None:
    for wrap, lines in ((False, 1), (True, 3)):
        label = steady_label(lines=lines, wrap=wrap)
        qtbot.addWidget(label)
        label.resize(160, label.height())
        label.setText(LONG)
        label.show()
        shown = label.shown_text()
        assert shown.endswith("…") and shown.startswith("channel 0 (vertical")
        fm = label.fontMetrics()
        rect = label.contentsRect()
        flags = int(label.alignment()) | (0x1000 if wrap else 0)  # Qt.TextWordWrap
        box = fm.boundingRect(rect.adjusted(0, 0, 0, 10_000), flags, shown)
        assert box.height() <= rect.height() and box.width() <= rect.width()
        assert label.toolTip() == LONG and label.text() == LONG  # nothing lost
        label.resize(2000, label.height())  # room enough: drawn as it is
        assert (
            label.shown_text() == "channel 0 (vertical edges) · 112×112 · min 0.00685 · mean 0.241 · "
            "max 1.25 and more words than any narrow pane holds"
        )
        label.setText("short")
        assert label.shown_text() == "short"
