"""What the command line and the Top examples tab say about a scan, in the same words: progress,
a cached folder, the files skipped, what was written. Plain strings, no Qt."""

from __future__ import annotations

from pathlib import Path

from models.topk.scanner import ScanStats, TopKResult

SKIPPED_NAMED = 5  # names in a one-line summary; the full list is in the JSON / the tooltip


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 file``, ``3 files``."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def cached(done: int, total: int, rate: float) -> bool:
    """A progress report of a scan that had nothing to run (the store held every image)."""
    return done == total and rate == 0.0


def progress(done: int, total: int, rate: float, left: float | None) -> str:
    """``123 / 500 images · 12.3 images/s · 0:25 left``, or ``all 500 images cached``."""
    if cached(done, total, rate):
        return f"all {plural(total, 'image')} cached: nothing to run"
    return (
        f"{done} / {plural(total, 'image')} · {rate:.1f} images/s · {clock(left if done < total else 0)} left"
    )


def stopped(done: int, total: int, model: str | None = None, reason: str | None = None) -> str:
    """A scan cancelled at ``done`` of ``total``: by the user (``reason`` None), or because of
    ``reason`` (the window shows another model): what was scanned is kept either way."""
    if reason is None or model is None:
        return f"cancelled at {done} / {total} images: what was scanned is kept, Scan goes on from there"
    return (
        f"{model} scan stopped at {done} / {total} images: {reason}; what {model} scanned is "
        f"kept, scanning with it again goes on from there"
    )


def cleared(files: int, stopped: bool = False) -> str:
    """The cache was cleared (after stopping the scan that was running, when ``stopped``)."""
    first = "scan stopped, top-k cache cleared" if stopped else "top-k cache cleared"
    return f"{first} ({plural(files, 'file')}): nothing is kept, the next scan starts afresh"


def scan_summary(result: TopKResult, engine: str) -> str:
    """What a finished scan did: ``classic: 14 images · 14 run now on auto · 1 file skipped``
    (images are the files read; a skipped file is not one of them)."""
    s: ScanStats = result.stats
    readable = s.images - s.unreadable
    if s.scanned == 0:
        done = "all from the cache"
    else:
        done = f"{s.scanned} run now on {engine}, {readable - s.scanned} from the cache"
    skipped = f" · {plural(s.unreadable, 'file')} skipped" if s.unreadable else ""
    return f"{result.model_name}: {plural(readable, 'image')} · {done}{skipped}"


def skipped_line(
    skipped: list[tuple[Path, str]], root: Path | None = None, named: int = SKIPPED_NAMED
) -> str:
    """``3 files skipped (not readable as images): a.jpg, b.png, c.gif``, the first ``named``
    names (relative to ``root``) and how many more; "" when nothing was skipped."""
    if not skipped:
        return ""
    names = [_relative(p, root) for p, _ in skipped[:named]]
    more = len(skipped) - len(names)
    return (
        f"{plural(len(skipped), 'file')} skipped (not readable as images): "
        f"{', '.join(names)}{f', … and {more} more' if more > 0 else ''}"
    )


def skipped_details(skipped: list[tuple[Path, str]], root: Path | None = None, limit: int = 30) -> str:
    """One line per skipped file, ``name: why`` (the first ``limit``, then how many more)."""
    lines = [f"{_relative(p, root)}: {why}" for p, why in skipped[:limit]]
    more = len(skipped) - limit
    return "\n".join(lines + ([f"… and {more} more"] if more > 0 else []))


def written(result: TopKResult, layers: list[str], montage_channels: int, files: int, out: Path | str) -> str:
    """What an export wrote, as it was asked: one layer or every one, and the montage's rows."""
    k = result.k
    if len(layers) == 1:
        summary = result.layer(layers[0])
        rows = min(summary.channels, montage_channels)
        shown = (
            f"all {summary.channels} channels"
            if rows == summary.channels
            else f"channels 0-{rows - 1} of {summary.channels} in the montage, all in the JSON"
        )
        what = f"the top {k} of layer {summary.name} ({shown})"
    else:
        every = len(layers) == len(result.layers)
        layers_named = (
            f"each of the {len(layers)} conv layers" if every else plural(len(layers), "conv layer")
        )
        what = (
            f"the top {k} of {layers_named} (montages: up to {montage_channels} channels each, the JSON: all)"
        )
    return f"wrote {what}: {plural(files, 'file')} in {out}"


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return Path(path).name
