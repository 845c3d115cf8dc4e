"""`ebgan figures`, `ebgan query`, `ebgan report`, `ebgan export`: everything from the database, nothing rerun."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.db import AnalysisError


def add_analysis_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the analysis commands on the `ebgan` parser."""
    figures = subparsers.add_parser("figures", help="draw the paper's figures from the database (PNG + SVG)")
    figures.add_argument("--db", default=None, help="database URL (default: $EBGAN_DB_URL or results/ebgan.sqlite)")
    figures.add_argument("--out", type=Path, default=Path("results/figures"))
    figures.set_defaults(handler=_figures)

    query = subparsers.add_parser("query", help="filter and rank stored trials")
    query.add_argument("--db", default=None)
    query.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE[,VALUE]",
                       help="keep rows whose column equals one of the values; repeatable")
    query.add_argument("--min-i-prime", type=float, default=None)
    query.add_argument("--sort-by", default="i_prime")
    query.add_argument("--ascending", action="store_true")
    query.add_argument("--top", type=int, default=10, help="0 for all rows (default 10)")
    query.add_argument("--columns", default=None, help="comma-separated columns (default: config and scores)")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.set_defaults(handler=_query)

    report = subparsers.add_parser("report", help="write one self-contained HTML page of the results")
    report.add_argument("--db", default=None)
    report.add_argument("--figures", type=Path, default=Path("results/figures"))
    report.add_argument("--out", type=Path, default=Path("results/report.html"))
    report.set_defaults(handler=_report)

    export = subparsers.add_parser("export", help="write every trial of a sweep (config, status, scores, provenance; "
                                   "no images) and its interim scores as CSV")
    export.add_argument("--db", default=None)
    export.add_argument("--sweep", required=True, help="sweep name (see the report's Sweeps table)")
    export.add_argument("--out", type=Path, default=Path("results/export"))
    export.set_defaults(handler=_export)


def _figures(args: argparse.Namespace) -> None:
    from analysis.figures import write_figures

    written, skipped = write_figures(args.db, args.out)
    for note in skipped:
        print(f"skipped {note}")
    print(f"wrote {len(written)} files to {args.out}/")


def _query(args: argparse.Namespace) -> None:
    from analysis.db import load_trials
    from analysis.query import DEFAULT_COLUMNS, filter_trials, rank_trials

    trials = load_trials(args.db)
    if trials.empty:
        raise AnalysisError("the database holds no trials yet; run a sweep first")
    columns = tuple(args.columns.split(",")) if args.columns else DEFAULT_COLUMNS
    result = rank_trials(filter_trials(trials, args.where, args.min_i_prime), by=args.sort_by, top=args.top or None,
                         ascending=args.ascending, columns=columns)
    if args.format == "csv":
        result.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(result.to_json(orient="records", indent=1))
    else:
        print(result.to_string(index=False) if not result.empty else "no matching trials")


def _report(args: argparse.Namespace) -> None:
    from analysis.report import write_report

    print(f"wrote {write_report(args.db, args.figures, args.out)}")


def _export(args: argparse.Namespace) -> None:
    from analysis.export import export_sweep

    for path in export_sweep(args.db, args.sweep, args.out):
        print(f"wrote {path}")
