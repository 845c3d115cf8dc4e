"""The sweep as a user runs it against the plain script a user would write without this project
(``benchmarks/plain_script.py``: one Ray Tune trial per config, 1 CPU each, textbook PyTorch, one final I' score), on
the same configs, one after the other in one run on this machine.

The configs: 48 GAN configs of the balanced subset (its 8 shapes x 6 optimiser settings: Adam/Adam and SGD/SGD at
each Table 1 lr, no dropout) at a profile's budget (default ``laptop``: widths / 16, 3,500 steps, I' on 1,000
samples). The project runs them as ``sweeps/mnist_grid.py`` would, with the profile's interim scores, once per
variant of its options (``--variant NAME=--flag,value,...``; the first is its defaults). Prints and writes as JSON
each wall time and its ratio to the plain script's.

    python benchmarks/vs_plain_script.py [--profile laptop] [--steps N] [--variant one-cpu=--cpus-per-group,1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.families import GAN_DEMO_SHAPES, GAN_LRS
from sweeps.table1.grids import PROFILES

REPO = Path(__file__).resolve().parent.parent
PROJECT = """
import json, sys
from ebgan_core.table1.config import TrialConfig
from sweeps.driver import run_configs
from sweeps.mnist_grid import build_parser, settings_from_args
configs = [TrialConfig.from_dict(c) for c in json.load(open(sys.argv[1]))]
counts = run_configs(configs, settings_from_args(build_parser().parse_args(sys.argv[2:])))
assert counts["remaining"] == 0, counts
"""


def benchmark_configs(profile: str, steps: int | None) -> list[TrialConfig]:
    """8 GAN shapes of the balanced subset x 6 optimiser settings, at ``profile``'s budget (``steps`` overrides)."""
    sizing = PROFILES[profile]
    configs = []
    for n_g, n_d, size_g, size_d in GAN_DEMO_SHAPES:
        for kind in ("adam", "sgd"):
            for lr in GAN_LRS:
                config = sizing.size(TrialConfig(family="gan", n_layer_g=n_g, n_layer_d=n_d, size_g=size_g,
                                                 size_d=size_d, dropout_d=False, optim_d=kind, optim_g=kind, lr=lr))
                configs.append(config.replace(steps=steps) if steps else config)
    return configs


def timed(command: list[str], log) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed: {done.stderr[-1500:]}")
    log(f"  {seconds:.0f} s: {' '.join(command[2:])[:150]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="laptop", choices=sorted(PROFILES))
    parser.add_argument("--steps", type=int, default=None, help="train this many steps instead of the profile's")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=FLAG,VALUE,...",
                        help="a variant of the project's sweep options, e.g. one-cpu=--cpus-per-group,1")
    parser.add_argument("--json", type=Path, default=Path("results/benchmarks/vs_plain_script.json"))
    args = parser.parse_args()
    log = lambda line: print(line, flush=True)  # noqa: E731
    configs = benchmark_configs(args.profile, args.steps)
    variants = {"defaults": []} | {v.split("=", 1)[0]: v.split("=", 1)[1].split(",") for v in args.variant}
    report: dict = {"configs": len(configs), "profile": args.profile, "steps": configs[0].steps, "seconds": {}}
    with tempfile.TemporaryDirectory(prefix="ebgan-vs-plain-") as folder:
        listing = Path(folder) / "configs.json"
        listing.write_text(json.dumps([c.to_dict() for c in configs]))
        log(f"{len(configs)} GAN configs at the {args.profile} budget ({configs[0].steps} steps); plain script:")
        report["seconds"]["plain"] = timed([sys.executable, "benchmarks/plain_script.py", "--configs", str(listing),
                                            "--out", str(Path(folder) / "plain.json")], log)
        score_every = PROFILES[args.profile].score_every
        for name, flags in variants.items():
            log(f"the project ({name}):")
            db = f"sqlite:///{Path(folder) / (name + '.sqlite')}"
            report["seconds"][name] = timed([sys.executable, "-c", PROJECT, str(listing), "--grid", "gan",
                                             "--profile", args.profile, "--db", db, "--quiet", *flags], log)
            report[f"project_{name}_vs_plain"] = report["seconds"]["plain"] / report["seconds"][name]
            log(f"  {report[f'project_{name}_vs_plain']:.2f}x the plain script's speed (score every {score_every})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
