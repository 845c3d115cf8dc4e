"""Throughput of stacked training on this device, from one run (issue: performance).

Prints and writes as JSON, per precision (fp32, and bf16: GEMMs in bfloat16 where the device has bf16 units,
emulated on float32 units elsewhere, see ebgan_core/precision.py):
- member-steps/s of a stacked group for B = 1, 2, 4, ... against the same members one after another
  (B x the B=1 time), for the demo-width, small, medium, fig4b and largest Table 1 shapes;
- achieved FLOP/s of training against the batched matmuls of the same shapes in the GEMM dtype, forward and
  backward (``largest_shape_utilisation`` for fp32, ``bf16_largest_shape_utilisation``: the largest shape at
  its best group size), and ``bf16_speedup_largest`` / ``_fig4b`` / ``_demo`` (best member-steps/s, bf16 / fp32);
- scoring cost (I' and the rest, on the paper profile's 5,000 samples) as a share of a paper-length run;
- the optimiser's share of a training step (``optimizer_share_laptop``: the 24-member GAN group of ``make sweep``,
  mixed Adam and SGD, packed as a sweep packs it; ``optimizer_share_fig4b``: fig4b at paper widths, 4 members on a
  CPU, 64 on a GPU), scoring's share of the whole ``laptop-balanced`` sweep (``scoring_share_laptop``; with
  ``--shares`` or in the full mode) and, on CUDA, the host's launches per fig4b step as a sweep runs it, replayed
  from a captured CUDA graph (``kernel_launches_per_step``; eager counts and the runtime calls in ``kernel_launches``);
- the projected time of one epoch (937 steps at batch 64) of the 6,656-config grid (512 EBGAN + 6,144 GAN),
  and its ratio to the optimiser-memory floor (every config's fused optimiser traffic at the copy
  bandwidth measured in the same run), and of the whole ``paper`` study (7,175 configs x 4,685 steps).

Step times come from the real ``train_group`` path: (time of k2 steps - time of k1 steps) / (k2 - k1), the
fastest of ``--repeats`` runs of each, so model set-up and scoring cancel out.

    python benchmarks/throughput.py [--quick] [--json PATH] [--device auto|cpu|cuda] [--repeats N]
                                    [--precisions fp32,bf16] [--shapes demo,small,medium,fig4b,largest]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks.* from a script or a copied tree

from benchmarks.step_shares import kernel_launches_per_step, optimizer_share, sweep_scoring_share
from ebgan_core.cli import resolve_device
from ebgan_core.data import load_mnist
from ebgan_core.optim import StackedOptimizer
from ebgan_core.precision import native_bf16
from ebgan_core.table1.classifier import load_classifier
from ebgan_core.table1.config import PRECISIONS, TrialConfig
from ebgan_core.table1.footprint import flops_per_step, footprint, optimizer_bytes_per_step
from ebgan_core.table1.scoring import score_image_sets
from ebgan_core.table1.train import build_group, train_group
from sweeps.studies import pack_groups
from sweeps.table1.grids import PROFILES, grid

SHAPES = {  # (n_layer_g, size_g, n_layer_d, size_d), EBGAN
    "demo": (5, 200, 5, 64),  # the largest demo-profile shape (Table 1's largest / 16)
    "small": (2, 400, 2, 128),
    "medium": (3, 1600, 3, 512),
    "fig4b": (5, 800, 2, 1024),
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


class NoisyTimingError(RuntimeError):
    """A measurement drowned in the machine's timing noise."""


def step_seconds(configs: list[TrialConfig], data, judge, device, k1: int, k2: int, repeats: int) -> float:
    """Seconds per training step of the group, set-up and scoring cancelled out."""
    def run(steps: int) -> float:
        group = [c.replace(steps=steps, score_samples=2) for c in configs]
        return timed(device, lambda: train_group(group, data, judge, device=device, memory_budget=2**62), repeats)

    for _ in range(3):  # on a busy machine the set-up's jitter can exceed the extra steps' time: measure again
        extra = run(k2) - run(k1)
        if extra > 0:
            return extra / (k2 - k1)
    raise NoisyTimingError(f"{k2} steps never timed slower than {k1} steps")


