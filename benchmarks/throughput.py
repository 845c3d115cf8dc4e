"""Throughput of stacked training on this device, from one run (issue: performance).

Prints and writes as JSON:
- member-steps/s of a stacked group for B = 1, 2, 4, ... against the same members one after another
  (B x the B=1 time), for small, medium and the largest Table 1 shapes;
- achieved FLOP/s of training against a plain matmul of the same dtype (this device's practical peak) and
  against the same-shape batched matmuls (``largest_shape_utilisation`` for the largest shapes);
- scoring cost (I' and the rest, on the paper profile's 5,000 samples) as a share of a paper-length run;
- the projected time of one epoch (937 steps at batch 64) of the 6,656-config grid (512 EBGAN + 6,144 GAN).

Step times come from the real ``train_group`` path: (time of k2 steps - time of k1 steps) / (k2 - k1), so
model set-up and scoring cancel out.

    python benchmarks/throughput.py [--quick] [--json PATH] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ebgan_core.classifier import load_classifier
from ebgan_core.cli import resolve_device
from ebgan_core.config import TrialConfig
from ebgan_core.data import load_mnist
from ebgan_core.models import IMAGE_DIM
from ebgan_core.scoring import score_image_sets
from ebgan_core.train import train_group
from sweeps.grids import grid

SHAPES = {  # (n_layer_g, size_g, n_layer_d, size_d), EBGAN
    "small": (2, 400, 2, 128),
    "medium": (3, 1600, 3, 512),
    "largest": (5, 3200, 5, 1024),
}
BATCH, NOISE, EPOCH_STEPS, PAPER_STEPS, PAPER_SAMPLES = 64, 100, 60_000 // 64, 4685, 5000


def layer_shapes(config: TrialConfig) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(in, out) of every linear layer of G and of D."""
    hidden_g, hidden_d = config.n_layer_g - 2, config.n_layer_d - 2
    g = [(NOISE, config.size_g), *[(config.size_g, config.size_g)] * hidden_g, (config.size_g, IMAGE_DIM)]
    d_out = IMAGE_DIM if config.family == "ebgan" else 1
    d = [(IMAGE_DIM, config.size_d), *[(config.size_d, config.size_d)] * hidden_d, (config.size_d, d_out)]
    return g, d


