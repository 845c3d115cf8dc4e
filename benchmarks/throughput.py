"""Throughput of stacked training on this device, from one run (issue: performance).

Prints and writes as JSON:
- member-steps/s of a stacked group for B = 1, 2, 4, ... against the same members one after another
  (B x the B=1 time), for small, medium and the largest Table 1 shapes;
- achieved FLOP/s of training against a plain matmul of the same dtype (this device's practical peak) and
  against the batched matmuls of the same shapes, forward and backward (``largest_shape_utilisation``:
  the largest shapes at their best group size);
- scoring cost (I' and the rest, on the paper profile's 5,000 samples) as a share of a paper-length run;
- the projected time of one epoch (937 steps at batch 64) of the 6,656-config grid (512 EBGAN + 6,144 GAN),
  and its ratio to the optimiser-memory floor (every config's fused optimiser traffic at the copy
  bandwidth measured in the same run).

Step times come from the real ``train_group`` path: (time of k2 steps - time of k1 steps) / (k2 - k1), the
fastest of ``--repeats`` runs of each, so model set-up and scoring cancel out.

    python benchmarks/throughput.py [--quick] [--json PATH] [--device auto|cpu|cuda] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from ebgan_core.classifier import load_classifier
from ebgan_core.cli import resolve_device
from ebgan_core.config import TrialConfig
from ebgan_core.data import load_mnist
from ebgan_core.footprint import flops_per_step, footprint, optimizer_bytes_per_step
from ebgan_core.optim import StackedOptimizer
from ebgan_core.scoring import score_image_sets
from ebgan_core.train import build_group, train_group
from sweeps.grids import grid

SHAPES = {  # (n_layer_g, size_g, n_layer_d, size_d), EBGAN
    "small": (2, 400, 2, 128),
    "medium": (3, 1600, 3, 512),
    "largest": (5, 3200, 5, 1024),
}
BATCH, EPOCH_STEPS, PAPER_STEPS, PAPER_SAMPLES = 64, 60_000 // 64, 4685, 5000


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device: torch.device, work, repeats: int) -> float:
    """The fastest of ``repeats`` timings of ``work()``, in seconds."""
    best = math.inf
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        work()
        sync(device)
        best = min(best, time.perf_counter() - started)
    return best


def step_seconds(configs: list[TrialConfig], data, judge, device, k1: int, k2: int, repeats: int) -> float:
    """Seconds per training step of the group, set-up and scoring cancelled out."""
    def run(steps: int) -> float:
        group = [c.replace(steps=steps, score_samples=2) for c in configs]
        return timed(device, lambda: train_group(group, data, judge, device=device, memory_budget=2**62), repeats)

    return max(run(k2) - run(k1), 1e-9) / (k2 - k1)


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a plain square matmul in the precision training uses: the practical peak of this device."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    return 2 * size**3 * repeats / timed(device, lambda: [a @ b for _ in range(repeats)], 3)


def copy_bandwidth(device: torch.device, megabytes: int = 512) -> float:
    """Bytes/s read + written by a large tensor copy: the practical memory bandwidth of this device."""
    source = torch.ones(megabytes * 2**18, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    return 2 * source.numel() * 4 / timed(device, lambda: target.copy_(source), 5)


def same_shape_matmul(config: TrialConfig, members: int, device: torch.device, seconds: float = 3.0) -> float:
    """FLOP/s of the batched matmuls a training step runs at this group size: per layer the forward
    x @ W, and backward's g @ W^T and x^T @ g (transposed views, as autograd calls them); fastest of
    repeats spread over about ``seconds``."""
    shapes = footprint(config)
    layers = shapes.generator_layers + shapes.discriminator_layers
    operands = [(torch.randn(members, BATCH, i, device=device), torch.randn(members, i, o, device=device),
                 torch.randn(members, BATCH, o, device=device)) for i, o in layers]

    def step() -> None:
        for x, w, g in operands:
            torch.bmm(x, w), torch.bmm(g, w.transpose(1, 2)), torch.bmm(x.transpose(1, 2), g)

    once = timed(device, step, 1)
    best = timed(device, step, max(3, min(50, round(seconds / once))))
    return 3 * sum(2 * members * BATCH * i * o for i, o in layers) / best


def optimizer_bandwidth(config: TrialConfig, device: torch.device, repeats: int = 5) -> dict[str, float]:
    """Bytes/s of one member's optimiser step (``optimizer_bytes_per_step`` / time): the fused per-member
    StackedOptimizer against torch.optim.Adam's per-tensor (unfused) loop on the same parameters."""
    model, _ = build_group([config], device)
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    stacked = StackedOptimizer(params, ["adam"], [config.lr], (config.adam_beta1, config.adam_beta2), 0.0)
    active = torch.ones(1, dtype=torch.bool, device=device)
    unfused = torch.optim.Adam(params, lr=config.lr, foreach=False)
    traffic = optimizer_bytes_per_step(config)
    return {"fused": traffic / timed(device, lambda: stacked.step(active), repeats),
            "unfused": traffic / timed(device, unfused.step, repeats)}


