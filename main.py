"""ConvScope: see how a convolutional network works on your own photo.

    python main.py [IMAGE] [--model NAME|PATH] [--engine NAME] [--layer NAME] [--export DIR] ...

Without ``--export`` the desktop app opens; with it, nothing graphical is imported and the
results are written to DIR.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

VIEWS = ("maps", "filters", "rf", "explain", "engines", "topk", "featvis", "cam")
CAM_METHODS = ("gradcam", "gradcam++", "scorecam")
_progress_line = False  # a download's progress line is open on stderr (no newline yet)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one ``error:`` line (and exit 2), not the usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _unit(text: str) -> tuple[int, int]:
    try:
        y, x = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected Y,X (two integers), got {text!r}") from None
    if y < 0 or x < 0:
        raise argparse.ArgumentTypeError(f"a unit's Y,X count from 0 at the top left, got {text!r}")
    return y, x


def _joined_values(argv: list[str]) -> list[str]:
    """``--unit -1,-1`` as ``--unit=-1,-1``: argparse takes a value that starts with a dash for
    an option, and would say "expected one argument" instead of what is wrong with it."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in ("--unit", "--mean", "--std") and arg[:1] == "-" and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _size(text: str) -> tuple[int, int]:
    from models.errors import ImageError
    from models.images import check_input_size

    try:
        values = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 8:
        raise argparse.ArgumentTypeError(f"expected H or H,W (at least 8), got {text!r}")
    try:
        check_input_size((values[0], values[-1]))
    except ImageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return (values[0], values[-1])


def _window_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, e.g. 1024x700, got {text!r}") from None
    if not (640 <= w <= 7680 and 480 <= h <= 4320):
        raise argparse.ArgumentTypeError(f"expected a size from 640x480 to 7680x4320, got {text!r}")
    return w, h


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a whole number 0..1000000, got {text!r}")
    return value


def _at_most(most: int, what: str, note: str = "") -> Callable[[str], int]:
    """A positive integer up to ``most``, refused while parsing (with the flag's name, not after
    loading a model): ``at most {most} {what}, got ...{note}``."""

    def parse(text: str) -> int:
        value = _positive(text)
        if value > most:
            raise argparse.ArgumentTypeError(f"at most {most} {what}, got {text!r}{note}")
        return value

    return parse


def _topk(text: str) -> int:
    from models.topk.scanner import MAX_K  # imported when the flag is given, not for --help

    return _at_most(MAX_K, "examples per channel")(text)


MAX_MONTAGE_CHANNELS = 256  # rows of a montage: 256 x 50 crops is already a 3,000 x 24,000 px PNG


