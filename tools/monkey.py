"""A seeded random walk through the real window, watching for what a restless user would find.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=$PWD .venv/bin/python tools/monkey.py [--seconds 480]
                                                          [--actions N] [--seed 1] [--every 30]

It steps layers (keys), switches tabs, engines and models (classic, efficientnet_lite0, an
untrained torchvision one, and a pretrained one whose download fails: offline), opens photos
(samples, a broken file, odd sizes, a paste), moves the mouse over the maps and clicks them
(real Qt events), plays and steps the explainer, exports (PNG, .npy, everything, GIF) into a
temporary folder, cancels, resizes the window, and sometimes fires bursts of actions without
letting the event loop run in between. At the end it waits for the window to be idle and checks
that what it shows agrees with itself (menus, layer list, maps, details).

It fails (exit 1) on any exception (sys.excepthook, threading.excepthook, a job's unexpected
error), any Qt warning, any Python warning, or an inconsistent final state. It prints the
actions done, the longest GUI stall (the longest gap between ticks of a 5 ms timer while the
event loop runs; an action's own synchronous time is reported apart) and the memory (RSS) over
time. The machine may be shared: a stall can be another process's load.

``tests/gui/test_monkey.py`` runs a short walk in the normal test run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import random
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QColor, QImage, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPushButton

from models.errors import ConvScopeError
from models.images import sample_images

MODELS = ("classic", "efficientnet_lite0", "mobilenet_v3_small")  # the last one untrained
OFFLINE_MODEL = "squeezenet1_1"  # pretrained: a download, which fails offline
BENIGN_QT = ("This plugin does not support propagateSizeHints()",)  # the offscreen platform's
KEYS = (
    Qt.Key.Key_Right,
    Qt.Key.Key_Left,
    Qt.Key.Key_Down,
    Qt.Key.Key_Up,
    Qt.Key.Key_PageDown,
    Qt.Key.Key_PageUp,
    Qt.Key.Key_Home,
    Qt.Key.Key_End,
)


def rss_mb() -> float:
    """The process's resident memory now, in MiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_images(folder: Path) -> dict[str, Path]:
    """Photos a user might open: odd sizes, grey, and a file that is no image at all."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {
        "tiny": (rng.integers(0, 255, (3, 3, 3)), "png"),
        "wide": (rng.integers(0, 255, (60, 400, 3)), "png"),
        "tall": (rng.integers(0, 255, (500, 90, 3)), "jpg"),
        "grey": (rng.integers(0, 255, (200, 200)), "png"),
    }
    paths = {}
    for name, (pixels, ext) in files.items():
        paths[name] = folder / f"{name}.{ext}"
        Image.fromarray(pixels.astype(np.uint8)).save(paths[name])
    paths["broken"] = folder / "broken.png"
    paths["broken"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))  # a PNG header, then nothing
    return paths


class Monkey:
    """Random actions on a shown :class:`gui.main_window.MainWindow`, with watchers."""

    def __init__(self, win, seed: int, workdir: Path) -> None:
        self.win = win
        self.rng = random.Random(seed)
        self.workdir = Path(workdir)
        self.images = make_images(self.workdir / "images")
        self.exports = self.workdir / "exports"
        self.exports.mkdir(parents=True, exist_ok=True)
        self.done: Counter[str] = Counter()
        self.recent: deque[str] = deque(maxlen=25)
        self.problems: list[str] = []
        self.worst_action = (0.0, "")  # an action's own time on the GUI thread (s, name)
        self.slowest: dict[str, float] = {}  # the same, per kind of action (s)
        self.worst_stall = (0.0, "")  # the longest heartbeat gap while the loop ran (s, after)
        self.memory: list[tuple[float, float]] = []  # (s since start, MiB)
        self._measuring = False
        self._last_tick = time.perf_counter()
        self._heartbeat = QTimer()
        self._heartbeat.setInterval(5)
        self._heartbeat.timeout.connect(self._tick)
        self._n = 0
        self.stalls: list[tuple[float, str, str]] = []  # (s, after, the GUI thread's stack then)
        self._gui_thread = threading.get_ident()
        self._stack: str | None = None
        self._trace = False
        # what the user has asked for since the last settle (model, untrained, engine, photo):
        # the window must show exactly that once idle, unless something failed or was cancelled
        self.intent: dict[str, object] = {}
        self._uncertain = True
        self.actions: list[tuple[str, int, Callable[[], None]]] = [
            ("key", 22, self.key),
            ("tab", 8, self.tab),
            ("engine", 5, self.engine),
            ("model", 4, self.model),
            ("untrained", 2, self.untrained),
            ("image", 5, self.image),
            ("hover", 22, self.hover),
            ("click", 6, self.click),
            ("explainer", 8, self.explainer),
            ("export", 3, self.export),
            ("cancel", 1, self.cancel),
            ("resize", 3, self.resize),
            ("burst", 4, self.burst),
            ("settle", 2, self.settle),
        ]

    # ----------------------------------------------------------------- watching
    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Record exceptions, Qt warnings, Python warnings and jobs' unexpected errors."""
        old_hook, old_thread_hook = sys.excepthook, threading.excepthook

        def hook(kind, value, tb) -> None:
            self._problem("exception: " + "".join(traceback.format_exception(kind, value, tb))[-1500:])
            old_hook(kind, value, tb)

        def thread_hook(args) -> None:
            self._problem(
                f"exception in thread {args.thread.name if args.thread else '?'}: "
                f"{args.exc_type.__name__}: {args.exc_value}"
            )
            old_thread_hook(args)

        def qt_message(mode, context, message) -> None:
            if (
                mode != QtMsgType.QtDebugMsg
                and mode != QtMsgType.QtInfoMsg
                and not any(b in message for b in BENIGN_QT)
            ):
                self._problem(f"Qt {mode.name}: {message}")
            if previous is not None:
                previous(mode, context, message)

        def job_failed(exc: BaseException) -> None:
            if not isinstance(exc, ConvScopeError):
                self._problem(f"a job failed unexpectedly: {type(exc).__name__}: {exc}")

        def python_warning(message, category, filename, lineno, file=None, line=None) -> None:
            self._problem(f"warning: {category.__name__}: {message} ({filename}:{lineno})")

        sys.excepthook, threading.excepthook = hook, thread_hook
        previous = qInstallMessageHandler(qt_message)
        old_showwarning = warnings.showwarning
        warnings.showwarning = python_warning
        lanes = self.win.workers()
        for lane in lanes:
            lane.failed.connect(job_failed)

        def uncertain(*_args) -> None:  # a choice may have been taken back: no intent to check
            self._uncertain = True

        run = self.win.worker
        for signal in (run.failed, run.cancelled, run.abandoned):
            signal.connect(uncertain)
        self._heartbeat.start()
        try:
            yield
        finally:
            self._heartbeat.stop()
            for lane in lanes:
                lane.failed.disconnect(job_failed)
            for signal in (run.failed, run.cancelled, run.abandoned):
                signal.disconnect(uncertain)
            warnings.showwarning = old_showwarning
            qInstallMessageHandler(previous)
            sys.excepthook, threading.excepthook = old_hook, old_thread_hook

    def _problem(self, text: str) -> None:
        self.problems.append(f"{text}\n    after: {' > '.join(self.recent)}")

    def _tick(self) -> None:
        now = time.perf_counter()
        gap = now - self._last_tick
        if self._measuring and gap > self.worst_stall[0]:
            self.worst_stall = (gap, self.recent[-1] if self.recent else "start")
        if self._measuring and self._stack is not None:
            self.stalls.append((gap, self.recent[-1] if self.recent else "start", self._stack))
            self.stalls = sorted(self.stalls, reverse=True)[:5]
        self._stack = None
        self._last_tick = now

    def trace_stalls(self, after_s: float = 0.08) -> None:
        """Watch from a thread: when the heartbeat is ``after_s`` late, note where the GUI thread
        is (its Python stack), so the longest stalls can be told apart."""
        self._trace = True

        def watch() -> None:
            while self._trace:
                time.sleep(0.01)
                if (
                    self._measuring
                    and self._stack is None
                    and time.perf_counter() - self._last_tick > after_s
                ):
                    frame = sys._current_frames().get(self._gui_thread)
                    if frame is not None:
                        self._stack = "".join(traceback.format_stack(frame)[-12:])

        threading.Thread(target=watch, name="monkey-stall-watch", daemon=True).start()

    def stop_tracing(self) -> None:
        self._trace = False

    def wait(self, ms: int) -> None:
        """Let the event loop run for ``ms`` (the heartbeat measures stalls meanwhile)."""
        self._last_tick = time.perf_counter()
        self._measuring = True
        QTest.qWait(ms)
        self._measuring = False

    # ----------------------------------------------------------------- the walk
    def run(
        self,
        seconds: float,
        max_actions: int | None = None,
        every_s: float = 30.0,
        report: Callable[[str], None] | None = None,
    ) -> None:
        start = time.perf_counter()
        next_sample = 0.0
        while time.perf_counter() - start < seconds and (max_actions is None or self._n < max_actions):
            elapsed = time.perf_counter() - start
            if elapsed >= next_sample:
                self.memory.append((elapsed, rss_mb()))
                if report and next_sample > 0:
                    report(
                        f"{elapsed:5.0f} s  {self._n} actions  RSS {self.memory[-1][1]:.0f} MiB  "
                        f"longest stall {self.worst_stall[0] * 1e3:.0f} ms"
                    )
                next_sample += every_s
            self.act()
            self.wait(self.rng.choice((0, 1, 5, 20, 50, 120)))

    def act(self, in_burst: bool = False) -> None:
        names = [a for a in self.actions if not (in_burst and a[0] in ("burst", "settle"))]
        name, _, fn = self.rng.choices(names, weights=[w for _, w, _ in names])[0]
        self._n += 1
        self.recent.append(name)
        t0 = time.perf_counter()
        fn()
        took = time.perf_counter() - t0
        if name not in ("burst", "settle"):
            self.slowest[name] = max(self.slowest.get(name, 0.0), took)
            if took > self.worst_action[0]:
                self.worst_action = (took, self.recent[-1])
        self.done[name] += 1

    def burst(self) -> None:
        """Several actions without the event loop running in between (a user faster than us)."""
        for _ in range(self.rng.randint(3, 15)):
            self.act(in_burst=True)

    def settle(self) -> None:
        """Wait for everything to finish (cancelling what takes over 5 s, as a user would), then
        check the state."""
        self.settle_fully(patience_s=5.0)
        self.check_settled()

    def check_settled(self) -> None:
        """The idle window agrees with itself, and shows what the user asked for since the last
        settle (when nothing failed or was cancelled meanwhile)."""
        self.problems.extend(f"inconsistent after settling: {p}" for p in check_consistent(self.win))
        outcome = self.win.outcome
        if outcome is None:
            return
        shown = {
            "model": outcome.request.model,
            "untrained": outcome.request.untrained,
            "engine": outcome.request.engine,
            "source": outcome.source,
        }
        if not self._uncertain:
            lost = {k: (v, shown[k]) for k, v in self.intent.items() if shown[k] != v}
            if lost:
                self._problem(f"the user's choices were lost (asked, shown): {lost}")
        self.intent = {}
        self._uncertain = False

    def _cancel_buttons(self) -> list[QPushButton]:
        """The Cancel buttons shown: a run's, an export's, and a view's own (a visualization)."""
        return [
            b for b in self.win.findChildren(QPushButton) if b.text().startswith("Cancel") and b.isVisible()
        ]

    def settle_fully(self, timeout_s: float = 180.0, patience_s: float | None = None) -> bool:
        """Let the event loop run until the window is idle; after ``patience_s`` press the Cancel
        buttons shown (a run, an export, a view's)."""
        start = time.perf_counter()
        while not self.win.idle() and time.perf_counter() - start < timeout_s:
            self.wait(20)
            if patience_s is not None and time.perf_counter() - start > patience_s:
                patience_s = None
                for button in self._cancel_buttons():
                    button.click()
                    self._uncertain |= button is self.win.cancel_button
        self.wait(20)
        return self.win.idle()

    # ----------------------------------------------------------------- actions
    def key(self) -> None:
        QTest.keyClick(self.win, self.rng.choice(KEYS))

    def tab(self) -> None:
        self.win.tabs.setCurrentIndex(self.rng.randrange(self.win.tabs.count()))

    def engine(self) -> None:
        combo = self.win.engine_panel.combo
        combo.setCurrentIndex(self.rng.randrange(combo.count()))
        self.intent["engine"] = combo.currentText()

    def model(self) -> None:
        name = self.rng.choice((*MODELS, MODELS[-1], OFFLINE_MODEL))
        if name == MODELS[-1] and not self.win.untrained_action.isChecked():
            self.win.untrained_action.trigger()  # a torchvision model, untrained: no download
        elif (
            name == "efficientnet_lite0" and self.win.untrained_action.isChecked() and self.rng.random() < 0.7
        ):
            self.win.untrained_action.trigger()  # mostly its real weights (shipped with the package)
        elif name == OFFLINE_MODEL and self.win.untrained_action.isChecked():
            self.win.untrained_action.trigger()  # pretrained: the download fails, offline
        self.intent["untrained"] = self.win.untrained_action.isChecked()
        self.win.model_actions[name].trigger()
        self.intent["model"] = name

    def untrained(self) -> None:
        self.win.untrained_action.trigger()
        self.intent["untrained"] = self.win.untrained_action.isChecked()

    def image(self) -> None:
        choice = self.rng.random()
        if choice < 0.4:
            action = self.rng.choice([a for a in self.win.samples_menu.actions() if a.text()])
            action.trigger()
            self.intent["source"] = str(sample_images()[action.text()])
        elif choice < 0.9:
            path = str(self.images[self.rng.choice(sorted(self.images))])
            self.win.open_image(path)
            self.intent["source"] = path
        else:
            image = QImage(self.rng.randint(1, 300), self.rng.randint(1, 300), QImage.Format.Format_RGB888)
            image.fill(QColor(self.rng.randrange(256), self.rng.randrange(256), self.rng.randrange(256)))
            QApplication.clipboard().setImage(image)
            self.win.paste_image()
            self.intent["source"] = "pasted image"

    def _maps_point(self, detail: bool) -> tuple | None:
        fm = self.win.feature_maps
        graphics = fm.detail if detail else fm.graphics
        if not graphics.isVisible():
            return None
        viewport = graphics.viewport()
        pos = QPointF(self.rng.uniform(0, viewport.width()), self.rng.uniform(0, viewport.height()))
        return viewport, pos

    def _mouse(self, viewport, kind: QEvent.Type, pos: QPointF, button=Qt.MouseButton.NoButton) -> None:
        buttons = button if kind == QEvent.Type.MouseButtonPress else Qt.MouseButton.NoButton
        QApplication.sendEvent(
            viewport,
            QMouseEvent(
                kind, pos, QPointF(viewport.mapToGlobal(pos)), button, buttons, Qt.KeyboardModifier.NoModifier
            ),
        )

    def hover(self) -> None:
        """A few real mouse moves over the maps (or the enlarged map)."""
        point = self._maps_point(detail=self.rng.random() < 0.25)
        if point is None:
            return
        viewport, pos = point
        for _ in range(self.rng.randint(1, 8)):
            self._mouse(viewport, QEvent.Type.MouseMove, pos)
            pos = QPointF(
                min(max(pos.x() + self.rng.uniform(-30, 30), 0), viewport.width() - 1),
                min(max(pos.y() + self.rng.uniform(-30, 30), 0), viewport.height() - 1),
            )

    def click(self) -> None:
        point = self._maps_point(detail=self.rng.random() < 0.25)
        if point is None:
            return
        viewport, pos = point
        self._mouse(viewport, QEvent.Type.MouseMove, pos)
        self._mouse(viewport, QEvent.Type.MouseButtonPress, pos, Qt.MouseButton.LeftButton)
        self._mouse(viewport, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.LeftButton)

    def explainer(self) -> None:
        e = self.win.view("explain")
        if e is None:
            return
        what = self.rng.choice(
            ("play", "step", "step", "back", "filter", "sandbox", "layer", "random", "speed", "gif")
        )
        if what == "play":
            e.toggle_play()
        elif what == "step":
            e.step(1)
        elif what == "back":
            e.step(-1)
        elif what == "filter":
            e.next_filter()
        elif what == "sandbox":
            e.set_mode("sandbox")
        elif what == "layer":
            e.set_mode("layer")
        elif what == "random":
            e.randomize_sandbox()
        elif what == "speed":
            e.set_speed(self.rng.choice(("0.5×", "1×", "2×", "4×", "8×")))
        elif not e.exporting():
            e.start_gif_export(self.exports / f"explain-{self._n}.gif")

    def export(self) -> None:
        what = self.rng.random()
        if what < 0.4:
            self.win.export_view(str(self.exports / f"view-{self._n}"))
        elif what < 0.8:
            self.win.export_npy(str(self.exports / f"layer-{self._n}.npy"))
        elif not self.win.exports.busy:  # everything, once at a time: it writes a file per layer
            self.win.export_all(str(self.exports / f"all-{self._n}"))

    def cancel(self) -> None:
        buttons = self._cancel_buttons()
        if buttons:
            button = self.rng.choice(buttons)
            button.click()
            self._uncertain |= button is self.win.cancel_button

    def resize(self) -> None:
        self.win.resize(self.rng.randint(900, 1900), self.rng.randint(600, 1150))


