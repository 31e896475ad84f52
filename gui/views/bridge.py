"""Until the window hands every view a :class:`~gui.view.Shown` itself (the house, #14), this
wires views written on the view protocol into today's :class:`~gui.main_window.MainWindow`
with one call: their tabs, a ``Shown`` on every layer step, channel pick and unit click, their
``--view`` keys and their lanes (so ``idle``, ``wait_idle`` and closing see them).

When the window keeps ``self.views`` and builds the ``Shown`` itself, drop this module and list
the views there instead.
"""

from __future__ import annotations

from gui.view import Shown, View


class _Services:
    """The :class:`gui.view.Window` services, from today's window."""

    def __init__(self, window) -> None:
        self._window = window
        self.settings = window.settings

    def select_layer(self, name: str) -> None:
        outcome = self._window.outcome
        names = [la.name for la in outcome.result.layers] if outcome is not None else []
        if name in names:
            self._window.navigator.set_index(names.index(name))

    def open_image_at(self, path: str, layer: str | None = None,
                      unit: tuple[int, int] | None = None) -> None:
        self._window.open_image(path)

    def show_status(self, text: str) -> None:
        self._window.status_label.setText(text)

    def show_error(self, message: str) -> None:
        self._window.show_error(message)


def attach_views(window) -> list[View]:
    """Add the feature visualization and class activation map tabs to ``window``."""
    from gui.views.cam import CamView
    from gui.views.featvis import FeatureVisView

    services = _Services(window)
    views: list[View] = [FeatureVisView(services), CamView(services)]
    for view in views:
        window.tabs.addTab(view, view.title)
    unit: list[tuple[int, int] | None] = [None]

    def push() -> None:
        shown = Shown(outcome=window.outcome, layer=window.current_layer(),
                      channel=window.feature_maps.selected_channel(), unit=unit[0])
        for view in views:
            view.show_state(shown)

    def layer_changed(_index: int) -> None:
        unit[0] = None  # a unit is a unit of the layer it was clicked in
        push()

    def unit_clicked(_channel: int, y: int, x: int) -> None:
        unit[0] = (y, x)
        push()

    window.navigator.layer_changed.connect(layer_changed)
    window.feature_maps.channel_selected.connect(lambda _c: push())
    window.feature_maps.unit_clicked.connect(unit_clicked)
    views_of, workers_of = window._views, window.workers
    window._views = lambda: {**views_of(), **{v.key: v for v in views}}
    window.workers = lambda: workers_of() + [lane for v in views for lane in v.workers()]
    return views