def _engine(text: str) -> str:
    from engine import available_engines

    if text not in available_engines():  # refused at once, before a model is loaded
        raise argparse.ArgumentTypeError(
            f"unknown engine {text!r}; available: {', '.join(available_engines())}"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    from engine import available_engines

    p = _Parser(
        prog="convscope",
        description="See how a CNN works on your own photo: filters, feature "
        "maps and receptive fields, on the convolution engine you choose.",
    )
    p.add_argument("image", nargs="?", help="image file (default: the bundled sample photo)")
    p.add_argument("--model", default=None, help="catalog name or model file (default: efficientnet_lite0)")
    p.add_argument("--engine", default="auto", type=_engine, help=f"one of {', '.join(available_engines())}")
    p.add_argument("--untrained", action="store_true", help="random weights (no download)")
    p.add_argument(
        "--trust-model", action="store_true", help="allow loading a pickled model file (runs code from it)"
    )
    p.add_argument("--arch", help="catalog architecture for a state-dict file")
    p.add_argument(
        "--input-size",
        type=_size,
        metavar="H[,W]",
        help="model input size (default: the catalog model's own, what a .pt2 states, "
        "or 224 for other model files); at most 4096 a side and 1024x1024 pixels",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="input channels for a model file (default: from its first conv)",
    )
    p.add_argument(
        "--mean",
        type=_floats,
        metavar="M[,M,M]",
        help="normalisation mean per input channel (default: the model's, or ImageNet's for a model file)",
    )
    p.add_argument(
        "--std", type=_floats, metavar="S[,S,S]", help="normalisation standard deviation per input channel"
    )
    p.add_argument(
        "--labels",
        metavar="FILE",
        help="class names: a text file (one per line) or JSON (a list, or index -> "
        "name); without it a 1000-output model shows ImageNet's, marked a guess",
    )
    p.add_argument("--layer", help="layer name (module path), e.g. features.0")
    p.add_argument("--export", metavar="DIR", type=Path, help="write results to DIR, no window")
    p.add_argument(
        "--unit",
        type=_unit,
        metavar="Y,X",
        help="with --layer and --export: write LAYER.rf.png for this unit",
    )
    p.add_argument(
        "--explain", action="store_true", help="with --layer and --export: write LAYER.explain.gif"
    )
    p.add_argument(
        "--dataset",
        metavar="DIR",
        type=Path,
        help="with --export: scan every image under DIR (subfolders too) and write each "
        "conv layer's top examples (LAYER.topk.png, LAYER.topk.json); results are "
        "cached, so a second run over the same folder is instant. With --view topk: "
        "the window's Top examples tab scans DIR",
    )
    p.add_argument(
        "--topk",
        type=_topk,
        default=9,
        metavar="K",
        help="with --dataset: examples kept per channel (default 9)",
    )
    p.add_argument(
        "--topk-channels",
        type=_at_most(MAX_MONTAGE_CHANNELS, "channels per montage", " (the JSON has every channel)"),
        default=64,
        metavar="N",
        help="with --dataset: channels per montage, the first N (default 64; the JSON has every channel)",
    )
    # feature visualization and class activation maps (models/featvis.py, models/cam.py)
    p.add_argument(
        "--visualize",
        type=int,
        metavar="CHANNEL",
        help="with --layer and --export: write LAYER.chCHANNEL.vis.png, the image that "
        "excites the channel most (with --unit: that unit)",
    )
    p.add_argument("--steps", type=_count, default=256, help="--visualize: optimisation steps (256)")
    p.add_argument("--seed", type=_count, default=0, help="--visualize: random seed (0)")
    p.add_argument(
        "--cam",
        nargs="?",
        const="",
        metavar="CLASS",
        help="with --export: write LAYER.cam.png and LAYER.cam.original.png, the class "
        "activation map of CLASS (index or name; default: the top-1 class) at "
        "--layer (default: the last conv layer)",
    )
    p.add_argument(
        "--cam-method",
        choices=CAM_METHODS,
        default="gradcam",
        help="--cam: gradcam (default), gradcam++ or scorecam (no gradient: also "
        "for TorchScript; one forward pass per channel)",
    )
    p.add_argument(
        "--screenshot",
        metavar="FILE",
        type=Path,
        help="open the window in this state, save a PNG of it and exit "
        "(with --unit: that unit's receptive field is drawn)",
    )
    p.add_argument(
        "--window-size",
        type=_window_size,
        metavar="WxH",
        default=None,
        help="the window's size, e.g. 1024x700 (for --screenshot, and the first start; "
        "default: 1600x1000, or what the window had when it was last closed)",
    )
    p.add_argument(
        "--view", choices=VIEWS, default=None, help="the tab the window shows (default: the last one used)"
    )
    return p


def export(args: argparse.Namespace) -> int:
    """The headless path: load, run, write. Never imports Qt."""
    from models.errors import ConvScopeError
    from models.explain import not_a_conv as require_conv_message
    from models.export import export_run
    from models.images import DEFAULT_SAMPLE, prepare_image, sample_images
    from models.runner import find_layer, run_model
    from models.sources import DEFAULT_MODEL, load_model

    if args.dataset and (args.image or args.unit or args.explain):
        raise ConvScopeError("--dataset scans a folder: give it without IMAGE, --unit or --explain")
    if (args.unit or args.explain) and not args.layer:
        raise ConvScopeError("--unit and --explain need --layer NAME")
    if args.dataset and (args.visualize is not None or args.cam is not None):
        raise ConvScopeError("--dataset cannot be combined with --visualize or --cam")
    check_view_args(args)
    check_paths(args)  # a missing photo or folder is said before a model is loaded

    def progress(done: int, total: int | None) -> None:
        global _progress_line
        if total:
            _progress_line = done < total  # an error after a partial line starts a new one
            print(
                f"\rdownloading weights: {done * 100 // total}%",
                end="" if _progress_line else "\n",
                file=sys.stderr,
            )

    model = load_model(
        args.model or DEFAULT_MODEL,
        untrained=args.untrained,
        trust=args.trust_model,
        arch=args.arch,
        input_size=args.input_size,
        channels=args.channels,
        mean=args.mean,
        std=args.std,
        labels=args.labels,
        progress=progress,
    )
    if args.dataset:
        return export_dataset(args, model)
    image = prepare_image(
        args.image or sample_images()[DEFAULT_SAMPLE],
        model.preprocess,
        source=args.image or f"sample: {DEFAULT_SAMPLE}",
    )
    if args.visualize is not None or args.cam is not None:
        return export_views(args, model, image)
    result = run_model(model, image, args.engine)
    layers = None
    if args.layer:
        info = find_layer(result, args.layer)
        if args.explain and not info.is_conv:  # models/ says what is wrong; the flag is ours to name
            raise ConvScopeError(f"--explain needs a convolution layer: {require_conv_message(info)}")
        layers = [info.name]
    written = export_run(result, model, image, args.export, layers, unit=args.unit, explain=args.explain)
    top = ""
    if result.predictions:
        top = f"; top-1: {result.predictions[0][0]} ({result.predictions[0][1]:.0%})"
        if result.prediction_note:
            top += f" [{result.prediction_note}]"
    print(
        f"{result.model_name} on {args.engine}: {len(result.layers)} layers, "
        f"{result.conv_calls} convolutions{top}; wrote {len(written)} files to {args.export}"
    )
    return 0


def export_dataset(args: argparse.Namespace, model: object) -> int:
    """``--dataset DIR --export OUT``: scan the folder (or reuse the cached scan), write the
    top-k montages and JSON."""
    from types import SimpleNamespace

    from models.errors import Cancelled, LayerError
    from models.export import check_destination
    from models.layers import find_layer
    from models.topk import conv_layers, messages, scan
    from models.topk.export import export_topk

    check_destination(Path(args.export))  # before a scan that can take an hour
    layers = None
    if args.layer:  # refuse a bad layer before scanning a whole folder
        import torch

        from models.runner import plan

        pre = model.preprocess
        rows = list(plan(model, torch.zeros(1, pre.channels, *pre.size)).rows.values())
        layer = find_layer(SimpleNamespace(model_name=model.name, layers=rows), args.layer)
        convs = [la.name for la in conv_layers(model)]
        if layer.name not in convs:
            raise LayerError(
                f"layer {layer.name!r} is not a convolution: top examples are kept "
                f"for conv layers ({', '.join(convs[:6])}{', ...' if len(convs) > 6 else ''})"
            )
        layers = [layer.name]

    def progress(done: int, total: int, rate: float, left: float | None) -> None:
        global _progress_line
        _progress_line = done < total
        if messages.cached(done, total, rate):  # nothing to run: no rate to speak of
            print(f"scanning {args.dataset}: {messages.progress(done, total, rate, left)}", file=sys.stderr)
            return
        eta = f", {int(left) // 60}:{int(left) % 60:02d} left" if left is not None and done < total else ""
        print(
            f"\rscanning {args.dataset}: {done}/{total} images, {rate:.1f} images/s{eta}   ",
            end="" if _progress_line else "\n",
            file=sys.stderr,
        )

    import signal
    import threading

    stop = threading.Event()

    def interrupt(signum: int, frame: object) -> None:  # Ctrl+C: stop after storing progress
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one stops at once

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        result = scan(
            model,
            args.dataset,
            args.engine,
            k=args.topk,
            progress=progress,
            cancel=stop.is_set,
            exclude=args.export,
        )
    except Cancelled:
        if _progress_line:
            print(file=sys.stderr)
        print(
            "error: interrupted; what was scanned is stored: run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    written = export_topk(model, result, args.export, layers, max_channels=args.topk_channels)
    s = result.stats
    readable = s.images - s.unreadable
    done = (
        f"all {readable} from the cache"
        if s.scanned == 0 and readable
        else f"{s.scanned} run now, {readable - s.scanned} from the cache"
    )
    skipped_files = f", {messages.plural(s.unreadable, 'file')} skipped" if s.unreadable else ""
    print(
        f"{result.model_name} on {args.engine}: {messages.plural(readable, 'image')} ({done}){skipped_files}"
    )
    skipped = result.skipped() if s.unreadable else []
    if skipped:
        print(
            f"{messages.skipped_line(skipped, result.folder)} (every .topk.json lists them, with the reason)"
        )
    chosen = layers or [la.name for la in result.layers]
    print(messages.written(result, chosen, args.topk_channels, len(written), args.export))
    return 0


# --- feature visualization and class activation maps -------------------------------------------
def check_paths(args: argparse.Namespace) -> None:
    """The photo and the folder named on the command line exist (cheap checks first)."""
    from models.errors import ConvScopeError
    from models.topk.folder import check_folder

    if args.image and not Path(args.image).is_file():
        why = "a folder, not an image" if Path(args.image).is_dir() else "no such file"
        raise ConvScopeError(f"cannot open {args.image}: {why}")
    if args.dataset:
        check_folder(args.dataset)


def check_view_args(args: argparse.Namespace) -> None:
    """One-line errors for --visualize / --cam before anything is loaded."""
    from models.errors import ConvScopeError

    if args.visualize is not None and not args.layer:
        raise ConvScopeError("--visualize needs --layer NAME")
    if (args.visualize is not None or args.cam is not None) and args.explain:
        raise ConvScopeError("--explain cannot be combined with --visualize or --cam")
    if args.cam is not None and args.unit and args.visualize is None:
        raise ConvScopeError("--unit goes with --visualize (a unit's image), not with --cam")
    from models.featvis import MAX_STEPS

    if not 1 <= args.steps <= MAX_STEPS:
        raise ConvScopeError(f"--steps must be 1 to {MAX_STEPS} (256 is the usual)")


def export_views(args: argparse.Namespace, model, image) -> int:
    """--visualize: LAYER.chC.vis.png; --cam: LAYER.cam.png and LAYER.cam.original.png. The
    gradients come from torch's autograd (the engines compute forward passes only)."""
    from models import cam, featvis, render
    from models.export import export_files, safe_name

    said: list[str] = []

    def steps_done(step: int, total: int, _preview) -> None:
        global _progress_line
        _progress_line = step < total
        if step % 16 == 0 or step == total:
            print(
                f"\rfeature visualization: step {step}/{total}",
                end="" if _progress_line else "\n",
                file=sys.stderr,
            )

    def channels_done(done: int, total: int) -> None:  # Score-CAM: a forward pass per channel
        global _progress_line
        _progress_line = done < total
        print(f"\rScore-CAM: channel {done}/{total}", end="" if _progress_line else "\n", file=sys.stderr)

    def write(folder: Path) -> list[Path]:
        written = []
        if args.visualize is not None:
            vis = featvis.visualize(
                model,
                args.layer,
                args.visualize,
                unit=args.unit,
                steps=args.steps,
                seed=args.seed,
                progress=steps_done,
            )
            unit = f".unit{args.unit[0]}_{args.unit[1]}" if args.unit else ""
            name = f"{safe_name(vis.layer)}.ch{args.visualize}{unit}.vis.png"
            written.append(render.save_png(vis.image, folder / name))
            where = f" unit {args.unit}" if args.unit else ""
            at = f" at {vis.objective_layer}" if vis.objective_layer != vis.layer else ""
            said.append(
                f"{vis.layer} channel {args.visualize}{where}: activation "
                f"{float(vis.activations[0]):.4g}{at} after {vis.steps} steps (seed {vis.seed})"
            )
        if args.cam is not None:
            result = cam.class_map(
                model, image, args.layer, args.cam or None, args.cam_method, progress=channels_done
            )
            base = safe_name(result.layer)
            written.append(
                render.save_png(cam.overlay(image.model_view, result.heat), folder / f"{base}.cam.png")
            )
            written.append(
                render.save_png(cam.on_original(result, image), folder / f"{base}.cam.original.png")
            )
            label = result.class_name or f"class {result.class_index}"
            said.append(f"{result.method} of {label} ({result.probability:.0%}) at {result.layer}")
            if result.empty:
                said.append(result.empty_note())
        return written

    written = export_files(args.export, write)
    from models.topk.messages import plural

    print(f"{'; '.join(said)}; wrote {plural(len(written), 'file')} to {args.export}")
    return 0


def _has_display() -> bool:
    """Whether Qt can open a window here (else it aborts, naming a library that is not the
    cause): on Linux, an X or Wayland display, or a platform chosen by the user."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def hint(exc: BaseException) -> str:
    """The command line's own remedy for the errors that stand for a question."""
    from models.errors import ArchitectureNeededError, UntrustedModelError, WeightsUnavailableError

    if isinstance(exc, UntrustedModelError):
        return "; pass --trust-model if you trust it"
    if isinstance(exc, ArchitectureNeededError):
        if exc.guess:  # the message says whose keys they are: the remedy only, once
            said = exc.guess in str(exc)
            return (
                f"; pass --arch {exc.guess}"
                if said
                else (f"; they look like {exc.guess}'s: pass --arch {exc.guess}")
            )
        return "; pass --arch NAME, a catalog architecture (see --help)"
    if isinstance(exc, WeightsUnavailableError):
        fetch = f"; fetch {exc.url} elsewhere and put it there" if exc.url else ""
        return f"{fetch}; or use --untrained for random weights"
    return ""


def main(argv: list[str] | None = None) -> int:
    from models.memory import keep_freed_memory

    keep_freed_memory()  # feature maps reuse freed memory: no page faults on every pass
    argv = _joined_values(sys.argv[1:] if argv is None else list(argv))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help (0), or a bad argument, already said in one line (2)
        return int(done.code or 0)
    if args.export is None:
        if args.dataset and args.view != "topk":
            print(
                "error: --dataset writes files: use it with --export DIR (or with --view topk, "
                "the window's Top examples tab)",
                file=sys.stderr,
            )
            return 2
        from models.errors import ConvScopeError

        try:
            check_paths(args)
        except ConvScopeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.explain or (args.unit and not args.screenshot):
            print(
                "error: --unit and --explain write files: use them with --export DIR "
                "(or --unit with --screenshot FILE)",
                file=sys.stderr,
            )
            return 2
        if args.visualize is not None or args.cam is not None:
            print("error: --visualize and --cam write files: use them with --export DIR", file=sys.stderr)
            return 2
        if args.unit and not args.layer:
            print("error: --unit needs --layer NAME", file=sys.stderr)
            return 2
        if not _has_display():
            if not args.screenshot:
                print(
                    "error: no display (DISPLAY and WAYLAND_DISPLAY are not set): the window needs "
                    "one; --export and --screenshot work without (or set QT_QPA_PLATFORM=offscreen)",
                    file=sys.stderr,
                )
                return 2
            os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
        from gui.app import run_app

        return run_app(args)
    import signal

    from models.errors import Cancelled, ConvScopeError, one_line

    # a terminated export ends like an interrupted one: the staging folder is removed
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    try:
        return export(args)
    except KeyboardInterrupt:
        if _progress_line:
            print(file=sys.stderr)
        print(
            "error: interrupted"
            + (
                "; every whole batch scanned is cached: run the same command again to resume"
                if args.dataset
                else ""
            ),
            file=sys.stderr,
        )
        return 130
    except (ConvScopeError, Cancelled, OSError, MemoryError) as exc:
        message = one_line(exc) if not isinstance(exc, MemoryError) else "out of memory"
        if _progress_line:
            print(file=sys.stderr)  # end the download's progress line first
        print(f"error: {message}{hint(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, and the traceback on request
        if os.environ.get("CONVSCOPE_DEBUG"):
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {one_line(exc)} (a bug in ConvScope; "
            f"CONVSCOPE_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
