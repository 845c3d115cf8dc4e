"""Entry script of a sweep: `python sweeps/mnist_grid.py --profile demo` on a laptop (local Ray), or
`ray submit sweeps/cluster.yaml sweeps/mnist_grid.py -- --grid all --profile paper` on a cluster.

Grids of both studies: Table 1 (all, ebgan, gan, ebgan-pt, margin, a grid per other loss, and lucic: Lucic et al.'s
sampled study of every loss) and the semi-supervised Table 2 (table2, ln, ebgan-ln, mlp); or your own grid file:
`--grid my_grid.toml` (see results/grids/).

Running the same command again resumes: stored configs are skipped. Ctrl-C ends the running groups; the same command
again resumes them from their last checkpoints.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweeps.settings import SweepSettings


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The sweep's options; ``prog``: the command's name in its usage (default: the script run)."""
    from ebgan_core.cli import OneLineParser
    from ebgan_core.registry import PLUGIN_HELP
    from ebgan_core.table1.config import PRECISIONS
    from sweeps.store.connection import DB_HELP
    from sweeps.studies import STUDIES

    parser = OneLineParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    grids = "; ".join(f"{name}: {', '.join(study.grids())}" for name, study in STUDIES.items())
    profiles = "; ".join(f"{name}: {', '.join(study.profiles)} (default {study.default_profile})"
                         for name, study in STUDIES.items())
    parser.add_argument("--grid", default="all", help=f"a grid ({grids}) or a grid file ending in .toml "
                        "(default: all)")
    parser.add_argument("--profile", default=None, help=f"how the grid is sized ({profiles})")
    parser.add_argument("--db", default=None, help=DB_HELP)
    parser.add_argument("--address", default=None, help="Ray address to join ('auto' on a cluster); "
                        "default: start a local Ray")
    parser.add_argument("--cpus-per-group", type=float, default=None,
                        help="default: this machine's CPUs shared among the groups, at least 1 each (1 on a cluster)")
    parser.add_argument("--gpus-per-group", type=float, default=0.0, help="fractional GPUs allowed (default 0)")
    parser.add_argument("--max-concurrent", type=int, default=0, help="groups at once (default: by resources)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds, each config runs once per seed "
                        "(default: the profile's or grid file's; Table 1: 0)")
    parser.add_argument("--samples", type=int, default=None,
                        help="--grid lucic: settings drawn per loss (default 100, as Lucic et al.)")
    parser.add_argument("--best-of", default=None, metavar="SWEEP",
                        help="phase 3 of a lucic study: train the best setting of each loss of the stored sweep SWEEP "
                             "(lowest Fréchet distance) once per seed of --seeds (default 1-10, fresh); sweep name "
                             "SWEEP-best")
    parser.add_argument("--name", default=None, help="sweep name (default: <grid>-<profile>); reruns resume it")
    parser.add_argument("--max-members", type=int, default=None, help="members per stacked group (default: profile's)")
    parser.add_argument("--group-memory-gib", type=float, default=None,
                        help="memory one group may use; members beyond it train in waves (default: the group's "
                        "share of its node's memory)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="matmul precision: fp32, or bf16 GEMMs over float32 weights (default: the profile's); "
                        "a precision other than the profile's gets its own sweep name")
    parser.add_argument("--search", choices=("grid", "optuna"), default="grid",
                        help="grid: every config of --grid; optuna: adaptive search (TPE) over one grid's space "
                        "(Table 1: ebgan or gan; Table 2: ln or ebgan-ln)")
    parser.add_argument("--trials", type=int, default=64, help="--search optuna: configs to try in all (default 64)")
    parser.add_argument("--budget", type=int, default=None, dest="old_budget", help=argparse.SUPPRESS)  # --trials'
    # name before: a budget is widths x steps everywhere else
    parser.add_argument("--continuous", action="store_true",
                        help="--search optuna: ranges instead of the grid's values (Table 1: log-uniform lr, EBGAN "
                        "also margin and pT weight; LN: reconstruction weight and lr)")
    parser.add_argument("--retries", type=int, default=2,
                        help="times a group whose worker or node died reruns before it is stored failed (default 2)")
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0,
                        help="a group saves its training state this often, so one rerun after its worker or node "
                        "died resumes mid-training (default 10; 0: never)")
    parser.add_argument("--storage-path", default="results/ray",
                        help="where Tune keeps its state and group checkpoints; on a cluster, one every node can "
                        "reach (s3://bucket/ray, an NFS mount) for groups to resume on another node "
                        "(default: results/ray)")
    parser.add_argument("--executor", choices=("ray", "local"), default="ray",
                        help="ray: groups as Ray Tune trials, in parallel (default); local: one after another in this "
                        "process, without Ray (a machine without Ray, or debugging a group)")
    parser.add_argument("--images", default=None, metavar="DIR",
                        help="train the convolutional configs (--grid images, images-presets, or a grid file of "
                        "architecture conv) on this folder of PNG or JPEG images instead of MNIST: decoded once into a "
                        "cache named by the listing's checksum; no I' (the judge knows digits only): FID with "
                        "--fid-weights, else sample grids and curves only")
    parser.add_argument("--fid-weights", default=None, metavar="FILE",
                        help="with --images: score runs by FID against the folder, from pytorch-fid's InceptionV3 "
                        "weights file (pt_inception-2015-12-05-6726825d.pth; yours, checksummed, never downloaded)")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE", help=PLUGIN_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress lines (errors and the summary still print)")
    return parser


