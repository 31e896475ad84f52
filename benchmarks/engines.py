"""Whole-model forward time with every convolution routed through each engine.

    .venv/bin/python benchmarks/engines.py [--models vgg16 resnet18 mobilenet_v2]
                                           [--engines auto im2col winograd fft direct] [--repeats 5]

Batch 1, 224x224, eval, random init. torch itself is timed in the same run with the same thread
count, taking turns with each engine; the ratio is the engine's best time over torch's best time
from those same turns (this machine is shared, and its speed drifts by 1.5x within a minute).
GFLOP/s counts 2 x the convolution MACs. The roof is this machine's float32 GEMM rate through NumPy's BLAS.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np
import torch
import torchvision

from engine import get_engine
from models.engine_mode import EngineConvMode

BUDGET = {"vgg16": 1.2, "resnet18": 1.5, "mobilenet_v2": 2.0}  # auto / torch, issue #2


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def conv_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad(), EngineConvMode("reference") as mode:
        model(x)
    total = 0
    for call in mode.calls:
        _, _, ho, wo = call.output.shape
        o, cg, kh, kw = call.weight_shape
        total += o * ho * wo * cg * kh * kw
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vgg16", "resnet18", "mobilenet_v2"])
    parser.add_argument("--engines", nargs="+", default=["auto", "im2col", "winograd", "fft", "direct"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# ConvScope engine benchmark, {datetime.date.today().isoformat()}")
    print(f"# {cpu_name()}, {os.cpu_count()} cores, torch threads {args.threads}; "
          f"numpy {np.__version__}, torch {torch.__version__}")
    roof = sgemm_gflops()
    print(f"# SGEMM roof (numpy float32 2048^3): {roof:.1f} GFLOP/s\n")
    print("| model | engine | warm-up s | time ms | x torch (same window) | GFLOP/s | budget |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name in args.models:
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None).eval()
        x = torch.randn(1, 3, 224, 224)
        flops = 2 * conv_macs(model, x)
        def run_torch(m=model, i=x) -> None:
            with torch.no_grad():
                m(i)

        run_torch()
        t_torch_all = min(_timed(run_torch) for _ in range(args.repeats))
        print(f"| {name} | torch | | {t_torch_all * 1e3:.0f} | 1.00 | {flops / t_torch_all / 1e9:.1f} | |",
              flush=True)
        for engine_name in args.engines:
            engine = get_engine(engine_name)
            if hasattr(engine, "clear_cache"):
                engine.clear_cache()

            def run(m=model, i=x, e=engine) -> None:
                with torch.no_grad(), EngineConvMode(e):
                    m(i)

            warm = _timed(run)
            # torch and the engine take turns, so a slow spell of this shared machine hits both;
            # the ratio is of the two best times from the same window
            times, torch_times = [], []
            for _ in range(args.repeats):
                torch_times.append(_timed(run_torch))
                times.append(_timed(run))
            t, t_torch = min(times), min(torch_times)
            ratio = t / t_torch
            budget = ""
            if engine_name == "auto" and name in BUDGET:
                budget = f"≤ {BUDGET[name]}: {'met' if ratio <= BUDGET[name] else 'MISSED'}"
            print(f"| {name} | {engine_name} | {warm:.2f} | {t * 1e3:.0f} | {ratio:.2f} | "
                  f"{flops / t / 1e9:.1f} | {budget} |", flush=True)


if __name__ == "__main__":
    main()