def gemm_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype a precision's GEMMs run in on ``device``: bf16 is emulated on float32 units without bf16 hardware."""
    return torch.bfloat16 if precision == "bf16" and native_bf16(device) else torch.float32


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, size: int = 2048, repeats: int = 10
                ) -> float:
    """FLOP/s of a plain square matmul in ``dtype``: the practical peak of this device in that dtype."""
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    a @ b
    return 2 * size**3 * repeats / timed(device, lambda: [a @ b for _ in range(repeats)], 3)


def copy_bandwidth(device: torch.device, megabytes: int = 512) -> float:
    """Bytes/s read + written by a large tensor copy: the practical memory bandwidth of this device."""
    source = torch.ones(megabytes * 2**18, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    return 2 * source.numel() * 4 / timed(device, lambda: target.copy_(source), 5)


def same_shape_matmul(config: TrialConfig, members: int, device: torch.device, dtype: torch.dtype = torch.float32,
                      seconds: float = 3.0) -> float:
    """FLOP/s of the batched matmuls a training step runs at this group size: per layer the forward
    x @ W, and backward's g @ W^T and x^T @ g (transposed views, as autograd calls them); fastest of
    repeats spread over about ``seconds``."""
    shapes = footprint(config)
    layers = shapes.generator_layers + shapes.discriminator_layers
    operands = [tuple(torch.randn(*shape, device=device).to(dtype)
                      for shape in ((members, BATCH, i), (members, i, o), (members, BATCH, o))) for i, o in layers]

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


def measure_shapes(device: torch.device, precision: str, data, judge, max_members: dict[str, int], k1: int,
                   k2: int, repeats: int, log=print, matmul_seconds: float = 3.0, growth: int = 2,
                   shape_seconds: float = math.inf) -> dict:
    """Member-steps/s and utilisation of each benchmark shape at B = 1, growth, growth^2, ... in ``precision``;
    a shape stops growing B where the next group (``growth`` x the last one's time) would end past ``shape_seconds``
    (B = 1 is always measured)."""
    dtype = gemm_dtype(precision, device)
    shapes = {}
    for name, (n_g, s_g, n_d, s_d) in SHAPES.items():
        if name not in max_members:
            continue
        shape_started = time.perf_counter()
        config = TrialConfig(n_layer_g=n_g, size_g=s_g, n_layer_d=n_d, size_d=s_d, batch_size=BATCH,
                             precision=precision)
        flops = flops_per_step(config)
        rows, single, members = [], None, 1
        while members <= max_members[name]:
            row_started = time.perf_counter()
            configs = [config.replace(seed=s) for s in range(members)]
            try:
                seconds = step_seconds(configs, data, judge, device, k1, k2, repeats)
            except torch.OutOfMemoryError:
                break
            except NoisyTimingError as noise:
                log(f"{precision} {name:8s} B={members:3d}: skipped ({noise}: this machine is too busy to time it)")
                members *= growth
                continue
            single = single or seconds
            achieved = flops * members / seconds
            same_shape = same_shape_matmul(config, members, device, dtype, matmul_seconds)
            row = {"members": members, "member_steps_per_s": members / seconds,
                   "speedup_vs_one_at_a_time": single * members / seconds, "achieved_flops": achieved,
                   "same_shape_matmul_flops": same_shape, "utilisation_vs_same_shape_matmul": achieved / same_shape}
            rows.append(row)
            log(f"{precision} {name:8s} B={members:3d}: {row['member_steps_per_s']:8.1f} member-steps/s, "
                f"{row['speedup_vs_one_at_a_time']:5.2f}x one-at-a-time, {achieved / 1e9:7.1f} GFLOP/s = "
                f"{100 * row['utilisation_vs_same_shape_matmul']:4.0f}% of same-shape matmul")
            members *= growth
            now = time.perf_counter()
            if members <= max_members[name] and now - shape_started + growth * (now - row_started) > shape_seconds:
                log(f"{precision} {name:8s}: stopped before B={members} (would overrun its {shape_seconds:.0f} s)")
                break
        shapes[name] = {"shape": SHAPES[name], "flops_per_member_step": flops, "groups": rows}
    return shapes


def best(shape: dict, key: str = "member_steps_per_s") -> dict:
    """The group size with the highest ``key``."""
    return max(shape["groups"], key=lambda r: r[key])


def projected_seconds(configs: list[TrialConfig], shapes: dict, steps: int) -> float:
    """``steps`` steps of every config at the best rate of the nearest benchmark shape."""
    rates = {name: (shape["flops_per_member_step"], best(shape, "achieved_flops")["achieved_flops"])
             for name, shape in shapes.items() if shape["groups"]}
    return steps * sum(flops_per_step(c) / nearest_shape_rate(c, rates) for c in configs)


def step_shares(device: torch.device, data: torch.Tensor, judge, scoring: bool, log=print) -> dict:
    """The optimiser's share of a step at laptop widths and at fig4b, the kernels per fig4b step (CUDA) and, with
    ``scoring``, scoring's share of the whole laptop-balanced sweep; as top-level report keys."""
    report: dict = {}
    fig4b = TrialConfig(n_layer_g=5, size_g=800, n_layer_d=2, size_d=1024, batch_size=BATCH)
    fig4b_group = [fig4b.replace(seed=s) for s in range(64 if device.type == "cuda" else 4)]
    laptop = pack_groups(grid("gan", "laptop-mini"), PROFILES["laptop-mini"].max_members)[0]  # as a sweep packs it
    for name, configs in (("laptop", laptop), ("fig4b", fig4b_group)):
        measured = optimizer_share(configs, data, judge, device)
        report[f"optimizer_share_{name}"] = measured["optimizer_share"]
        report[f"optimizer_{name}"] = measured
        log(f"optimiser ({measured['update']}) share of a step, {name} ({measured['members']} members): "
            f"{100 * measured['optimizer_share']:.1f}% of {1e3 * measured['step_seconds']:.1f} ms")
    launches = kernel_launches_per_step(fig4b_group, data, judge, device)
    report["kernel_launches"] = launches
    report["kernel_launches_per_step"] = None if launches is None else launches["captured_launches"]
    if launches is not None:
        log(f"per fig4b step (B={len(fig4b_group)}): {launches['eager_kernels']:.0f} kernels; host launches "
            f"{launches['eager_launches']:.0f} eager, {launches['captured_launches']:.0f} as a sweep runs it "
            f"(CUDA graph captured: {launches['captured']})")
    if scoring:
        profile = PROFILES["laptop-balanced"]
        measured = sweep_scoring_share(grid("all", "laptop-balanced"), profile.score_every, profile.interim_samples,
                                       profile.max_members, data, judge, device, log)
        report["scoring_share_laptop"] = measured["scoring_share"]
        report["scoring_laptop"] = measured
        log(f"scoring's share of the laptop-balanced sweep: {100 * measured['scoring_share']:.1f}% "
            f"({measured['final_scoring_seconds_per_member']:.2f} s per final scoring of a member, "
            f"{measured['interim_scoring_seconds_per_member']:.2f} s per interim one)")
    return report


def run_benchmark(device: torch.device, quick: bool, repeats: int, precisions: tuple[str, ...] = ("fp32", "bf16"),
                  shapes: tuple[str, ...] = tuple(SHAPES), log=print, matmul_seconds: float = 3.0,
                  seconds_budget: float = math.inf, scoring_share: bool | None = None) -> dict:
    """Every measurement of this script on ``device``; the report as a dict (see the module docstring).
    ``matmul_seconds``: time spent on each same-shape matmul reference; ``seconds_budget``: the group-size
    sweeps share it equally per precision and shape (each stops growing B when its share is spent); ``scoring_share``
    (default: not ``quick``) measures scoring's share of the laptop-balanced sweep (about 2 minutes on a CPU)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # as train_group does: the peak is measured the same way
    judge, _ = load_classifier(device=device)
    data = load_mnist("train")[0].to(device)
    k1, k2 = (3, 11) if quick else (5, 25)
    limits = ({"demo": 24, "small": 16, "medium": 8, "fig4b": 4, "largest": 4} if quick
              else {"demo": 32, "small": 64, "medium": 32, "fig4b": 16, "largest": 16})
    growth = 2
    if device.type == "cuda":  # a GPU needs many members to fill: larger groups, in steps of 4x
        limits, growth = {"demo": 256, "small": 256, "medium": 128, "fig4b": 64, "largest": 64}, 4
    limits = {k: v for k, v in limits.items() if k in shapes}
    shape_seconds = seconds_budget / (len(precisions) * len(limits))
    bandwidth = copy_bandwidth(device)
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    report: dict = {"device": device_name, "torch": torch.__version__, "quick": quick, "steps": [k1, k2],
                    "repeats": repeats, "tf32": device.type == "cuda", "bf16_native": native_bf16(device),
                    "copy_bandwidth_bytes_per_s": bandwidth, "precisions": {}}
    report |= step_shares(device, data, judge, not quick if scoring_share is None else scoring_share, log)
    for precision in precisions:
        dtype = gemm_dtype(precision, device)
        peak = matmul_peak(device, dtype, size=1024 if quick else 2048)
        log(f"device: {device_name}; {precision}: GEMMs in {str(dtype).removeprefix('torch.')}, matmul peak "
            f"{peak / 1e9:.1f} GFLOP/s; copy bandwidth {bandwidth / 1e9:.1f} GB/s")
        report["precisions"][precision] = {"gemm_dtype": str(dtype), "matmul_peak_flops": peak,
                                           "shapes": measure_shapes(device, precision, data, judge, limits, k1, k2,
                                                                    repeats, log, matmul_seconds, growth,
                                                                    shape_seconds)}
    if "bf16" in precisions:
        # What a bf16 GEMM costs in hardware here, even where training emulates it (a small size: it may crawl).
        report["bf16_matmul_peak_flops"] = matmul_peak(device, torch.bfloat16, size=2048 if native_bf16(device)
                                                       else 256, repeats=10 if native_bf16(device) else 2)
    fp32 = report["precisions"].get("fp32", {}).get("shapes", {})
    bf16 = report["precisions"].get("bf16", {}).get("shapes", {})
    for name in ("largest", "fig4b", "demo"):
        if fp32.get(name, {}).get("groups") and bf16.get(name, {}).get("groups"):
            report[f"bf16_speedup_{name}"] = (best(bf16[name])["member_steps_per_s"]
                                              / best(fp32[name])["member_steps_per_s"])
    if bf16.get("largest", {}).get("groups"):
        report["bf16_largest_shape_utilisation"] = best(bf16["largest"], "achieved_flops")[
            "utilisation_vs_same_shape_matmul"]
    if fp32.get("largest", {}).get("groups"):
        largest = fp32["largest"]
        report["largest_shape_utilisation"] = best(largest, "achieved_flops")["utilisation_vs_same_shape_matmul"]
        optimizer = optimizer_bandwidth(TrialConfig(n_layer_g=5, size_g=3200, n_layer_d=5, size_d=1024), device)
        report["optimizer_bytes_per_s"] = optimizer
        log(f"optimiser step of the largest member (Adam): fused {optimizer['fused'] / 1e9:.1f} GB/s = "
            f"{100 * optimizer['fused'] / bandwidth:.0f}% of copy bandwidth; unfused torch.optim.Adam "
            f"{optimizer['unfused'] / 1e9:.1f} GB/s (fused = {optimizer['fused'] / optimizer['unfused']:.1f}x)")
        images = torch.rand(1, PAPER_SAMPLES, 1, 32, 32, device=device) * 2 - 1
        score_seconds = timed(device, lambda: score_image_sets(images, judge), 1)
        config = TrialConfig(n_layer_g=5, size_g=3200, n_layer_d=5, size_d=1024)
        train_seconds = flops_per_step(config) * PAPER_STEPS / best(largest, "achieved_flops")["achieved_flops"]
        report["scoring_seconds_per_member"] = score_seconds
        report["scoring_share_of_training_largest"] = score_seconds / train_seconds
        log(f"scoring {PAPER_SAMPLES} samples: {score_seconds:.1f} s per member = "
            f"{100 * report['scoring_share_of_training_largest']:.2f}% of a {PAPER_STEPS}-step largest-shape run")
    table1 = grid("ebgan", "paper") + grid("gan", "paper")
    report["grid_epoch_flops"] = EPOCH_STEPS * sum(flops_per_step(c) for c in table1)
    report["optimizer_memory_floor_seconds"] = EPOCH_STEPS * sum(map(optimizer_bytes_per_step, table1)) / bandwidth
    paper_study = grid("all", "paper")
    for precision, measured in report["precisions"].items():
        if not all(shape["groups"] for shape in measured["shapes"].values()):
            continue
        epoch = projected_seconds(table1, measured["shapes"], EPOCH_STEPS)
        study = projected_seconds(paper_study, measured["shapes"], PAPER_STEPS)
        measured |= {"projected_grid_epoch_seconds": epoch, "compute_floor_seconds":
                     report["grid_epoch_flops"] / measured["matmul_peak_flops"],
                     "projected_vs_optimizer_floor": epoch / report["optimizer_memory_floor_seconds"],
                     "projected_paper_study_seconds": study}
        log(f"{precision}: one epoch of the 6,656-config grid ({report['grid_epoch_flops'] / 1e15:.1f} PFLOP) "
            f"projected {epoch / 3600:.2f} h here ({epoch / report['optimizer_memory_floor_seconds']:.1f}x the "
            f"optimiser-memory floor); the whole paper study ({len(paper_study)} configs x {PAPER_STEPS} steps) "
            f"{study / 3600:.2f} h")
    if report.get("largest_shape_utilisation") is not None:
        log(f"largest-shape utilisation (fp32, achieved / same-shape matmul): "
            f"{100 * report['largest_shape_utilisation']:.0f}%")
    for key in ("bf16_speedup_largest", "bf16_speedup_fig4b", "bf16_speedup_demo", "bf16_largest_shape_utilisation"):
        if key in report:
            log(f"{key}: {report[key]:.2f}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and group sizes (~13 min on 2 CPU cores)")
    parser.add_argument("--json", type=Path, default=Path("results/benchmarks/throughput.json"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=2, help="timings per measurement; the fastest counts")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated, from fp32 and bf16")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, from {', '.join(SHAPES)}")
    parser.add_argument("--shares", action="store_true", help="measure scoring's share of the laptop-balanced sweep "
                        "in --quick mode too (the full mode always does)")
    parser.add_argument("--budget", type=float, default=math.inf,
                        help="seconds for the group-size sweeps, shared by precision and shape (default: no limit)")
    args = parser.parse_args()
    precisions = tuple(args.precisions.split(","))
    shapes = tuple(args.shapes.split(","))
    unknown = sorted(set(precisions) - set(PRECISIONS)) + sorted(set(shapes) - set(SHAPES))
    if unknown:
        raise SystemExit(f"error: unknown precision or shape {unknown[0]!r}; see --help")
    report = run_benchmark(resolve_device(args.device), args.quick, args.repeats, precisions, shapes,
                           log=lambda line: print(line, flush=True), seconds_budget=args.budget,
                           scoring_share=True if args.shares else None)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
