"""The view protocol: what every tab of the window is and does.

A view is a :class:`View` (a ``QWidget``) with a ``key`` (its name for ``--view`` and the
settings) and a ``title`` (its tab). The window keeps a list of views and, on every change of
what is shown (a run's outcome arrives, the user steps to another layer, picks a channel or a
unit), hands each view the same :class:`Shown`. A view only stores it; :meth:`View.draw` runs
when the view is visible (at once, or when its tab is next shown), so hidden tabs cost nothing.

Adding a tab: one module in ``gui/views/`` with a ``View`` subclass (``key``, ``title``, a
``short_title`` if the title is long,
``draw``; ``export_png`` if it has more to export than its pixels); then, in
``gui/main_window.py``, its import and its entry in the window's list of views, and its key in
``main.VIEWS`` (the ``--view`` choices; a test checks the two agree).

Work off the GUI thread (the worker's rules, :mod:`gui.worker`):

- the window's ``run`` lane computes outcomes; a new request cancels the job in flight, and
  every quiet job on that lane (torch's comparison, an effective field);
- the ``export`` lane writes files, queued: an export never cancels a run, a run never cancels
  an export;
- a view with long work of its own (the explainer's frames, a top-k scan, a feature
  visualization) makes its own lanes with ``Worker(self, name=...)`` and lists them in
  :meth:`View.workers` so the window can cancel them on close and wait for them in tests. A job
  is a plain function ``job(progress, cancel)``; its result reaches ``on_done`` on the GUI
  thread, its exception (an object, never a string) ``on_error``. A view drops results that
  arrive for a :class:`Shown` that is no longer its current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from PySide6.QtWidgets import QFileDialog, QWidget

if TYPE_CHECKING:
    from PySide6.QtCore import QSettings

    from gui.worker import Worker
    from models.layers import LayerInfo


@dataclass(frozen=True)
class Shown:
    """What the window shows: the outcome of the last run (``model``, ``image``, ``result``,
    ``request``; None before the first) and the user's selection in it."""

    outcome: object | None = None
    layer: LayerInfo | None = None
    channel: int | None = None  # the channel picked in the feature maps
    unit: tuple[int, int] | None = None  # (y, x) of the unit clicked in the layer's grid


class Window(Protocol):
    """What a view may ask of the window it is shown in."""

    settings: QSettings

    def select_layer(self, name: str) -> None:
        """Step to layer ``name`` (every view is then shown it)."""

    def open_image_at(
        self,
        path: str,
        layer: str | None = None,
        unit: tuple[int, int] | None = None,
        channel: int | None = None,
    ) -> None:
        """Open the image at ``path`` in the main view; when it has run, select ``layer`` and
        ``unit`` there (of ``channel``, when given: the feature maps show that channel)."""

    def show_status(self, text: str) -> None:
        """A line in the status bar."""

    def show_error(self, message: str) -> None:
        """A message box that does not block the app."""

    def save_path(self, title: str, name: str, filters: str) -> str:
        """A save dialog suggesting ``name`` in the folder used last (else Pictures), which it
        remembers, the keyboard back to the window after; "" when cancelled."""


class View(QWidget):
    """One tab of the window. Subclasses set ``key`` and ``title`` (short: eight tabs share one
    row) and implement :meth:`draw`; ``tab_tip`` says more on the tab's tooltip."""

    key: ClassVar[str] = ""
    title: ClassVar[str] = ""
    short_title: ClassVar[str] = ""  # the tab's title when the window is narrow (else ``title``)
    tab_tip: ClassVar[str] = ""

    def __init__(self, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_services = window
        self.shown = Shown()
        self._drawn: Shown | None = None

    # -- the protocol ---------------------------------------------------------------------------
    def show_state(self, shown: Shown) -> None:
        """Take what the window shows now; drawn at once if visible, else when next shown."""
        self.shown = shown
        if self.isVisible():
            self.refresh()

    def draw(self, shown: Shown) -> None:
        """Draw ``shown`` (called on the GUI thread, only while visible, once per change)."""
        raise NotImplementedError

    def workers(self) -> list[Worker]:
        """The view's own lanes (cancelled when the window closes, waited for in tests)."""
        return []

    def busy(self) -> bool:
        """Still drawing something the user asked for (a frame, a preview): not idle."""
        return any(w.busy and not w.quiet for w in self.workers())

    def export_png(self, path: Path) -> Path:
        """Write what the view shows as a PNG at ``path`` (default: the widget's pixels)."""
        if not self.grab().save(str(path)):
            raise OSError(f"cannot write {path}")
        return Path(path)

    def save_path(self, title: str, name: str, filters: str) -> str:
        """Ask where to save: the window's dialog (the folder used last, remembered), or a plain
        one for a view shown on its own; "" when cancelled."""
        if self.window_services is not None:
            return self.window_services.save_path(title, name, filters)
        return QFileDialog.getSaveFileName(self, title, name, filters)[0]

    # -- lazy drawing ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """Draw the current state if it changed since the last draw."""
        if self._drawn is not self.shown:
            self._drawn = self.shown
            self.draw(self.shown)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()
