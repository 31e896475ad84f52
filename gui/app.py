"""Start the desktop app (``python main.py``) or take a screenshot of it (``--screenshot``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

_SCREENSHOT_DIRS: list = []


def run_app(args: argparse.Namespace) -> int:
    from gui.widgets import configure_pyqtgraph

    configure_pyqtgraph()
    # the engines' compiled kernels load (or compile, once per machine) while the window opens
    import threading

    import engine

    threading.Thread(target=engine.warm_up, name="convscope-warm-up", daemon=True).start()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ConvScope")
    app.setOrganizationName("ConvScope")
    from gui.main_window import MainWindow

    settings = QSettings("ConvScope", "ConvScope")
    if args.screenshot:
        # a screenshot shows exactly what was asked, not the user's remembered choices
        import tempfile

        # a throw-away settings file, outside the user's folders; removed with its directory
        tmp = tempfile.TemporaryDirectory(prefix="convscope-shot-")
        settings = QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat)
        _SCREENSHOT_DIRS.append(tmp)  # alive until the process exits, then removed
    size = getattr(args, "window_size", None)
    if args.screenshot and size is None:
        from gui.main_window import DEFAULT_SIZE

        size = DEFAULT_SIZE  # a screenshot's size does not depend on the screen it is taken on
    window = MainWindow(settings, size=size)
    window.start(
        image=args.image,
        model=args.model,
        engine=args.engine if args.engine != "auto" or args.screenshot else None,
        untrained=args.untrained or None,
        trust=args.trust_model,
        layer=args.layer,
        arch=args.arch,
        input_size=args.input_size,
        channels=args.channels,
        mean=getattr(args, "mean", None),
        std=getattr(args, "std", None),
        labels=getattr(args, "labels", None),
        fall_back=not args.screenshot,  # a screenshot shows what was asked, or fails
    )
    if getattr(args, "dataset", None):
        window.topk.set_folder(args.dataset)  # scanned as soon as the model is loaded
    if args.view and not args.screenshot:
        window.show_view(args.view)
    window.show()
    if args.screenshot:
        return _screenshot(app, window, args)
    return finish(window, app.exec())


def finish(window, code: int) -> int:
    """``code``, once the window has closed. A run the user left behind (a model that did not
    stop on Cancel) may still be inside torch: the interpreter's shutdown would tear torch's
    thread pools down under it and abort the process ("terminate called without an active
    exception"), so the process then ends as it stands, settings saved and output flushed."""
    if any(lane.left_behind for lane in window.workers()):
        import os

        window.settings.sync()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _screenshot(app: QApplication, window, args: argparse.Namespace) -> int:
    window.wait_idle()
    if window.last_error or window.outcome is None:
        print(f"error: {window.last_error or 'nothing to show'}", file=sys.stderr)
        return 2
    if args.view:
        window.show_view(args.view)
    if args.unit:
        if not window.select_unit(*args.unit):
            print(f"error: {window.last_error}", file=sys.stderr)
            return 2
    window.wait_idle()  # the unit's effective field; the explainer's frame; a top-k scan
    if window.last_error:
        print(f"error: {window.last_error}", file=sys.stderr)
        return 2
    for _ in range(5):  # let every view lay out and paint
        app.processEvents()
    Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(args.screenshot))
    window.close()
    if not ok:
        print(f"error: cannot write {args.screenshot}", file=sys.stderr)
        return 2
    return 0
