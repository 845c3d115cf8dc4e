"""How fast `ebgan explore` is at the paper's study size, in a real headless Chromium: time to first view and time to
apply a filter, over a synthetic 7,175-run database (the committed reference's real rows, copied under new seeds).

    python benchmarks/explore_speed.py [--runs 7175] [--out benchmarks/results/explore-<cpu>.json]

Targets (issue 21): first view under 2 s, a filter under 0.5 s. Time to first view counts from the navigation to
the page drawn (parallel coordinates, histograms and table); a filter from selecting an axis range to the counts,
histograms and table showing it; the parallel coordinates' lines finish redrawing later (reported beside)."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analysis.explore.browser import chromium_page  # noqa: E402 (after the path)
from analysis.explore.server import serve  # noqa: E402
from sweeps.store.import_export import import_export, read_export  # noqa: E402

REFERENCE = REPO / "results" / "reference" / "all-laptop-balanced_trials.csv"

# A range selected on an axis as a drag does it (ECharts' axisAreaSelect; categorical axes in category indices):
# "seconds" until the counts, histograms and table show the selection, "lines_s" until every line is redrawn (the
# parallel coordinates redraw progressively, 1,000 lines a frame).
APPLY_FILTER = """async ([axis, low, high]) => {
  const chart = window.exploreCharts.pc, index = state.axes.findIndex((a) => a.name === axis);
  const before = window.exploreTimings.filters;
  const lines = new Promise((done) => chart.on("finished", function once() { chart.off("finished", once); done(); }));
  const started = performance.now();
  chart.dispatchAction({type: "axisAreaSelect", parallelAxisIndex: index, intervals: [[low, high]]});
  await lines;
  const ended = performance.now();
  if (window.exploreTimings.filters === before) throw new Error("the filter did not run");
  return {ms: window.exploreTimings.lastFilterAt - started, lines_ms: ended - started,
          selected: Number(document.getElementById("selected-count").textContent)};
}"""
FILTERS = (("lr", 0.5, 2.5), ("n_layer_g", -0.5, 0.5), ("size_d", 0.5, 2.5), ("optim_d", -0.5, 0.5),
           ("i_prime", 1.0, 10))
CLEAR = """() => state.axes.forEach((axis, index) => window.exploreCharts.pc.dispatchAction(
  {type: "axisAreaSelect", parallelAxisIndex: index, intervals: []}))"""


def cpu_model() -> str:
    """The CPU's model name and core count (the machine's speed varies between sessions)."""
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")]
    return f"{names[0] if names else 'unknown'} x {len(names)}"


def measure(url: str, loads: int = 3) -> dict[str, object]:
    """First view (``loads`` page loads) and every filter of ``FILTERS`` on the page served for ``url``."""
    server = serve(url, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{server.server_address[1]}/"
    first_views, filters = [], []
    try:
        with chromium_page() as page:
            for _ in range(loads):
                page.goto(address)
                page.wait_for_function("window.exploreTimings.firstView !== undefined", timeout=60_000)
                first_views.append(page.evaluate("window.exploreTimings.firstView") / 1000)
            for axis, low, high in FILTERS:
                result = page.evaluate(APPLY_FILTER, [axis, low, high])
                filters.append({"axis": axis, "seconds": result["ms"] / 1000, "lines_s": result["lines_ms"] / 1000,
                                "selected": result["selected"]})
                page.evaluate(CLEAR)
            runs = int(page.text_content("#total-count"))
    finally:
        server.shutdown()
        server.server_close()
    return {"runs": runs, "first_view_seconds": first_views, "first_view_median_s": statistics.median(first_views),
            "filters": filters, "filter_median_s": statistics.median(f["seconds"] for f in filters),
            "filter_max_s": max(f["seconds"] for f in filters),
            "lines_redrawn_median_s": statistics.median(f["lines_s"] for f in filters)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7175)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/synthetic.sqlite"
        copies = math.ceil(args.runs / len(read_export(REFERENCE)[0]))
        print(f"[explore] building a {args.runs}-run database from {REFERENCE.name} ({copies} copies)", flush=True)
        import_export(REFERENCE, url, copies=copies, limit=args.runs)
        database_mb = Path(folder, "synthetic.sqlite").stat().st_size / 2**20
        result = measure(url)
    result |= {"cpu": cpu_model(), "database_mb": round(database_mb, 1),
               "targets": {"first_view_s": 2.0, "filter_s": 0.5}}
    print(json.dumps(result, indent=1))
    print(f"[explore] {result['runs']} runs: first view {result['first_view_median_s']:.2f} s (target 2), "
          f"filter {result['filter_median_s']:.3f} s median, {result['filter_max_s']:.3f} s worst (target 0.5); every "
          f"line redrawn {result['lines_redrawn_median_s']:.2f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
