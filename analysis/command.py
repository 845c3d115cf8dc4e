"""The `ebgan` command, the one entry point of every user command: its composition root, in the top layer, so that
the imports all point down (it registers the commands of ebgan_core, sweeps and analysis; nothing imports it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.cli import add_analysis_commands
from analysis.db import AnalysisError
from ebgan_core.checkpoint import CheckpointError
from ebgan_core.cli import OneLineParser, add_classifier_commands, add_command, add_train_command
from ebgan_core.data import MnistDataError
from ebgan_core.registry import PLUGIN_HELP, use_plugins
from ebgan_core.table1.classifier import ClassifierFileError
from sweeps.store.connection import DB_HELP
from sweeps.table1.grids import PROFILES

DESCRIPTION = ("Reproduce and extend the EBGAN paper's studies (Table 1: the MNIST grid search; Table 2: the "
               "semi-supervised EBGAN-LN). Run a sweep, train one configuration, and read the results: figures, "
               "queries, a report, CSV exports. `ebgan COMMAND --help` tells more.")
USER_ERRORS = (MnistDataError, ClassifierFileError, CheckpointError, AnalysisError, ValueError, FileNotFoundError,
               PermissionError)


def build_parser() -> argparse.ArgumentParser:
    """The full `ebgan` argument parser."""
    parser = OneLineParser(prog="ebgan", description=DESCRIPTION)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_command(subparsers, "sweep", "run or resume a sweep (a grid of any study, or your own grid file) on Ray or "
                "in this process; `ebgan sweep --help` lists its options", add_help=False)
    add_classifier_commands(subparsers)
    add_train_command(subparsers, PROFILES)
    add_analysis_commands(subparsers)
    imported = add_command(subparsers, "import", "load a sweep's CSV export (`ebgan export`, e.g. a committed "
                           "reference under results/reference/) into a database, to explore or report it")
    imported.add_argument("trials_csv", type=Path, help="<sweep>_trials.csv (its _interim_scores.csv is read beside)")
    imported.add_argument("--db", default=None, help=DB_HELP)
    imported.add_argument("--name", default=None, help="sweep name to store it under (default: the export's)")
    imported.set_defaults(handler=_import)
    for name, command in subparsers.choices.items():
        if name != "sweep":  # the sweep's options are its script's, --plugin among them
            command.add_argument("--plugin", action="append", default=[], metavar="FILE", help=PLUGIN_HELP)
    return parser


def _import(args: argparse.Namespace) -> None:
    from sweeps.store.import_export import import_export

    name, stored = import_export(args.trials_csv, args.db, name=args.name)
    print(f"stored {stored} trials as sweep {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Run one `ebgan` command; user errors print one line and exit with status 2, Ctrl-C one line and 130."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sweep"]:  # its options are the sweep script's own
        from sweeps.mnist_grid import main as sweep_main

        raise SystemExit(sweep_main(argv[1:], prog="ebgan sweep"))
    args = build_parser().parse_args(argv)
    try:
        use_plugins(args.plugin)
        args.handler(args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback (what is already written stays)
        print(f"stopped: ebgan {argv[0]} interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
