"""The budget curve behind the `laptop` profile: I' against training steps for the Fig. 4 presets at several widths.

Each (preset, width) trains its seeds as one stacked group and is scored every ``--score-every`` steps on
``--score-samples`` samples (``train_group``'s interim scores, from streams of their own). Rows are appended to
``<out>/budget_curve.csv`` group by group, so a rerun skips what is there; the figure is redrawn from the CSV:

    python -m sweeps.table1.calibrate_budget             # fig4a/b/c x widths 1/16, 1/8, 1/4, 1/2 x 3 seeds
    python -m sweeps.table1.calibrate_budget --figure-only
    python -m sweeps.table1.calibrate_budget --images    # the convolutional presets at 32x32, widths 1/8, 1/4

The question it answers: at which (width, steps) do the good settings of both families form digits (the issue's
bar: fig4b I' >= 3 and fig4a, the paper's best GAN, I' >= 1.5; for the convolutional presets, conv-dcgan and
conv-ebgan-pt I' >= 3), and what would the whole grid cost there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

if TYPE_CHECKING:
    from sweeps.table1.grids import ImageBudget

COLUMNS = ["preset", "width_divisor", "size_g", "size_d", "seed", "step", "status", "i_prime", "frechet_distance",
           "classes_present", "group_seconds", "steps_total", "score_samples", "code_version"]
BARS = {"fig4a": 1.5, "fig4b": 3.0, "conv-dcgan": 3.0, "conv-ebgan-pt": 3.0}  # the "digits form" bars
IMAGE_PRESETS, IMAGE_DIVISORS = "conv-dcgan,conv-ebgan,conv-ebgan-pt", "8,4"  # --images' defaults


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", action="store_true",
                        help=f"the convolutional presets ({IMAGE_PRESETS}) at the laptop profile's image size, widths "
                        f"divided by {IMAGE_DIVISORS}, into <out>/images")
    parser.add_argument("--presets", default=None, help="default: fig4a,fig4b,fig4c (--images: the conv presets)")
    parser.add_argument("--divisors", default=None, help="widths are divided by these (default 16,8,4,2; --images: "
                        f"{IMAGE_DIVISORS})")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--score-every", type=int, default=250)
    parser.add_argument("--score-samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("results/calibration"))
    parser.add_argument("--figure-only", action="store_true", help="redraw the figure from the CSV")
    args = parser.parse_args(argv)
    if args.images:
        args.out = args.out / "images"
    args.presets = args.presets or (IMAGE_PRESETS if args.images else "fig4a,fig4b,fig4c")
    args.divisors = args.divisors or (IMAGE_DIVISORS if args.images else "16,8,4,2")
    return args


def calibrate(args: argparse.Namespace) -> None:
    """Train and score every (preset, divisor) group not yet in the CSV."""
    from ebgan_core.data import load_mnist
    from ebgan_core.progress import progress_bar
    from ebgan_core.provenance import code_version
    from ebgan_core.table1.classifier import load_classifier
    from ebgan_core.table1.config import PRESETS
    from ebgan_core.table1.train import train_group

    csv = args.out / "budget_curve.csv"
    done = set()
    if csv.exists():
        done = {(p, int(d)) for p, d in pd.read_csv(csv)[["preset", "width_divisor"]].drop_duplicates().itertuples(
            index=False)}
    presets = args.presets.split(",")
    unknown = sorted(set(presets) - set(PRESETS))
    if unknown:
        raise SystemExit(f"error: unknown preset {unknown[0]!r}; use some of {', '.join(PRESETS)}")
    data, judge = load_mnist("train")[0], load_classifier()[0]
    version = code_version()
    seeds = [int(s) for s in args.seeds.split(",")]
    for preset in presets:
        for divisor in (int(d) for d in args.divisors.split(",")):
            if (preset, divisor) in done:
                continue
            base = PRESETS[preset]
            if base.architecture == "conv":
                base = base.replace(image_size=laptop_images().image_size(base.image_size))
            configs = [base.widths_divided_by(divisor).replace(steps=args.steps, batch_size=64,
                                                               score_samples=args.score_samples, seed=seed)
                       for seed in seeds]
            bar = progress_bar(args.steps, f"{preset} widths/{divisor}")
            started = time.perf_counter()
            results = train_group(configs, data, judge, score_steps=range(args.score_every, args.steps,
                                                                          args.score_every),
                                  progress=lambda step, total, bar=bar: bar.update(step - bar.n))
            bar.close()
            seconds = time.perf_counter() - started
            rows = []
            for result in results:
                scored = {**result.interim_scores, **({args.steps: result.scores} if result.scores else {})}
                for step, scores in sorted(scored.items()):
                    config = result.config
                    widths = (config.width, config.width) if config.architecture == "conv" else (config.size_g,
                                                                                                 config.size_d)
                    rows.append([preset, divisor, *widths, result.config.seed,
                                 step, result.status, scores["i_prime"], scores["frechet_distance"],
                                 scores["classes_present"], seconds, args.steps, args.score_samples, version])
            frame = pd.DataFrame(rows, columns=COLUMNS)
            args.out.mkdir(parents=True, exist_ok=True)
            frame.to_csv(csv, mode="a", header=not csv.exists(), index=False)
            final = frame[frame.step == args.steps].i_prime
            print(f"[calibrate] {preset} widths/{divisor}: final I' {final.mean():.2f} (seeds {final.min():.2f}-"
                  f"{final.max():.2f}) after {args.steps} steps, {seconds:.0f} s", flush=True)


def laptop_images() -> ImageBudget:
    """The laptop profile's budget for convolutional configs."""
    from sweeps.table1.grids import PROFILES

    return PROFILES["laptop"].images