def check_consistent(win) -> list[str]:
    """What the idle window shows agrees with itself: the run shown, the menus, the layer list,
    the maps, the details; an empty list when it does."""
    problems: list[str] = []
    if not win.idle():
        problems.append("not idle")
    outcome = win.outcome
    if outcome is None:
        return [*problems, "nothing shown"]
    for view in getattr(win, "views", []):  # a hidden view draws what it was shown when shown
        view.refresh()
    shown = outcome.request
    if win.wanted != shown or win.wanted.pasted is not shown.pasted:
        problems.append(f"wanted {win.wanted} differs from shown {shown}")
    checked = [n for n, a in win.model_actions.items() if a.isChecked()]
    if checked != ([shown.model] if shown.model in win.model_actions else []):
        problems.append(f"model menu ticks {checked}, shown {shown.model}")
    if win.untrained_action.isChecked() != shown.untrained:
        problems.append(f"Untrained tick {win.untrained_action.isChecked()}, shown {shown.untrained}")
    if win.engine_panel.combo.currentText() != shown.engine or outcome.result.engine != shown.engine:
        problems.append(
            f"engine box {win.engine_panel.combo.currentText()}, "
            f"ran {outcome.result.engine}, asked {shown.engine}"
        )
    if outcome.model.name not in win.windowTitle() or outcome.source not in win.windowTitle():
        problems.append(f"title {win.windowTitle()!r} for {outcome.model.name} on {outcome.source}")
    layers = outcome.result.layers
    nav = win.navigator
    if nav.count() != len(layers) or nav.layer_rows() != len(layers):
        problems.append(f"layer list has {nav.count()} / {nav.layer_rows()} rows, the run {len(layers)}")
        return problems
    index = nav.index()
    if not 0 <= index < len(layers):
        return [*problems, f"no layer selected ({index})"]
    layer = layers[index]
    from gui.layer_navigator import INDEX

    current = nav.tree.currentItem()
    row = current.data(0, INDEX) if current is not None else None
    if row != index or nav.slider.value() != index or nav.item(index).text(0) != layer.name:
        problems.append(
            f"layer list selects row {row} / slider {nav.slider.value()}, current {index} ({layer.name})"
        )
    fm = win.feature_maps
    if fm._layer != layer.name:
        problems.append(f"feature maps show {fm._layer}, current layer {layer.name}")
    maps = outcome.result.activations[layer.name]
    channels = maps.shape[0] if maps.ndim == 3 else maps.size if maps.ndim == 1 else 1
    if not set(fm.page_channels()) <= set(range(channels)) or not fm.page_channels():
        problems.append(f"feature maps page {fm.page_channels()[:5]}… not of {channels} channels")
    if fm.render_image().shape[0] < 2:
        problems.append("feature maps not drawn")
    if f"<b>{layer.name}</b>" not in win.filters.caption.text():
        problems.append(f"filters caption {win.filters.caption.text()[:80]!r} for {layer.name}")
    if layer.name not in win.details.text():
        problems.append(f"details do not name {layer.name}")
    if f"<b>{layer.name}</b>" not in win.rf_plot.caption.text():
        problems.append(f"RF plot caption {win.rf_plot.caption.text()[:80]!r} for {layer.name}")
    e = win.view("explain")
    if e is not None and e.mode() == "layer" and e.isVisible():
        if layer.name not in e.layer_label.text():
            problems.append(f"explainer says {e.layer_label.text()[:80]!r} for {layer.name}")
    if win.input_panel.displayed_image() is None:
        problems.append("no photo shown")
    for lane in win.workers():
        if lane.busy:
            problems.append(f"lane {lane.name} busy")
    return problems


