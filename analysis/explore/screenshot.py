"""A screenshot of the explore page over a database, in headless Chromium: optionally a range selected on one axis
and the best runs opened (``make explore-screenshots`` draws the committed ones under results/reference/).

    python -m analysis.explore.screenshot --db URL --out PNG [--study table1] [--select AXIS:LOW:HIGH] [--open 2]
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from analysis.explore.browser import chromium_page
from analysis.explore.server import serve

SELECT = """([axis, low, high]) => {
  const index = state.axes.findIndex((a) => a.name === axis);
  if (index < 0) throw new Error(`no axis ${axis}; the axes are ${state.axes.map((a) => a.name)}`);
  window.exploreCharts.pc.dispatchAction({type: "axisAreaSelect", parallelAxisIndex: index, intervals: [[low, high]]});
}"""


def screenshot(url: str | None, out: Path, study: str | None, select: tuple[str, float, float] | None,
               open_runs: int) -> Path:
    """Serve ``url``, load the page (on ``study``), apply ``select``, open the first ``open_runs`` runs of the table
    and write the full page to ``out``."""
    server = serve(url, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with chromium_page(width=1400, height=1000) as page:
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/" + (f"?study={study}" if study else ""))
            page.wait_for_function("window.exploreTimings.firstView !== undefined")
            if select:
                page.evaluate(SELECT, list(select))
                page.wait_for_function("window.exploreTimings.filters >= 2")
            for row in page.eval_on_selector_all("#runs tbody tr", f"rows => rows.slice(0, {open_runs})"
                                                 ".map((r) => r.dataset.id)"):
                page.click(f"#runs tbody tr[data-id='{row}']")
                page.wait_for_selector(f".card[data-id='{row}']")
            page.wait_for_timeout(800)  # the lines' progressive redraw and the images
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
    finally:
        server.shutdown()
        server.server_close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--study", default=None)
    parser.add_argument("--select", default=None, metavar="AXIS:LOW:HIGH")
    parser.add_argument("--open", type=int, default=2, dest="open_runs")
    args = parser.parse_args()
    select = None
    if args.select:
        axis, low, high = args.select.rsplit(":", 2)
        select = (axis, float(low), float(high))
    print(f"wrote {screenshot(args.db, args.out, args.study, select, args.open_runs)}")


if __name__ == "__main__":
    main()
