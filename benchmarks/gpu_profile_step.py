"""Where a stacked group's training goes on a device: kernel time by operator, launches per step (torch.profiler).

    python benchmarks/gpu_profile_step.py [--device cuda] [--members 64] [--steps 20] > profile.txt

Trains the fig4b shape (G 5x800, D 2x1024) as one stacked group, once to warm up and once under the profiler,
in each precision, and prints the wall time, the device's kernel time, the kernel launches and the top
operators by device and by host time. Set-up (weights built on the CPU and copied over, the judge's scoring)
is inside the profiled run; the per-call averages separate it from the per-step work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a copied tree without installing it

from ebgan_core.data import load_mnist
from ebgan_core.table1.classifier import load_classifier
from ebgan_core.table1.config import PRECISIONS, TrialConfig
from ebgan_core.table1.train import train_group

LAUNCHES = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    judge, _ = load_classifier(device=device)
    data = load_mnist("train")[0].to(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for precision in PRECISIONS:
        configs = [TrialConfig(n_layer_g=5, size_g=800, n_layer_d=2, size_d=1024, precision=precision, seed=seed,
                               steps=args.steps, score_samples=2) for seed in range(args.members)]
        train_group(configs, data, judge, device=device, memory_budget=2**62)
        with profile(activities=activities) as profiler:
            started = time.perf_counter()
            train_group(configs, data, judge, device=device, memory_budget=2**62)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - started
        events = profiler.key_averages()
        print(f"== {precision}: {args.steps} steps wall {wall * 1e3:.0f} ms", end="")
        if device.type == "cuda":
            kernel_us = sum(e.self_device_time_total for e in events if e.device_type.name == "CUDA")
            launches = sum(e.count for e in events if e.key in LAUNCHES)
            print(f", kernel time {kernel_us / 1e3:.0f} ms, kernel launches {launches} "
                  f"({launches / args.steps:.0f} per step incl. set-up)")
            print(events.table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=60))
        else:
            print()
        print(events.table(sort_by="self_cpu_time_total", row_limit=8, max_name_column_width=60))


if __name__ == "__main__":
    main()