@contextlib.contextmanager
def offline() -> Iterator[list[str]]:
    """Weight downloads fail at once, as they do offline (no waiting for a network timeout)."""
    tried: list[str] = []
    real = urllib.request.urlopen

    def urlopen(url, *args, **kwargs):
        tried.append(str(url))
        raise urllib.error.URLError("offline (monkey)")

    urllib.request.urlopen = urlopen
    try:
        yield tried
    finally:
        urllib.request.urlopen = real


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=480.0)
    parser.add_argument("--actions", type=int, default=None, help="stop after this many actions")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=float, default=30.0, help="report every this many seconds")
    parser.add_argument(
        "--trace-stalls", action="store_true", help="print where the GUI thread was during the longest stalls"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    warnings.simplefilter("error")  # as pytest runs: a warning is a problem
    warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)

    import tempfile

    from PySide6.QtCore import QSettings

    from gui.widgets import configure_pyqtgraph

    configure_pyqtgraph()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from gui.main_window import MainWindow

    with tempfile.TemporaryDirectory(prefix="convscope-monkey-") as tmp:
        os.environ["TORCH_HOME"] = str(Path(tmp) / "torch")  # nothing cached: downloads are tried
        win = MainWindow(QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
        win.resize(1600, 1000)
        win.show()
        monkey = Monkey(win, args.seed, Path(tmp))
        start_rss = rss_mb()
        t0 = time.perf_counter()
        if args.trace_stalls:
            monkey.trace_stalls()
        with offline(), monkey.watching():
            win.start(model="classic", engine="im2col")
            monkey.settle_fully()
            monkey.run(args.seconds, args.actions, args.every, report=print)
            idle = monkey.settle_fully()
            monkey.check_settled()
            problems = monkey.problems + ([] if idle else ["never idle"])
            monkey.memory.append((time.perf_counter() - t0, rss_mb()))
            monkey.stop_tracing()
            win.close()
            app.processEvents()
    total = sum(monkey.done.values())
    print(
        f"\n{datetime.date.today()} · {platform.node()} · {platform.processor() or platform.machine()} · "
        f"{os.cpu_count()} cores · seed {args.seed}"
    )
    print(
        f"actions: {total} in {time.perf_counter() - t0:.0f} s: "
        + ", ".join(f"{k} {v}" for k, v in monkey.done.most_common())
    )
    print(
        f"longest GUI stall (5 ms heartbeat, event loop running): {monkey.worst_stall[0] * 1e3:.0f} ms "
        f"(after {monkey.worst_stall[1]})"
    )
    print(
        f"longest single action on the GUI thread: {monkey.worst_action[0] * 1e3:.0f} ms "
        f"({monkey.worst_action[1]}); per kind: "
        + ", ".join(f"{k} {v * 1e3:.0f}" for k, v in sorted(monkey.slowest.items(), key=lambda kv: -kv[1]))
    )
    samples = monkey.memory[:: max(1, len(monkey.memory) // 8)]
    print(
        f"memory (RSS): {start_rss:.0f} MiB at start; "
        + ", ".join(f"{m:.0f} MiB at {t:.0f} s" for t, m in samples)
        + f"; {monkey.memory[-1][1]:.0f} MiB at the end"
    )
    for gap, after, stack in monkey.stalls:
        print(
            f"\nstall of {gap * 1e3:.0f} ms after {after}; the GUI thread was in:\n"
            f"{stack or '  (no Python frame caught)'}"
        )
    if problems:
        print(f"\n{len(problems)} problems:")
        for p in problems[:30]:
            print(" -", p)
        return 1
    print("no problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
