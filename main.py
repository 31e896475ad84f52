"""ConvScope: see how a convolutional network works on your own photo.

    python main.py [IMAGE] [--model NAME|PATH] [--engine NAME] [--layer NAME] [--export DIR] ...

Without ``--export`` the desktop app opens; with it, nothing graphical is imported and the
results are written to DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

VIEWS = ("maps", "filters", "rf", "explain", "engines")


def _unit(text: str) -> tuple[int, int]:
    try:
        y, x = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected Y,X (two integers), got {text!r}") from None
    return y, x


def _size(text: str) -> tuple[int, int]:
    try:
        values = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 8:
        raise argparse.ArgumentTypeError(f"expected H or H,W (at least 8), got {text!r}")
    return (values[0], values[-1])


def build_parser() -> argparse.ArgumentParser:
    from engine import available_engines

    p = argparse.ArgumentParser(
        prog="convscope", description="See how a CNN works on your own photo: filters, feature "
        "maps and receptive fields, on the convolution engine you choose.")
    p.add_argument("image", nargs="?", help="image file (default: the bundled sample photo)")
    p.add_argument("--model", default=None,
                   help="catalog name or model file (default: efficientnet_lite0)")
    p.add_argument("--engine", default="auto", help=f"one of {', '.join(available_engines())}")
    p.add_argument("--untrained", action="store_true", help="random weights (no download)")
    p.add_argument("--trust-model", action="store_true",
                   help="allow loading a pickled model file (runs code from it)")
    p.add_argument("--arch", help="catalog architecture for a state-dict file")
    p.add_argument("--input-size", type=_size, metavar="H[,W]",
                   help="input size for a model file that does not tell it (default 224)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None,
                   help="input channels for a model file (default: from its first conv)")
    p.add_argument("--layer", help="layer name (module path), e.g. features.0")
    p.add_argument("--export", metavar="DIR", type=Path, help="write results to DIR, no window")
    p.add_argument("--unit", type=_unit, metavar="Y,X",
                   help="with --layer and --export: write LAYER.rf.png for this unit")
    p.add_argument("--explain", action="store_true",
                   help="with --layer and --export: write LAYER.explain.gif")
    p.add_argument("--screenshot", metavar="FILE", type=Path,
                   help="open the window in this state, save a PNG of it and exit "
                        "(with --unit: that unit's receptive field is drawn)")
    p.add_argument("--view", choices=VIEWS, default=None,
                   help="the tab the window shows (default: the last one used)")
    return p


def export(args: argparse.Namespace) -> int:
    """The headless path: load, run, write. Never imports Qt."""
    from engine import available_engines
    from models.errors import ConvScopeError
    from models.export import export_run
    from models.images import DEFAULT_SAMPLE, prepare_image, sample_images
    from models.runner import find_layer, run_model
    from models.zoo import DEFAULT_MODEL, load_model

    if args.engine not in available_engines():
        raise ConvScopeError(f"unknown engine {args.engine!r}; available: "
                             f"{', '.join(available_engines())}")
    if (args.unit or args.explain) and not args.layer:
        raise ConvScopeError("--unit and --explain need --layer NAME")

    def progress(done: int, total: int | None) -> None:
        if total:
            print(f"\rdownloading weights: {done * 100 // total}%", end="", file=sys.stderr)

    model = load_model(args.model or DEFAULT_MODEL, untrained=args.untrained,
                       trust=args.trust_model, arch=args.arch, input_size=args.input_size,
                       channels=args.channels, progress=progress)
    image = prepare_image(args.image or sample_images()[DEFAULT_SAMPLE], model.preprocess,
                          source=args.image or f"sample: {DEFAULT_SAMPLE}")
    result = run_model(model, image, args.engine)
    layers = None
    if args.layer:
        layers = [find_layer(result, args.layer).name]
    written = export_run(result, model, image, args.export, layers, unit=args.unit,
                         explain=args.explain)
    top = ""
    if result.predictions:
        top = f"; top-1: {result.predictions[0][0]} ({result.predictions[0][1]:.0%})"
    print(f"{result.model_name} on {args.engine}: {len(result.layers)} layers, "
          f"{result.conv_calls} convolutions{top}; wrote {len(written)} files to {args.export}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.export is None:
        if args.explain or (args.unit and not args.screenshot):
            print("error: --unit and --explain write files: use them with --export DIR "
                  "(or --unit with --screenshot FILE)", file=sys.stderr)
            return 2
        if args.unit and not args.layer:
            print("error: --unit needs --layer NAME", file=sys.stderr)
            return 2
        from gui.app import run_app

        return run_app(args)
    from models.errors import Cancelled, ConvScopeError

    try:
        return export(args)
    except (ConvScopeError, Cancelled, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
