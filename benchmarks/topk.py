"""Top-k scan speed, its overhead over the bare forward passes, and its memory over 10,000 images.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/topk.py [--models efficientnet_lite0 resnet18]
        [--engines auto reference] [--images 500] [--memory-images 10000] [--skip-speed]

**Speed.** A generated folder of ``--images`` JPEGs (320x240, smooth gradients and shapes,
seeded, in five subfolders). Per model (untrained) and engine: one whole ``scan()`` of the
folder into a fresh store (listing, reading, preparing, the forward passes, ranking, storing
every batch, writing the entries), and, paired with each of its batches, the bare forward pass
of the same batch (``run_batch`` of the same prepared tensors with the same layers kept: what a
scan cannot avoid), run from the scan's progress callback between two pauses; the callback's
time is taken out of the scan's. Pairing each batch seconds apart keeps both sides under the
same load on a shared machine. Warm-up first (model plan, ``auto``'s choice per batch shape,
the weights' hash). Overhead = scan time / bare time - 1 over the whole folder; the median of
the per-batch ratios is given too, and the same ratio of process CPU time (every thread: less
sensitive to other processes on a shared machine than the wall clock).

**Cached rerun.** Then what ``main.py --dataset DIR --export OUT`` costs once the folder is
scanned: the scan that finds nothing to run (listing, comparing, the model's plan), and writing
every conv layer's montage and JSON (``export_topk``), wall and CPU time.

**Memory** (first, while the process is fresh: memory freed by the speed runs would hide
growth). ``--memory-images`` small PNGs in folders of 1,000 through ``classic`` at 32x32 (so
10,000 images take seconds, not an hour): resident memory sampled after every batch; flat means
the last sample is no higher than the one after the first tenth, give or take the allocator's
noise. Then the unchanged folder is opened again (nothing to run).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from models.images import load_image, prepare_image
from models.runner import run_batch
from models.sources import load_catalog, load_model
from models.topk import Store, conv_layers, scan
from models.topk.export import export_topk
from models.topk.folder import list_images
from models.topk.scanner import default_batch

TARGET_OVERHEAD = 0.15  # issue 16


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def photo(rng: np.random.Generator, size: tuple[int, int] = (320, 240)) -> Image.Image:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [
            (np.sin(xx / rng.uniform(10, 60) + rng.uniform(0, 6)) + 1) * 60 + (yy / h) * rng.uniform(0, 120)
            for _ in range(3)
        ],
        axis=2,
    )
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        box = (x0, y0, x0 + int(rng.integers(10, 120)), y0 + int(rng.integers(10, 120)))
        fill = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    return image


def make_folder(root: Path, images: int) -> Path:
    rng = np.random.default_rng(16)
    for i in range(images):
        sub = root / f"part{i % 5}"  # subfolders: the scan walks them
        sub.mkdir(parents=True, exist_ok=True)
        photo(rng).save(sub / f"img{i:05d}.jpg", quality=90)
    return root


def prepared_batches(model, folder: Path, batch: int) -> list[torch.Tensor]:
    """The scan's batches, in its order (sorted relative paths), prepared before any clock."""
    paths = [folder / f.path for f in list_images(folder)]
    tensors = [prepare_image(load_image(p), model.preprocess).tensor for p in paths]
    return [torch.cat(tensors[i : i + batch]) for i in range(0, len(tensors), batch)]


