"""The window's questions and messages: trust a pickled file, pick a state dict's architecture,
a message box that does not block, and the words for errors that have a remedy in the window.

The questions are module functions so tests can replace them (``gui.dialogs.ask_trust``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox, QWidget

from models.errors import WeightsUnavailableError
from models.sources import available_models

RANDOM_WEIGHTS = "Load with random weights instead"


def ask_trust(parent: QWidget, path: str, reason: str = "") -> bool:
    """Ask before loading a file that can run code: a pickle, an archive with pickled parts, a
    compiled model that calls more than tensor operators. ``reason``: what the loader found."""
    found = reason or f"{Path(path).name} holds pickled Python objects"
    answer = QMessageBox.question(
        parent,
        "Trust this model file?",
        f"{found}.\n\nLoading or running it runs code from the file, which could do anything your "
        f"account can do. Load it only if you trust where it came from. Load it?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_arch(parent: QWidget, path: str, guess: str | None = None) -> str | None:
    """A state dict holds weights only: ask which catalog architecture they belong to
    (``guess``, the architecture the file's keys suggest, is preselected)."""
    names = available_models()
    name, ok = QInputDialog.getItem(
        parent,
        "Which architecture?",
        f"{Path(path).name} holds weights only (a state dict).\nWhich architecture are they for?",
        names,
        names.index(guess) if guess in names else 0,
        False,
    )
    return name if ok and name else None


def declined_trust(name: str) -> str:
    return (
        f"{name} was not opened: loading or running it runs code from the file (a pickled model, "
        f"or operators beyond tensor arithmetic). Open it again and answer Yes only if you "
        f"trust where it came from."
    )


def no_architecture(name: str) -> str:
    return f"{name} was not opened: it holds weights only, and no architecture was chosen."


def weights_unavailable(exc: WeightsUnavailableError, model: str) -> str:
    """An offline catalog model, in the window's words: what failed, where the file comes from and
    where it goes (to fetch it on another machine), and what the button does."""
    lines = [str(exc), ""]
    if exc.url and exc.path:
        lines += [
            f"To use the pretrained weights of {model}, download this file on a machine that is online:",
            f"    {exc.url}",
            "and save it here:",
            f"    {exc.path}",
            f"then choose {model} again.",
            "",
        ]
    lines.append(
        f"Or look at {model} with random weights, this once (Model ▸ Untrained does that for every model)."
    )
    return "\n".join(lines)


def message_box(
    parent: QWidget, text: str, actions: list[tuple[str, Callable[[], None]]] = ()
) -> QMessageBox:
    """A warning that does not block the app (``open``, not ``exec``), with an OK button and a
    button per action (its callback runs when it is clicked)."""
    box = QMessageBox(QMessageBox.Icon.Warning, "ConvScope", text, QMessageBox.StandardButton.Ok, parent)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # URL, folder: copied
    for label, callback in actions:
        button = box.addButton(label, QMessageBox.ButtonRole.AcceptRole)
        button.clicked.connect(lambda _checked=False, f=callback: f())
    box.open()
    return box
