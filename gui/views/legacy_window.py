"""Until the window hands every view a :class:`~gui.view.Shown` itself (#14, helper "house"),
this wires the top-examples view into today's MainWindow with one call, ``attach_topk(self)``:
the tab, the window services of :class:`~gui.view.Window`, the state on every layer step and
channel pick, the view's lanes among the window's (closing cancels them; ``idle`` waits for
them), and its two File menu entries. When the window implements the protocol, this module
goes and the window adds ``TopKView(self)`` to its list of views."""

from __future__ import annotations

from gui.view import Shown
from gui.views.topk import TopKView


class LegacyServices:
    """:class:`gui.view.Window` on top of today's MainWindow."""

    def __init__(self, win) -> None:
        self._win = win
        self.settings = win.settings

    def select_layer(self, name: str) -> None:
        win = self._win
        if win.outcome is not None:
            names = [la.name for la in win.outcome.result.layers]
            if name in names:
                win.navigator.set_index(names.index(name))

    def open_image_at(self, path: str, layer: str | None = None,
                      unit: tuple[int, int] | None = None, channel: int | None = None) -> None:
        win = self._win

        def arrived(_value=None) -> None:
            gave_up()
            outcome = win.outcome
            if outcome is None or outcome.request.image != path:
                return
            if channel is not None:
                win.feature_maps.select_channel(channel)
            if unit is not None:
                win.select_unit(*unit, channel=channel)

        def gave_up(_exc=None) -> None:
            win.worker.finished.disconnect(arrived)
            win.worker.failed.disconnect(gave_up)
            win.worker.cancelled.disconnect(gave_up)

        win._initial_layer = layer
        win.worker.finished.connect(arrived)
        win.worker.failed.connect(gave_up)
        win.worker.cancelled.connect(gave_up)
        win.open_image(path)
        win.show_view("maps")

    def show_status(self, text: str) -> None:
        self._win.status_label.setText(text)

    def show_error(self, message: str) -> None:
        self._win.show_error(message)


def attach_topk(win) -> TopKView:
    view = TopKView(LegacyServices(win))
    win.tabs.addTab(view, view.title)

    def push(*_) -> None:
        view.show_state(Shown(win.outcome, win.current_layer(), win.feature_maps.selected_channel()))

    win.navigator.layer_changed.connect(push)
    win.feature_maps.channel_selected.connect(push)
    lanes = win.workers
    win.workers = lambda: lanes() + view.workers()
    file_menu = win.menuBar().actions()[0].menu()
    actions = file_menu.actions()
    paste = next(i for i, a in enumerate(actions) if a.text() == "Paste image")
    for action in view.actions_for_menu():  # after "Paste image"
        file_menu.insertAction(actions[paste + 1], action)
    return view