def speed(model_name: str, engine: str, folder: Path, work: Path, pause: float) -> dict:
    """One whole scan of ``folder``; after each of its batches (from its progress callback,
    whose time is taken out of the scan's) a pause, the bare forward pass of the same batch,
    a pause: each batch's two sides run seconds apart, under the same load."""
    model = load_catalog(model_name, untrained=True)
    layers = conv_layers(model)
    names = [la.name for la in layers]
    batch = default_batch(layers)
    batches = prepared_batches(model, folder, batch)
    warm = work / f"warm-{model_name}-{engine}"  # a full batch and the last, short one
    warm.mkdir()
    count = sum(len(b) for b in batches)
    for f in list_images(folder)[: batch + count % batch]:
        shutil.copy(folder / f.path, warm / Path(f.path).name)
    scan(model, warm, engine, store=Store(work / "warm.db"))
    for x in prepared_batches(model, warm, batch):
        run_batch(model, x, engine, layers=names)
    bare: list[float] = []
    bare_cpu: list[float] = []  # process CPU time (every thread) of each bare pass
    own: list[float] = []  # the scan's own time per batch (between two callbacks)
    aside = aside_cpu = 0.0
    mark = time.perf_counter()

    def progress(done: int, total: int, rate: float, eta: float | None) -> None:
        nonlocal aside, aside_cpu, mark
        entered, entered_cpu = time.perf_counter(), time.process_time()
        own.append(entered - mark)
        time.sleep(pause)
        start, start_cpu = time.perf_counter(), time.process_time()
        _, outputs = run_batch(model, batches[len(bare)], engine, layers=names)
        bare.append(time.perf_counter() - start)
        bare_cpu.append(time.process_time() - start_cpu)
        del outputs
        time.sleep(pause)
        mark = time.perf_counter()
        aside += mark - entered
        aside_cpu += time.process_time() - entered_cpu

    start, start_cpu = time.perf_counter(), time.process_time()
    result = scan(model, folder, engine, store=Store(work / f"{model_name}-{engine}.db"), progress=progress)
    scan_s = time.perf_counter() - start - aside
    scan_cpu = time.process_time() - start_cpu - aside_cpu
    assert result.stats.scanned == count and len(bare) == len(batches)
    ratios = [a / b - 1 for a, b in zip(own, bare, strict=True)]
    stages = {k: v / scan_s for k, v in result.stats.timings.items()}
    print(
        f"  {model_name} {engine}: {count} images in {scan_s:.1f} s (bare {sum(bare):.1f} s); "
        f"per-batch overhead {min(ratios):+.0%} .. {max(ratios):+.0%}; CPU {scan_cpu:.1f} s "
        f"(bare {sum(bare_cpu):.1f} s: {scan_cpu / sum(bare_cpu) - 1:+.1%})",
        flush=True,
    )
    export = cached_export(model, folder, work, Store(work / f"{model_name}-{engine}.db"), engine)
    return {
        "model": model_name,
        "engine": engine,
        "batch": batch,
        "images": count,
        "scan_ips": count / scan_s,
        "bare_ips": count / sum(bare),
        "overhead": scan_s / sum(bare) - 1,
        "median": statistics.median(ratios),
        "scan_cpu": scan_cpu,
        "bare_cpu": sum(bare_cpu),
        "cpu_overhead": scan_cpu / sum(bare_cpu) - 1,
        "stages": stages,
        **export,
    }


