"""The window's tabs, every one in sight at any width: full titles where they fit, else the
widest shortened first (each view's ``short_title``), else elided; never scroll arrows that
hide tabs. The full name is always in the tab's tooltip."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTabWidget

from gui.view import View


def tab_tooltip(view: View) -> str:
    """The full title (the tab may show a short one), then what the tab does."""
    return f"{view.title} — {view.tab_tip}" if view.tab_tip else view.title


class FittingTabs(QTabWidget):
    """A tab widget whose titles are shortened to fit its width instead of scrolling."""

    def __init__(self) -> None:
        super().__init__()
        self._titles: list[tuple[str, str]] = []  # (full, short) per tab
        self.setUsesScrollButtons(False)
        self.setElideMode(Qt.TextElideMode.ElideRight)  # the last resort: Qt elides, all in sight

    def add_view(self, view: View) -> int:
        index = self.addTab(view, view.title)
        self.setTabToolTip(index, tab_tooltip(view))
        self._titles.append((view.title, view.short_title or view.title))
        self.fit_titles()
        return index

    def full_titles(self) -> list[str]:
        return [full for full, _ in self._titles]

    def titles(self) -> list[str]:
        """The titles as the tabs show them now."""
        return [self.tabText(i) for i in range(self.count())]

    def fit_titles(self) -> None:
        """Full titles if they fit the width; else the widest full ones shortened, one by one,
        until they do (or all are short)."""
        bar = self.tabBar()
        fm = bar.fontMetrics()
        # a tab's width is its text's plus the style's margins (measured on the tab as it is)
        extra = [
            bar.tabSizeHint(i).width() - fm.horizontalAdvance(bar.tabText(i)) for i in range(self.count())
        ]
        titles = [full for full, _ in self._titles]
        room = self.width() - 2

        def total() -> int:
            return sum(e + fm.horizontalAdvance(t) for e, t in zip(extra, titles, strict=True))

        while total() > room:
            longer = [
                (fm.horizontalAdvance(t) - fm.horizontalAdvance(short), i)
                for i, (t, (_, short)) in enumerate(zip(titles, self._titles, strict=True))
                if t != short
            ]
            if not longer:
                break
            _, i = max(longer)  # the one that gives back the most room
            titles[i] = self._titles[i][1]
        for i, title in enumerate(titles):
            if self.tabText(i) != title:
                self.setTabText(i, title)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_titles()