def flops_per_member_step(config: TrialConfig) -> float:
    """Matmul FLOPs of one training step of one member.

    D step: G forward (no grad), D forward on real and fake, D backward (2x forward) on both.
    G step: G forward, D forward, D backward to its input only (1x), G backward (2x). = 4 G_fwd + 8 D_fwd.
    """
    g, d = layer_shapes(config)
    g_fwd = 2 * config.batch_size * sum(i * o for i, o in g)
    d_fwd = 2 * config.batch_size * sum(i * o for i, o in d)
    return 4 * g_fwd + 8 * d_fwd


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_seconds(configs: list[TrialConfig], data: torch.Tensor, judge, device, k1: int, k2: int) -> float:
    """Seconds per training step of the group, set-up and scoring cancelled out."""
    times = []
    for steps in (k1, k2):
        group = [c.replace(steps=steps, score_samples=2) for c in configs]
        sync(device)
        started = time.perf_counter()
        train_group(group, data, judge, device=device)
        sync(device)
        times.append(time.perf_counter() - started)
    return max(times[1] - times[0], 1e-9) / (k2 - k1)


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a plain float32 square matmul: the practical peak of this device."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def same_shape_matmul(config: TrialConfig, members: int, device: torch.device, repeats: int = 5) -> float:
    """FLOP/s of the batched forward matmuls of the model's own layer shapes at this group size."""
    g, d = layer_shapes(config)
    operands = [(torch.randn(members, BATCH, i, device=device), torch.randn(members, i, o, device=device))
                for i, o in g + d]
    for x, w in operands:
        torch.bmm(x, w)
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        for x, w in operands:
            torch.bmm(x, w)
    sync(device)
    flops = repeats * sum(2 * members * BATCH * x.shape[2] * w.shape[2] for x, w in operands)
    return flops / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and group sizes (a few minutes on CPU)")
    parser.add_argument("--json", type=Path, default=Path("results/benchmarks/throughput.json"))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    judge, _ = load_classifier(device=device)
    data = load_mnist("train")[0].to(device)
    k1, k2 = (2, 6) if args.quick else (5, 25)
    max_members = {"small": 16 if args.quick else 64, "medium": 8 if args.quick else 32,
                   "largest": 4 if args.quick else 16}
    if device.type == "cuda":
        max_members = {k: v * 4 for k, v in max_members.items()}
    peak = matmul_peak(device)
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    print(f"device: {device_name}; float32 matmul peak {peak / 1e9:.1f} GFLOP/s")
    report: dict = {"device": device_name, "torch": torch.__version__, "quick": args.quick,
                    "matmul_peak_flops": peak, "shapes": {}}
    for name, (n_g, s_g, n_d, s_d) in SHAPES.items():
        config = TrialConfig(n_layer_g=n_g, size_g=s_g, n_layer_d=n_d, size_d=s_d, batch_size=BATCH)
        flops = flops_per_member_step(config)
        rows, single = [], None
        members = 1
        while members <= max_members[name]:
            configs = [config.replace(seed=s) for s in range(members)]
            try:
                seconds = step_seconds(configs, data, judge, device, k1, k2)
            except torch.OutOfMemoryError:
                break
            single = single or seconds
            achieved = flops * members / seconds
            same_shape = same_shape_matmul(config, members, device)
            row = {"members": members, "member_steps_per_s": members / seconds,
                   "speedup_vs_one_at_a_time": single * members / seconds, "achieved_flops": achieved,
                   "utilisation_vs_peak": achieved / peak, "utilisation_vs_same_shape_matmul": achieved / same_shape}
            rows.append(row)
            print(f"{name:8s} B={members:3d}: {row['member_steps_per_s']:8.1f} member-steps/s, "
                  f"{row['speedup_vs_one_at_a_time']:5.2f}x one-at-a-time, {achieved / 1e9:7.1f} GFLOP/s = "
                  f"{100 * row['utilisation_vs_peak']:4.0f}% of peak, "
                  f"{100 * row['utilisation_vs_same_shape_matmul']:4.0f}% of same-shape matmul", flush=True)
            members *= 2
        report["shapes"][name] = {"shape": SHAPES[name], "flops_per_member_step": flops, "groups": rows}
    largest = report["shapes"]["largest"]["groups"]
    report["largest_shape_utilisation"] = max(r["utilisation_vs_same_shape_matmul"] for r in largest)
    # Scoring: the paper profile scores 5,000 samples per member once per run.
    config = TrialConfig(n_layer_g=5, size_g=3200, n_layer_d=5, size_d=1024)
    images = torch.rand(1, PAPER_SAMPLES, 1, 32, 32, device=device) * 2 - 1
    sync(device)
    started = time.perf_counter()
    score_image_sets(images, judge)
    score_seconds = time.perf_counter() - started
    best_rate = max(r["achieved_flops"] for r in largest)
    train_seconds = flops_per_member_step(config) * PAPER_STEPS / best_rate
    report["scoring_seconds_per_member"] = score_seconds
    report["scoring_share_of_training_largest"] = score_seconds / train_seconds
    # Projection: every config of the 6,656-config grid at the best measured FLOP rate of the largest shapes.
    configs = grid("ebgan", "paper") + grid("gan", "paper")
    total = sum(flops_per_member_step(c) for c in configs) * EPOCH_STEPS
    rates = {name: max(r["achieved_flops"] for r in shape["groups"]) for name, shape in report["shapes"].items()}
    report["grid_epoch_flops"] = total
    report["projected_grid_epoch_seconds"] = total / rates["largest"]
    print(f"scoring {PAPER_SAMPLES} samples: {score_seconds:.1f} s per member = "
          f"{100 * report['scoring_share_of_training_largest']:.1f}% of a {PAPER_STEPS}-step run of the largest shape")
    print(f"largest-shape utilisation (achieved / same-shape matmul): {100 * report['largest_shape_utilisation']:.0f}%")
    print(f"one epoch of the 6,656-config grid: {total / 1e15:.1f} PFLOP -> projected "
          f"{report['projected_grid_epoch_seconds'] / 3600:.1f} h here at the largest shapes' rate")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
