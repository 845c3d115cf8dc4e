"""`ebgan figures`, `ebgan query`, `ebgan report`, `ebgan export`, `ebgan table2`, `ebgan status`, `ebgan explore`:
everything from the database, nothing rerun."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.db import AnalysisError
from ebgan_core.cli import add_command
from sweeps.store.connection import DB_HELP


def add_analysis_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the analysis commands on the `ebgan` parser."""
    figures = add_command(subparsers, "figures", "draw every figure the database supports (the paper's Figs. 2, 3, 4, "
                          "9 and 10, and those beyond it) as PNG and SVG files")
    figures.add_argument("--db", default=None, help=DB_HELP)
    figures.add_argument("--out", type=Path, default=Path("results/figures"),
                         help="folder to write them to (default results/figures)")
    figures.set_defaults(handler=_figures)

    query = add_command(subparsers, "query", "filter and rank stored trials (any column; no SQL needed)")
    query.add_argument("--db", default=None, help=DB_HELP)
    query.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE[,VALUE]",
                       help="keep rows whose column equals one of the values; repeatable")
    query.add_argument("--study", choices=("table1", "table2"), default="table1",
                       help="which study's trials (default table1)")
    query.add_argument("--min-i-prime", type=float, default=None, metavar="I_PRIME",
                       help="keep runs scoring at least this I' (the judge's modified inception score)")
    query.add_argument("--sort-by", default=None, metavar="COLUMN",
                       help="rank by this column (default: i_prime, highest first; table2: test_error, lowest first)")
    query.add_argument("--ascending", action="store_true", help="lowest first (with --sort-by)")
    query.add_argument("--top", type=int, default=10, help="rows to print; 0 for all (default 10)")
    query.add_argument("--columns", default=None, help="comma-separated columns (default: config and scores)")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table",
                       help="how to print the rows (default table)")
    query.set_defaults(handler=_query)

    report = add_command(subparsers, "report", "write one self-contained HTML page of the results: statistics per "
                         "profile, figures, best runs with their samples, sweeps")
    report.add_argument("--db", default=None, help=DB_HELP)
    report.add_argument("--figures", type=Path, default=Path("results/figures"),
                        help="folder of figures to embed, drawn there first if it holds none (default results/figures)")
    report.add_argument("--out", type=Path, default=Path("results/report.html"),
                        help="the page to write (default results/report.html)")
    report.set_defaults(handler=_report)

    table2 = add_command(subparsers, "table2", "print Table 2: semi-supervised test error (%%), mean ± std over "
                         "seeds per model and label count, beside the paper's numbers")
    table2.add_argument("--db", default=None, help=DB_HELP)
    table2.add_argument("--sweep", default=None, help="only this sweep (default: all semi-supervised sweeps)")
    table2.add_argument("--format", choices=("table", "csv"), default="table", help="how to print it (default table)")
    table2.set_defaults(handler=_table2)

    export = add_command(subparsers, "export", "write every trial of a sweep (config, status, scores, provenance; no "
                         "images) and its interim scores as CSV")
    export.add_argument("--db", default=None, help=DB_HELP)
    export.add_argument("--sweep", required=True, help="sweep name (`ebgan status` lists them)")
    export.add_argument("--out", type=Path, default=Path("results/export"),
                        help="folder for <sweep>_trials.csv and <sweep>_interim_scores.csv (default results/export)")
    export.set_defaults(handler=_export)

    status = add_command(subparsers, "status", "every sweep in the database: configs stored of its total, failed, "
                         "diverged, the driver running it (host:pid, last heartbeat) and its ETA")
    status.add_argument("--db", default=None, help=DB_HELP)
    status.set_defaults(handler=_status)

    explore = add_command(subparsers, "explore", "an interactive page over a study's runs (parallel coordinates, "
                          "histograms, table, samples along training), served read-only on 127.0.0.1")
    explore.add_argument("--db", default=None, help=DB_HELP)
    explore.add_argument("--port", type=int, default=8050, help="port on 127.0.0.1 (default 8050; 0: any free one)")
    explore.set_defaults(handler=_explore)


def _explore(args: argparse.Namespace) -> None:
    from analysis.explore.server import serve

    server = serve(args.db, args.port)
    print(f"ebgan explore: http://127.0.0.1:{server.server_address[1]}/ (read-only; Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _status(args: argparse.Namespace) -> None:
    from analysis.progress import status_table, sweep_progress

    print(status_table(sweep_progress(args.db)))


def _figures(args: argparse.Namespace) -> None:
    from analysis.figures import write_figures

    written, skipped = write_figures(args.db, args.out)
    for note in skipped:
        print(f"skipped {note}")
    print(f"wrote {len(written)} files to {args.out}/")


def _query(args: argparse.Namespace) -> None:
    from analysis.db import load_trials
    from analysis.query import TABLE2_COLUMNS, default_columns, filter_trials, rank_trials

    trials = load_trials(args.db, study=args.study)
    if trials.empty:
        raise AnalysisError(f"the database holds no {args.study} trials yet; run a sweep first")
    table2 = args.study == "table2"
    columns = tuple(args.columns.split(",")) if args.columns else TABLE2_COLUMNS if table2 else default_columns(trials)
    sort_by = args.sort_by or ("test_error" if table2 else "i_prime")
    ascending = args.ascending or (table2 and args.sort_by is None)
    result = rank_trials(filter_trials(trials, args.where, args.min_i_prime), by=sort_by, top=args.top or None,
                         ascending=ascending, columns=columns)
    if args.format == "csv":
        result.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(result.to_json(orient="records", indent=1))
    else:
        print(result.to_string(index=False) if not result.empty else "no matching trials")


def _report(args: argparse.Namespace) -> None:
    from analysis.report import write_report

    print(f"wrote {write_report(args.db, args.figures, args.out)}")


def _table2(args: argparse.Namespace) -> None:
    import pandas as pd

    from analysis.db import load_trials
    from analysis.table2.table import budget_text, table2

    trials = load_trials(args.db, args.sweep, study="table2")
    if trials.empty:
        raise AnalysisError("the database holds no semi-supervised trials; run `python sweeps/mnist_grid.py --grid "
                            "table2 --profile cpu` first, or pass --db URL")
    tables = {profile: table2(runs) for profile, runs in trials.groupby("profile", sort=False)}  # never pooled
    if args.format == "csv":
        pd.concat([t.assign(profile=p) for p, t in tables.items()]).to_csv(sys.stdout, index=False)
        return
    for profile, table in tables.items():
        print(f"Table 2, profile {profile}: {budget_text(trials[trials['profile'] == profile])}. "
              "Test error in %, mean ± std over seeds.")
        print(table.to_string(index=False), end="\n\n")


def _export(args: argparse.Namespace) -> None:
    from analysis.export import export_sweep

    for path in export_sweep(args.db, args.sweep, args.out):
        print(f"wrote {path}")
