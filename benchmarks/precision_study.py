"""Does bf16 change the science? I' of the same Table 1 configs and seeds trained in fp32 and in bf16.

A stratified random sample of Table 1 (``--per-family`` EBGAN and GAN configs, fixed sampling seed) at
widths / ``--width-divisor``, ``--steps`` steps, batch 64, I' on ``--score-samples`` samples, each config
with ``--seeds`` seeds (one stacked group per config and precision). Every run is appended to a CSV as it
finishes; rerunning resumes (runs already in the CSV are skipped).

The comparison (printed, and written as JSON beside the CSV):
- paired differences per config, bf16 mean minus fp32 mean over seeds: their mean with a 95% bootstrap CI
  (scipy), and a Wilcoxon signed-rank p-value;
- the seed spread: per config and precision the standard deviation of I' over seeds, pooled;
- the headline comparison, in the same units: the root-mean-square difference between two runs that differ
  only in precision (same config, same seed) against two runs that differ only in seed (same config, same
  precision), and their ratio with a 95% bootstrap CI over configs. If bf16 acts like another seed or less, the
  ratio is at most 1.

    python benchmarks/precision_study.py [--steps 1000] [--width-divisor 4] [--per-family 16] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from ebgan_core.cli import resolve_device
from ebgan_core.data import load_mnist
from ebgan_core.precision import native_bf16
from ebgan_core.table1.classifier import load_classifier
from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.train import train_group
from sweeps.table1.grids import grid

FIELDS = ("config_hash", "family", "config", "precision", "seed", "status", "i_prime", "seconds")
SAMPLING_SEED = 20261125


def study_configs(per_family: int, divisor: int, steps: int, score_samples: int) -> list[TrialConfig]:
    """``per_family`` configs of each Table 1 family, drawn without replacement, at widths / ``divisor``."""
    rng = np.random.default_rng(SAMPLING_SEED)
    chosen = []
    for family in ("ebgan", "gan"):
        table = grid(family, "paper")
        for index in sorted(rng.choice(len(table), size=per_family, replace=False)):
            config = table[int(index)]
            chosen.append(config.replace(size_g=config.size_g // divisor, size_d=config.size_d // divisor,
                                         steps=steps, score_samples=score_samples))
    return chosen


def read_runs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def append_runs(path: Path, rows: list[dict]) -> None:
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def run_study(configs: list[TrialConfig], seeds: list[int], path: Path, device: torch.device) -> None:
    """Train every (config, precision) group of seeds not yet in the CSV."""
    done = {(r["config_hash"], r["precision"], int(r["seed"])) for r in read_runs(path)}
    judge, _ = load_classifier(device=device)
    data = load_mnist("train")[0]
    todo = [(c, p) for c, p in itertools.product(configs, ("fp32", "bf16"))
            if any((c.replace(precision="fp32").config_hash(), p, s) not in done for s in seeds)]
    print(f"{len(configs)} configs x {len(seeds)} seeds x 2 precisions: {len(todo)} groups to train", flush=True)
    started = time.monotonic()
    for index, (config, precision) in enumerate(todo, 1):
        group = [config.replace(precision=precision, seed=s) for s in seeds]
        results = train_group(group, data, judge, device=device)
        append_runs(path, [{
            "config_hash": config.replace(precision="fp32").config_hash(), "family": config.family,
            "config": config.short_name(), "precision": precision, "seed": r.config.seed, "status": r.status,
            "i_prime": r.scores["i_prime"] if r.scores else "", "seconds": f"{r.seconds:.2f}"} for r in results])
        scores = ", ".join(f"{r.scores['i_prime']:.2f}" if r.scores else r.status for r in results)
        elapsed = time.monotonic() - started
        print(f"[{index}/{len(todo)}] {precision} {config.short_name()}: I' {scores} "
              f"({elapsed / 60:.1f} min, ETA {elapsed / index * (len(todo) - index) / 60:.0f} min)", flush=True)


def rms(values: list[float]) -> float:
    return math.sqrt(float(np.mean(np.square(values)))) if values else math.nan


def summarise(path: Path) -> dict:
    """The comparison described in the module docstring, from the CSV (diverged runs count as I' = 0)."""
    runs = read_runs(path)
    table: dict[tuple[str, str], dict[int, float]] = {}
    families: dict[str, str] = {}
    for r in runs:
        table.setdefault((r["config_hash"], r["precision"]), {})[int(r["seed"])] = float(r["i_prime"] or 0.0)
        families[r["config_hash"]] = r["family"]
    configs = sorted({h for h, p in table if (h, "fp32") in table and (h, "bf16") in table
                      and table[h, "fp32"].keys() == table[h, "bf16"].keys()})
    paired, cross_precision, cross_seed, seed_sd = [], [], [], []
    per_config_squares = []  # (mean squared cross-precision difference, mean squared cross-seed difference)
    for h in configs:
        fp32, bf16 = table[h, "fp32"], table[h, "bf16"]
        paired.append(np.mean(list(bf16.values())) - np.mean(list(fp32.values())))
        precision_pairs = [bf16[s] - fp32[s] for s in fp32]
        seed_pairs = [a - b for scores in (fp32, bf16) for a, b in itertools.combinations(list(scores.values()), 2)]
        cross_precision += precision_pairs
        cross_seed += seed_pairs
        per_config_squares.append((np.mean(np.square(precision_pairs)), np.mean(np.square(seed_pairs))))
        seed_sd += [float(np.std(list(scores.values()), ddof=1)) for scores in (fp32, bf16)]
    paired = np.array(paired)
    summary: dict = {"csv": str(path), "configs": len(configs), "runs": len(runs),
                     "families": {f: sum(families[h] == f for h in configs) for f in ("ebgan", "gan")}}
    if len(configs) >= 2:
        ci = stats.bootstrap((paired,), np.mean, confidence_level=0.95, n_resamples=10_000,
                             random_state=0).confidence_interval
        nonzero = paired[paired != 0]
        summary |= {
            "fp32_mean_i_prime": float(np.mean([np.mean(list(table[h, "fp32"].values())) for h in configs])),
            "bf16_mean_i_prime": float(np.mean([np.mean(list(table[h, "bf16"].values())) for h in configs])),
            "paired_difference_mean": float(paired.mean()),
            "paired_difference_ci95": [float(ci.low), float(ci.high)],
            "paired_difference_sd": float(paired.std(ddof=1)),
            "wilcoxon_p": float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) >= 2 else math.nan,
            "seed_sd_pooled": rms(seed_sd),
            "rms_difference_cross_precision": rms(cross_precision),
            "rms_difference_cross_seed": rms(cross_seed),
        }
        summary["precision_effect_within_seed_spread"] = (
            summary["rms_difference_cross_precision"] <= summary["rms_difference_cross_seed"])
        precision_sq, seed_sq = (np.array(column) for column in zip(*per_config_squares, strict=True))

        def rms_ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
            return np.sqrt(np.mean(a, axis=axis) / np.mean(b, axis=axis))

        ratio_ci = stats.bootstrap((precision_sq, seed_sq), rms_ratio, paired=True, n_resamples=10_000,
                                   random_state=0).confidence_interval
        summary["rms_ratio_cross_precision_to_cross_seed"] = float(rms_ratio(precision_sq, seed_sq))
        summary["rms_ratio_ci95_over_configs"] = [float(ratio_ci.low), float(ratio_ci.high)]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--width-divisor", type=int, default=4)
    parser.add_argument("--per-family", type=int, default=16)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--score-samples", type=int, default=1000)
    parser.add_argument("--csv", type=Path, default=Path("benchmarks/results/precision_study.csv"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--summary-only", action="store_true", help="analyse the CSV, train nothing")
    args = parser.parse_args()
    device = resolve_device(args.device)
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.summary_only:
        print(f"device {device}: bf16 GEMMs {'native' if native_bf16(device) else 'emulated (no bf16 hardware)'}; "
              f"budget: widths / {args.width_divisor}, {args.steps} steps, batch 64, "
              f"I' on {args.score_samples} samples", flush=True)
        configs = study_configs(args.per_family, args.width_divisor, args.steps, args.score_samples)
        run_study(configs, seeds, args.csv, device)
    summary = summarise(args.csv) | {"budget": {"width_divisor": args.width_divisor, "steps": args.steps,
                                                "batch_size": 64, "score_samples": args.score_samples,
                                                "seeds": seeds}, "bf16_native": native_bf16(device)}
    args.csv.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
