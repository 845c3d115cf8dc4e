"""`ebgan explore` in a real headless Chromium (Debian's, driven by Playwright) over real sweep databases: a range
dragged on an axis filters the histograms and the table, a run opens with its sample grids along training, and the
page follows a database that a running sweep is writing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from analysis.explore.browser import chromium_page
from analysis.explore.server import serve
from sweeps.driver import run_sweep
from sweeps.settings import SweepSettings

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
FIRST_VIEW = "window.exploreTimings.firstView !== undefined"


@pytest.fixture(scope="module")
def smoke_db(tmp_path_factory) -> Path:
    """A real smoke sweep of both Table 1 families, trained without Ray (scored along the way at step 3)."""
    path = tmp_path_factory.mktemp("explore") / "r.sqlite"
    run_sweep(SweepSettings(grid="all", profile="smoke", db_url=f"sqlite:///{path}", executor="local", quiet=True))
    return path


def served(path: Path) -> Iterator[str]:
    server = serve(f"sqlite:///{path}", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page_url(smoke_db) -> Iterator[str]:
    yield from served(smoke_db)


def drag_on_axis(page, axis: str, top: float, bottom: float) -> None:
    """A real mouse drag along ``axis`` of the parallel coordinates, from ``top`` to ``bottom`` (fractions of the
    axis' length, 0 at its foot)."""
    where = page.evaluate("""(name) => {
      const system = window.exploreCharts.pc.getModel().getComponent("parallel").coordinateSystem;
      const dim = system.dimensions[state.axes.findIndex((a) => a.name === name)];
      const layout = system.getAxisLayout(dim), box = document.getElementById("pc").getBoundingClientRect();
      return {x: box.x + layout.position[0], y: box.y + layout.position[1],
              length: system.getAxis(dim).getExtent()[1]};
    }""", axis)
    page.mouse.move(where["x"], where["y"] - top * where["length"])
    page.mouse.down()
    page.mouse.move(where["x"], where["y"] - bottom * where["length"], steps=8)
    page.mouse.up()


def test_a_range_dragged_on_an_axis_filters_the_histogram_and_the_table(page_url, smoke_db):
    with sqlite3.connect(smoke_db) as db:
        scores = sorted(s for (s,) in db.execute("select i_prime from trials where i_prime is not null"))
    with chromium_page() as page:
        page.goto(page_url)
        page.wait_for_function(FIRST_VIEW)
        assert page.text_content("#total-count") == str(len(scores)) == page.text_content("#selected-count")
        histogram_before = page.evaluate("window.exploreHistogram")
        drag_on_axis(page, "i_prime", 1.05, 0.1)  # from beyond the top (clamped to it) to near the foot
        page.wait_for_function("window.exploreTimings.filters >= 2")
        low, high = page.evaluate("""() => window.exploreCharts.pc.getModel().getComponent("parallelAxis",
                                      state.axes.length - 1).activeIntervals[0]""")
        expected = sum(low <= s <= high for s in scores)
        assert 0 < expected < len(scores), "the drag should select some runs, not all"
        assert int(page.text_content("#selected-count")) == expected
        histogram_after = page.evaluate("window.exploreHistogram")
        assert sum(histogram_after.values()) == expected and histogram_after != histogram_before
        shown = page.eval_on_selector_all("#runs tbody tr", "rows => rows.map((r) => Number(r.dataset.id))")
        assert len(shown) == expected
        with sqlite3.connect(smoke_db) as db:
            shown_scores = [db.execute("select i_prime from trials where id = ?", (i,)).fetchone()[0] for i in shown]
        assert all(low <= s <= high for s in shown_scores)
        assert shown_scores == sorted(shown_scores, reverse=True), "the table is sorted by I', best first"


def test_a_run_opens_with_its_samples_along_training_and_a_second_beside_it(page_url, smoke_db):
    with chromium_page() as page:
        page.goto(page_url)
        page.wait_for_function(FIRST_VIEW)
        first, second = page.eval_on_selector_all("#runs tbody tr", "rows => rows.slice(0, 2).map((r) => r.dataset.id)")
        page.click(f"#runs tbody tr[data-id='{first}']")
        card = page.wait_for_selector(f".card[data-id='{first}']")
        image = card.query_selector("img.samples")
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image)
        assert image.get_attribute("src").endswith("/final") and "(final)" in card.query_selector(".step").inner_text()
        final_width = image.evaluate("img => img.naturalWidth")
        slider = card.query_selector("input.slider")
        slider.focus()
        page.keyboard.press("Home")  # to the first scored step: the smoke profile scores at step 3 of 6
        assert card.query_selector(".step").inner_text() == "3"
        page.wait_for_function("(img) => img.src.endsWith('/3') && img.complete && img.naturalWidth > 0", arg=image)
        assert image.evaluate("img => img.naturalWidth") < final_width, "grids along training are stored at 1x"
        page.click(f"#runs tbody tr[data-id='{second}']")
        page.wait_for_selector(f".card[data-id='{second}'] img.samples")
        assert page.locator(".card").count() == 2
        boxes = [page.locator(f".card[data-id='{i}']").bounding_box() for i in (first, second)]
        assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"], "side by side"


def test_the_page_follows_a_database_that_a_running_sweep_is_writing(tmp_path):
    path = tmp_path / "growing.sqlite"
    sweep = subprocess.Popen(
        [sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--grid", "ebgan", "--profile", "demo",
         "--executor", "local", "--max-members", "4", "--db", f"sqlite:///{path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _stored(path) and time.monotonic() < deadline:
            assert sweep.poll() is None, sweep.stderr.read()
            time.sleep(0.5)
        for url in served(path):
            with chromium_page() as page:
                page.goto(url + "?refresh=1")
                page.wait_for_function(FIRST_VIEW)
                page.wait_for_selector("#progress .stored")
                seen = int(page.text_content("#progress .stored"))
                assert "of 64 configs" in page.text_content("#progress") and "running" in page.text_content("#progress")
                page.wait_for_function(f"Number(document.querySelector('#progress .stored').textContent) > {seen}",
                                       timeout=90_000)
                page.wait_for_function(f"Number(document.getElementById('total-count').textContent) > {seen}",
                                       timeout=30_000)
    finally:
        sweep.terminate()
        sweep.wait(timeout=60)


def _stored(path: Path) -> int:
    try:
        with sqlite3.connect(path) as db:
            return db.execute("select count(*) from trials").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0
