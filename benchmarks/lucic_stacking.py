"""Stacking across the samples of one loss in Lucic et al.'s study (issue 34's target: at least 3x member-steps/s over
the same configs one at a time, at the laptop profile's shape), measured on this machine in one run.

For each loss, the samples of the 100-sample study that share its most common group key (discriminator updates and
batch norm in D: the members one stacked group trains), up to ``--members``; their step time as one group against
each of ``--alone`` of them trained alone (``benchmarks/throughput.step_seconds``: real ``train_group`` runs, set-up
and scoring cancelled out, the fastest of ``--repeats``), on ``--threads`` threads (1: what a sweep's 1-CPU group
gets). Prints and writes as JSON, per loss: B, the group's member-steps/s, one member's alone, the ratio, and the
matmul GFLOP/s each reaches (the step's forward and backward products, a gradient penalty's extra passes left out)
against this machine's float32 matmul peak on those threads measured in the same run; and the geometric mean of the
ratios. Where a member alone already runs its products near the peak, stacking has little to add.

    python benchmarks/lucic_stacking.py [--members 10] [--alone 3] [--losses WGAN,BEGAN] [--json PATH]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks.* from a script or a copied tree

import torch

from benchmarks.group_parity import cpu_description
from benchmarks.throughput import matmul_peak, step_seconds
from ebgan_core.data import load_mnist
from ebgan_core.table1.classifier import load_classifier
from ebgan_core.table1.footprint import flops_per_step
from sweeps.table1 import lucic
from sweeps.table1.grids import grid

CPU = torch.device("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10, help="members of the stacked group (default 10)")
    parser.add_argument("--alone", type=int, default=3, help="of them, how many are timed alone (default 3)")
    parser.add_argument("--losses", default=None, help="comma-separated losses (default: every registered one)")
    parser.add_argument("--profile", default="laptop")
    parser.add_argument("--steps", default="10,40", help="k1,k2: the step counts whose difference is timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, a sweep worker's)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    k1, k2 = (int(s) for s in args.steps.split(","))
    torch.set_num_threads(args.threads)
    peak = matmul_peak(CPU)
    print(f"float32 matmul peak on {args.threads} thread(s): {peak / 1e9:.1f} GFLOP/s", flush=True)
    data, judge = load_mnist("train")[0], load_classifier()[0]
    configs = grid(lucic.GRID, args.profile, samples=lucic.DEFAULT_SAMPLES)
    wanted = None if args.losses is None else set(args.losses.split(","))
    results, ratios = {}, []
    for loss in sorted({lucic.loss_of(c.to_dict()) for c in configs}):
        if wanted is not None and loss not in wanted:
            continue
        of_loss = [c for c in configs if lucic.loss_of(c.to_dict()) == loss]
        key, _ = collections.Counter(c.group_key() for c in of_loss).most_common(1)[0]
        group = [c for c in of_loss if c.group_key() == key][: args.members]
        together = step_seconds(group, data, judge, CPU, k1, k2, args.repeats)
        alone = [step_seconds([c], data, judge, CPU, k1, k2, args.repeats) for c in group[: args.alone]]
        per_member_alone = sum(alone) / len(alone)
        ratio = per_member_alone * len(group) / together
        ratios.append(ratio)
        flops = flops_per_step(group[0])
        results[loss] = {"members": len(group), "disc_iters": group[0].disc_iters,
                         "batch_norm_d": group[0].batch_norm_d, "group_member_steps_per_s": len(group) / together,
                         "alone_member_steps_per_s": 1 / per_member_alone, "stacked_over_alone": ratio,
                         "group_matmul_gflops": flops * len(group) / together / 1e9,
                         "alone_matmul_gflops": flops / per_member_alone / 1e9}
        print(f"{loss:9s} B={len(group):2d} n_disc={group[0].disc_iters} bn={group[0].batch_norm_d!s:5s}: "
              f"{len(group) / together:8.1f} member-steps/s stacked ({results[loss]['group_matmul_gflops']:5.1f} "
              f"GFLOP/s), {1 / per_member_alone:7.1f} alone ({results[loss]['alone_matmul_gflops']:5.1f} GFLOP/s): "
              f"{ratio:5.2f}x", flush=True)
    summary = {"cpu": cpu_description(), "profile": args.profile, "steps": [k1, k2], "threads": args.threads,
               "matmul_peak_gflops": peak / 1e9, "losses": results,
               "geometric_mean_ratio": math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None}
    print(f"geometric mean over the losses: {summary['geometric_mean_ratio']:.2f}x")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