def draw(csv: Path) -> Path:
    """I' (mean over seeds, band min-max) against steps, one panel per preset, one line per width (a convolutional
    preset's: the maps of D's first layer in both columns, size_g and size_d)."""
    from ebgan_core.table1.config import PRESETS
    from sweeps.table1.grids import PROFILES

    laptop = PROFILES["laptop"]
    frame = pd.read_csv(csv)
    presets = list(dict.fromkeys(frame.preset))
    fig, axes = plt.subplots(1, len(presets), figsize=(5 * len(presets), 4), sharey=True, squeeze=False)
    for ax, preset in zip(axes[0], presets, strict=True):
        part = frame[frame.preset == preset]
        for divisor, rows in sorted(part.groupby("width_divisor"), reverse=True):
            stats = rows.groupby("step").i_prime.agg(["mean", "min", "max", "count"])
            first = rows.iloc[0]
            line, = ax.plot(stats.index, stats["mean"], label=f"widths/{divisor} (G {first.size_g}, D {first.size_d})")
            ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.15)
        if preset in BARS:
            ax.axhline(BARS[preset], color="grey", linestyle=":", label=f"bar: I' {BARS[preset]:g}")
        budget = laptop.images if PRESETS[preset].architecture == "conv" else laptop
        ax.axvline(budget.steps, color="black", linestyle="--", linewidth=0.8,
                   label=f"laptop profile: widths/{budget.width_divisor}, {budget.steps} steps")
        seeds = part.seed.nunique()
        ax.set(title=f"{preset} ({seeds} seeds: mean, band min-max)", xlabel="training steps (batch 64)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel(f"I' ({int(frame.score_samples.iloc[0])} samples)")
    kind = "convolutional" if all(PRESETS[p].architecture == "conv" for p in presets) else "Fig. 4"
    fig.suptitle(f"Budget curve: I' of the {kind} presets against steps, by width (fp32, CPU)")
    fig.tight_layout()
    out = csv.with_suffix(".png")
    fig.savefig(out, dpi=110)
    fig.savefig(csv.with_suffix(".svg"))
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.figure_only:
        calibrate(args)
    csv = args.out / "budget_curve.csv"
    if not csv.exists():
        print(f"error: {csv} not found; fix: run without --figure-only first", file=sys.stderr)
        return 2
    print(f"[calibrate] figure: {draw(csv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