def nearest_shape_rate(config: TrialConfig, rates: dict[str, tuple[float, float]]) -> float:
    """The best measured FLOP/s of the benchmark shape nearest to ``config`` in log FLOPs per step."""
    flops = flops_per_step(config)
    _, rate = min(rates.values(), key=lambda pair: abs(math.log(pair[0] / flops)))
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and group sizes (a few minutes on CPU)")
    parser.add_argument("--json", type=Path, default=Path("results/benchmarks/throughput.json"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=2, help="timings per measurement; the fastest counts")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # as train_group does: the peak is measured the same way
    judge, _ = load_classifier(device=device)
    data = load_mnist("train")[0].to(device)
    k1, k2 = (3, 11) if args.quick else (5, 25)
    max_members = {"small": 16 if args.quick else 64, "medium": 8 if args.quick else 32,
                   "largest": 4 if args.quick else 16}
    if device.type == "cuda":
        max_members = {k: v * 4 for k, v in max_members.items()}
    peak, bandwidth = matmul_peak(device), copy_bandwidth(device)
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    precision = "float32 (TF32 matmuls)" if device.type == "cuda" else "float32"
    print(f"device: {device_name}; {precision} matmul peak {peak / 1e9:.1f} GFLOP/s; "
          f"copy bandwidth {bandwidth / 1e9:.1f} GB/s", flush=True)
    report: dict = {"device": device_name, "torch": torch.__version__, "quick": args.quick, "precision": precision,
                    "steps": [k1, k2], "repeats": args.repeats, "matmul_peak_flops": peak,
                    "copy_bandwidth_bytes_per_s": bandwidth, "shapes": {}}
    for name, (n_g, s_g, n_d, s_d) in SHAPES.items():
        config = TrialConfig(n_layer_g=n_g, size_g=s_g, n_layer_d=n_d, size_d=s_d, batch_size=BATCH)
        flops = flops_per_step(config)
        rows, single = [], None
        members = 1
        while members <= max_members[name]:
            configs = [config.replace(seed=s) for s in range(members)]
            try:
                seconds = step_seconds(configs, data, judge, device, k1, k2, args.repeats)
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
    optimizer = optimizer_bandwidth(TrialConfig(n_layer_g=5, size_g=3200, n_layer_d=5, size_d=1024), device)
    report["optimizer_bytes_per_s"] = optimizer
    print(f"optimiser step of the largest member (Adam): fused {optimizer['fused'] / 1e9:.1f} GB/s = "
          f"{100 * optimizer['fused'] / bandwidth:.0f}% of copy bandwidth; unfused torch.optim.Adam "
          f"{optimizer['unfused'] / 1e9:.1f} GB/s (fused = {optimizer['fused'] / optimizer['unfused']:.1f}x)",
          flush=True)
    fastest = max(largest, key=lambda r: r["achieved_flops"])
    report["largest_shape_utilisation"] = fastest["utilisation_vs_same_shape_matmul"]
    # Scoring: the paper profile scores 5,000 samples per member once per run.
    config = TrialConfig(n_layer_g=5, size_g=3200, n_layer_d=5, size_d=1024)
    images = torch.rand(1, PAPER_SAMPLES, 1, 32, 32, device=device) * 2 - 1
    score_seconds = timed(device, lambda: score_image_sets(images, judge), 1)
    best_rate = max(r["achieved_flops"] for r in largest)
    train_seconds = flops_per_step(config) * PAPER_STEPS / best_rate
    report["scoring_seconds_per_member"] = score_seconds
    report["scoring_share_of_training_largest"] = score_seconds / train_seconds
    # Projection: each config of the 6,656-config grid at the best rate of the nearest benchmark shape.
    configs = grid("ebgan", "paper") + grid("gan", "paper")
    rates = {name: (shape["flops_per_member_step"], max(r["achieved_flops"] for r in shape["groups"]))
             for name, shape in report["shapes"].items()}
    report["grid_epoch_flops"] = EPOCH_STEPS * sum(flops_per_step(c) for c in configs)
    report["projected_grid_epoch_seconds"] = EPOCH_STEPS * sum(flops_per_step(c) / nearest_shape_rate(c, rates)
                                                               for c in configs)
    report["optimizer_memory_floor_seconds"] = EPOCH_STEPS * sum(map(optimizer_bytes_per_step, configs)) / bandwidth
    report["compute_floor_seconds"] = report["grid_epoch_flops"] / peak
    report["projected_vs_optimizer_floor"] = (report["projected_grid_epoch_seconds"]
                                              / report["optimizer_memory_floor_seconds"])
    print(f"scoring {PAPER_SAMPLES} samples: {score_seconds:.1f} s per member = "
          f"{100 * report['scoring_share_of_training_largest']:.2f}% of a {PAPER_STEPS}-step run of the largest shape")
    print(f"largest-shape utilisation (achieved / same-shape matmul, B={fastest['members']}): "
          f"{100 * report['largest_shape_utilisation']:.0f}%")
    print(f"one epoch of the 6,656-config grid: {report['grid_epoch_flops'] / 1e15:.1f} PFLOP -> projected "
          f"{report['projected_grid_epoch_seconds'] / 3600:.1f} h here; floors: compute "
          f"{report['compute_floor_seconds'] / 3600:.1f} h, optimiser memory "
          f"{report['optimizer_memory_floor_seconds'] / 3600:.2f} h "
          f"(projected = {report['projected_vs_optimizer_floor']:.1f}x the optimiser floor)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
