"""The explore page's server: the page, ECharts (vendored: ``vendor/``, Apache-2.0, so the page works offline) and a
small JSON API over the database, read-only, on 127.0.0.1 only."""

from __future__ import annotations

import json
import threading
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from analysis.db import AnalysisError, connect_readonly
from analysis.explore.data import progress, run_details, runs_version, sample_png, studies_present, study_runs

PAGE = Path(__file__).with_name("page.html")


ECHARTS = Path(__file__).with_name("vendor") / "echarts-5.6.0.min.js"


@cache
def echarts_js() -> bytes:
    return ECHARTS.read_bytes()


class ExploreServer(ThreadingHTTPServer):
    """Serves one database; keeps one read-only engine and the last study data it computed (recomputed when a run is
    stored, i.e. while a sweep is writing)."""

    daemon_threads = True

    def __init__(self, url: str | None, port: int) -> None:
        self.url = url
        self.engine = connect_readonly(url)
        self._runs: dict[str, tuple[tuple[int, str | None], bytes]] = {}
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", port), ExploreHandler)
        for study in studies_present(self.engine):  # ready before the first page asks
            self.runs_json(study)

    def runs_json(self, study: str) -> bytes:
        version = runs_version(self.engine)
        with self._lock:
            cached = self._runs.get(study)
            if cached is None or cached[0] != version:
                cached = (version, json.dumps(study_runs(self.url, study), separators=(",", ":")).encode())
                self._runs[study] = cached
            return cached[1]

    def server_close(self) -> None:
        super().server_close()
        self.engine.dispose()


class ExploreHandler(BaseHTTPRequestHandler):
    server: ExploreServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the terminal; errors are answered to the page

    def _send(self, body: bytes, content_type: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store" if "json" in content_type else "max-age=3600")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(json.dumps(value, separators=(",", ":")).encode(), "application/json", status)

    def do_GET(self) -> None:
        parsed = urlparse(self.path)
        parts = [p for p in parsed.path.split("/") if p]
        query = parse_qs(parsed.query)
        try:
            self._route(parts, query)
        except AnalysisError as exc:
            self._json({"error": str(exc)}, HTTPStatus.SERVICE_UNAVAILABLE)
        except (ValueError, KeyError) as exc:
            self._json({"error": f"bad request {self.path!r}: {exc}"}, HTTPStatus.BAD_REQUEST)

    def _route(self, parts: list[str], query: dict[str, list[str]]) -> None:
        server = self.server
        if not parts:
            self._send(PAGE.read_bytes(), "text/html; charset=utf-8")
        elif parts == ["favicon.ico"]:
            self._send(b"", "image/x-icon", HTTPStatus.NO_CONTENT)
        elif parts == ["echarts.min.js"]:
            self._send(echarts_js(), "text/javascript")
        elif parts == ["api", "studies"]:
            self._json({"studies": studies_present(server.engine)})
        elif parts == ["api", "runs"]:
            self._send(server.runs_json(query.get("study", ["table1"])[0]), "application/json")
        elif parts == ["api", "progress"]:
            self._json(progress(server.url))
        elif len(parts) == 3 and parts[:2] == ["api", "run"]:
            details = run_details(server.engine, int(parts[2]))
            self._json(details) if details else self._json({"error": "no such run"}, HTTPStatus.NOT_FOUND)
        elif len(parts) == 4 and parts[:2] == ["api", "sample"]:
            png = sample_png(server.engine, int(parts[2]), parts[3])
            self._send(png, "image/png") if png else self._json({"error": "no sample grid"}, HTTPStatus.NOT_FOUND)
        else:
            self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)


def serve(url: str | None, port: int = 8050) -> ExploreServer:
    """A server for the database at ``url`` on 127.0.0.1:``port`` (0: any free port); call ``serve_forever`` on it."""
    try:
        return ExploreServer(url, port)  # a missing database stops here, in one line
    except OSError as exc:
        raise AnalysisError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; fix: pass --port with a free "
                            "port (0 picks one)") from None
