"""Every `ebgan` command and option says what it does; the sweep's usage names the program run; the old `--budget`
still works and says it is `--trials` now."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parsers(parser: argparse.ArgumentParser, name: str = "ebgan"):
    """(name, parser) of ``parser`` and every subcommand below it."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


def test_every_command_and_option_has_a_help_text():
    from analysis.command import build_parser
    from sweeps.mnist_grid import build_parser as sweep_parser

    missing = []
    for name, parser in [*parsers(build_parser()), ("ebgan sweep", sweep_parser("ebgan sweep"))]:
        if name != "ebgan sweep" and name != "ebgan" and not parser.description:
            missing.append(f"{name}: no description")
        missing += [f"{name} {action.option_strings or action.dest}: no help" for action in parser._actions
                    if not action.help and not isinstance(action, argparse._SubParsersAction)]
    assert missing == []


def test_the_sweeps_usage_names_the_program_run_and_the_old_budget_flag_still_works(tmp_path):
    script = subprocess.run([sys.executable, "sweeps/mnist_grid.py", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert script.stdout.startswith("usage: mnist_grid.py")
    command = subprocess.run([str(Path(sys.executable).parent / "ebgan"), "sweep", "--help"], capture_output=True,
                             text=True, timeout=120)
    assert command.stdout.startswith("usage: ebgan sweep")
    old = subprocess.run([sys.executable, "sweeps/mnist_grid.py", "--search", "optuna", "--grid", "ebgan", "--budget",
                          "0", "--db", f"sqlite:///{tmp_path / 'r.sqlite'}"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert old.returncode == 2
    assert old.stderr.splitlines() == ["note: --budget is now --trials (the configs adaptive search tries); taking it "
                                       "as --trials", "error: --trials must be >= 1, got 0"]