def cached_export(model, folder: Path, work: Path, store: Store, engine: str) -> dict:
    """What ``main.py --dataset DIR --export OUT`` costs once the folder is scanned: the scan
    finding nothing to run, and writing every conv layer's montage and JSON (wall and CPU)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = scan(model, folder, engine, store=store)
    assert result.stats.scanned == 0
    middle, middle_cpu = time.perf_counter(), time.process_time()
    out = work / f"export-{model.name}-{engine}"
    written = export_topk(model, result, out)
    end, end_cpu = time.perf_counter(), time.process_time()
    shutil.rmtree(out, ignore_errors=True)
    print(
        f"  cached rerun: scan {middle - start:.2f} s ({middle_cpu - start_cpu:.2f} s CPU), export "
        f"of {len(written)} files {end - middle:.2f} s ({end_cpu - middle_cpu:.2f} s CPU)",
        flush=True,
    )
    return {
        "rerun_scan": middle - start,
        "rerun_scan_cpu": middle_cpu - start_cpu,
        "export": end - middle,
        "export_cpu": end_cpu - middle_cpu,
        "files": len(written),
    }


def memory(images: int, work: Path) -> dict:
    folder = work / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(images):
        sub = folder / f"d{i // 1000:02d}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(sub / f"{i:05d}.png")
    model = load_model("classic", input_size=(32, 32))
    samples: list[tuple[int, float]] = []
    before = rss_mb()
    start = time.perf_counter()
    result = scan(
        model,
        folder,
        "reference",
        store=Store(work / "memory.db"),
        progress=lambda done, total, rate, eta: samples.append((done, rss_mb())),
    )
    seconds = time.perf_counter() - start
    tenth = next(m for d, m in samples if d >= images // 10)
    reopen = time.perf_counter()
    again = scan(model, folder, "reference", store=Store(work / "memory.db"))
    reopen = time.perf_counter() - reopen
    assert again.stats.scanned == 0
    return {
        "images": result.stats.scanned,
        "seconds": seconds,
        "before": before,
        "tenth": tenth,
        "half": next(m for d, m in samples if d >= images // 2),
        "end": samples[-1][1],
        "peak": max(m for _, m in samples),
        "reopen": reopen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "resnet18"])
    parser.add_argument("--engines", nargs="+", default=["auto", "reference"])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument(
        "--pause",
        type=float,
        default=0.3,
        help="seconds between a scan batch and its bare twin (BLAS threads idle)",
    )
    parser.add_argument("--memory-images", type=int, default=10_000)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(
        f"{datetime.date.today()}, {cpu_name()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), NumPy {np.__version__}"
    )
    work = Path(tempfile.mkdtemp(prefix="convscope-topk-bench-"))
    try:
        if args.memory_images:
            m = memory(args.memory_images, work)
            print(
                f"memory: {m['images']} images (classic, 32x32, reference) in {m['seconds']:.1f} s "
                f"({m['images'] / m['seconds']:.0f} images/s); resident {m['before']:.0f} MB before, "
                f"{m['tenth']:.0f} MB after a tenth, {m['half']:.0f} MB at half, {m['end']:.0f} MB "
                f"at the end (peak {m['peak']:.0f} MB); reopening the unchanged folder: "
                f"{m['reopen'] * 1e3:.0f} ms"
            )
        if not args.skip_speed:
            folder = make_folder(work / "images", args.images)
            rows = [speed(m, e, folder, work, args.pause) for m in args.models for e in args.engines]
            print(
                "\n| model | engine | batch | scan images/s | bare images/s | overhead "
                "(whole scan / median batch) | CPU overhead | read+prepare (helper) | forward | "
                "measure (helper) | merge | waiting for the helper | store |"
            )
            print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in rows:
                s = r["stages"]
                met = "met" if r["overhead"] <= TARGET_OVERHEAD else "MISSED"
                print(
                    f"| {r['model']} | {r['engine']} | {r['batch']} | {r['scan_ips']:.1f} | "
                    f"{r['bare_ips']:.1f} | {r['overhead']:+.1%} / {r['median']:+.1%} ({met}) | "
                    f"{r['cpu_overhead']:+.1%} ({r['scan_cpu']:.1f} / {r['bare_cpu']:.1f} s) | "
                    f"{s['load']:.1%} | {s['forward']:.1%} | {s['rank']:.1%} | {s['merge']:.1%} | "
                    f"{s['load wait'] + s['rank wait']:.1%} | {s['store']:.1%} |"
                )
            print("\n| model | engine | cached rerun: scan (CPU) | export, every conv layer (CPU) |")
            print("|---|---|---:|---:|")
            for r in rows:
                print(
                    f"| {r['model']} | {r['engine']} | {r['rerun_scan']:.2f} s "
                    f"({r['rerun_scan_cpu']:.2f} s) | {r['export']:.2f} s ({r['export_cpu']:.2f} s),"
                    f" {r['files']} files |"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