def settings_from_args(args: argparse.Namespace) -> SweepSettings:
    """The sweep settings the parsed command line asks for (a bad seed list or grid is a ValueError)."""
    from sweeps.settings import SweepSettings, is_grid_file
    from sweeps.studies import search_study, study_of_grid

    try:
        seeds = None if args.seeds is None else tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    profile = args.profile
    if profile is None:
        find = search_study if args.search == "optuna" else study_of_grid
        profile = "file" if is_grid_file(args.grid) else find(args.grid).default_profile
    return SweepSettings(grid=args.grid, profile=profile, db_url=args.db, address=args.address,
                         cpus_per_group=args.cpus_per_group, gpus_per_group=args.gpus_per_group,
                         max_concurrent=args.max_concurrent, seeds=seeds, name=args.name, samples=args.samples,
                         best_of=args.best_of,
                         max_members=args.max_members, group_memory_gib=args.group_memory_gib, quiet=args.quiet,
                         search=args.search, precision=args.precision, retries=args.retries,
                         checkpoint_minutes=args.checkpoint_minutes, storage_path=args.storage_path,
                         executor=args.executor, images=args.images, fid_weights=args.fid_weights)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from ebgan_core.registry import use_plugins
    from sweeps.driver import run_sweep
    from sweeps.store.connection import StoreError

    args = build_parser(prog).parse_args(argv)
    if args.old_budget is not None:
        print("note: --budget is now --trials (the configs adaptive search tries); taking it as --trials",
              file=sys.stderr)
        args.trials = args.old_budget
    try:
        use_plugins(args.plugin)
        settings = settings_from_args(args)
        if args.search == "optuna":
            from sweeps.adaptive import run_optuna  # Ray and Optuna are needed only here

            counts = run_optuna(settings, args.trials, args.continuous)
        else:
            counts = run_sweep(settings)
    except (ValueError, StoreError, ConnectionError, OSError, RuntimeError) as exc:
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    if counts["remaining"]:
        unrun = counts["remaining"] - (0 if "trials" in counts else counts["failed"])
        print(f"[sweep] {counts['stored']}/{counts['total']} configs stored; {counts['failed']} failed (their "
              f"tracebacks are in the trials table), {unrun} not run; the same command again retries them")
        return 1
    if "trials" in counts:
        print(f"[sweep] done: {counts['trials']}/{counts['total']} trials, {counts['stored']} distinct configs "
              f"stored ({counts['new']} new)")
    else:
        print(f"[sweep] done: {counts['stored']}/{counts['total']} configs stored ({counts['new']} new)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
