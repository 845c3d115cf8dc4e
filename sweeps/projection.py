"""The projected time of a sweep before it starts: its matmul FLOPs (training and scoring) over the rate stacked groups
reach on this machine's kind of device, a fraction of the matmul peak measured now. A guess until the first group
ends; the progress lines' ETA replaces it."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from ebgan_core.group import scoring_steps
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.footprint import flops_per_step, footprint
from ebgan_core.table2.config import LadderConfig
from ebgan_core.table2.footprint import flops_per_run, flops_per_score

# The share of the matmul peak that stacked groups reached in benchmarks/README.md: 33-54 GFLOP/s of ~140 on the
# 2-core CPU at the laptop profile's widths; 2.5-4.6 TFLOP/s of a 337 TFLOP/s TF32 peak on an H200 at paper widths.
EFFICIENCY = {"cpu": 0.3, "cuda": 0.01}
JUDGE_FLOPS_PER_IMAGE = 2 * (32 * 32 * 32 * 25 + 16 * 16 * 64 * 32 * 9 + 8 * 8 * 128 * 64 * 9 + 2048 * 10)


def sweep_flops(configs: Sequence[TrialConfig | LadderConfig], score_every: int,
                interim_samples: int | None = None) -> float:
    """Matmul FLOPs of training and scoring every config (scored at the end and every ``score_every`` steps, on
    ``interim_samples`` samples, default the final score's)."""
    total = 0.0
    for config in configs:
        interim = len(scoring_steps(score_every, config.steps))
        if isinstance(config, LadderConfig):
            total += flops_per_run(config) + (1 + interim) * flops_per_score(config)
        else:
            images = config.score_samples + interim * (interim_samples or config.score_samples)
            generate = footprint(config).generator_flops
            total += config.steps * flops_per_step(config) + images * (generate + JUDGE_FLOPS_PER_IMAGE)
    return total


def matmul_peak(device: str, size: int = 1024, seconds: float = 0.3) -> float:
    """FLOP/s of a plain float32 square matmul on ``device`` over about ``seconds``."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return 2 * size**3 * count / (time.perf_counter() - started)


def projection_line(configs: Sequence[TrialConfig | LadderConfig], score_every: int, interim_samples: int | None,
                    device: str) -> str:
    """One line: the sweep's FLOPs and its projected time on ``device``."""
    flops, peak = sweep_flops(configs, score_every, interim_samples), matmul_peak(device)
    efficiency = EFFICIENCY["cuda" if device.startswith("cuda") else "cpu"]
    seconds = flops / (peak * efficiency)
    duration = (f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400
                else f"{seconds / 3600:.1f} h")
    return (f"[sweep] projected: about {duration} here ({flops / 1e12:.2f} TFLOP of training and scoring at "
            f"{100 * efficiency:.0f}% of this {device}'s {peak / 1e9:.0f} GFLOP/s matmul peak, what stacked groups "
            "reach; the ETA after each group is measured)")
