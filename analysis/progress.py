"""How far each sweep is: configs stored of the sweep's total, failed and diverged runs, the driver holding it (host:pid
and its last heartbeat), the groups training now and how far each is (from the progress files beside their
checkpoints, where the sweep's storage path is a folder this machine reads) and an estimate of the time left
(``ebgan status``; the "N of M configs" of figures, report and the explore page)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import inspect, text

from analysis.db import connect_readonly
from sweeps.group_checkpoints import PROGRESS_SUFFIX, storage_location, sweep_folder
from sweeps.lease import LEASE_S  # a heartbeat older than this: the driver is gone

RATE_WINDOW = 50  # the ETA's rate: the last this many stored trials of the sweep

COLUMNS = ("sweep", "grid", "profile", "search", "total", "stored", "completed", "diverged", "failed", "driver",
           "heartbeat_s", "running", "eta_s", "groups")
FRESH_S = 120.0  # a progress file older than this is of a group that no longer trains (a stepping one rewrites it
# every second; scoring, which takes no steps, rarely takes this long)


def _seconds_since(stamp: object, now: datetime) -> float | None:
    if stamp is None or pd.isna(stamp):
        return None
    stamp = pd.Timestamp(stamp).to_pydatetime()
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return (now - stamp).total_seconds()


def _eta_s(finished: pd.Series, remaining: int) -> float | None:
    """Seconds left at the pace of the sweep's last ``RATE_WINDOW`` stored trials (None below two)."""
    recent = pd.to_datetime(finished).sort_values().tail(RATE_WINDOW)
    span = (recent.iloc[-1] - recent.iloc[0]).total_seconds() if len(recent) > 1 else 0.0
    if remaining <= 0:
        return 0.0
    return remaining * span / (len(recent) - 1) if span > 0 else None


def training_groups(settings: str | None, sweep: str) -> list[dict]:
    """The progress records (``sweeps.group_checkpoints.ProgressFile``) of the sweep's groups training now, from the
    storage path its settings name (a relative one read from this folder, as its driver does); none for a URI."""
    try:
        storage = json.loads(settings or "{}").get("storage_path")
    except ValueError:
        return []
    if not storage or "://" in storage:
        return []
    records = []
    for path in Path(sweep_folder(storage_location(storage), sweep)).glob("*" + PROGRESS_SUFFIX):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # replaced or removed while read
        if time.time() - record.get("time", 0) < FRESH_S:
            records.append(record)
    return sorted(records, key=lambda r: -r["step"] / max(1, r["total"]))


def sweep_progress(url: str | None = None, now: datetime | None = None) -> pd.DataFrame:
    """One row per sweep (``COLUMNS``): ``stored`` counts completed and diverged runs (those a rerun skips), ``total``
    is null for a sweep from before totals were kept; ``running``: its driver's heartbeat is recent; ``eta_s`` and
    ``groups`` (the progress records of its groups training now): only while running."""
    now = now or datetime.now(UTC)
    engine = connect_readonly(url)
    try:
        tables = set(inspect(engine).get_table_names())
        if not {"sweeps", "trials"} <= tables:
            return pd.DataFrame(columns=COLUMNS)
        with engine.connect() as connection:
            sweeps = pd.read_sql(text("select * from sweeps order by id"), connection)
            trials = pd.read_sql(text("select sweep_id, status, finished_at from trials"), connection)
    finally:
        engine.dispose()
    rows = []
    for sweep in sweeps.to_dict("records"):
        runs = trials[trials["sweep_id"] == sweep["id"]]
        counts = runs["status"].value_counts()
        stored = int(counts.get("completed", 0) + counts.get("diverged", 0))
        total = sweep.get("total_configs")
        total = None if total is None or pd.isna(total) else int(total)
        heartbeat = _seconds_since(sweep.get("driver_seen_at"), now)
        running = sweep.get("driver") is not None and heartbeat is not None and heartbeat < LEASE_S
        done = runs.loc[runs["status"] != "failed", "finished_at"]
        eta = _eta_s(done, total - stored) if running and total is not None and len(done) else None
        rows.append({"sweep": sweep["name"], "grid": sweep["grid"], "profile": sweep["profile"],
                     "search": sweep["search"], "total": total, "stored": stored,
                     "completed": int(counts.get("completed", 0)), "diverged": int(counts.get("diverged", 0)),
                     "failed": int(counts.get("failed", 0)), "driver": sweep.get("driver") if running else None,
                     "heartbeat_s": heartbeat if running else None, "running": running, "eta_s": eta,
                     "groups": training_groups(sweep.get("settings"), sweep["name"]) if running else []})
    return pd.DataFrame(rows, columns=COLUMNS)


def completeness_note(progress: pd.DataFrame, sweeps: set[str] | None = None) -> str | None:
    """"sweep S: N of M configs (still running)" for each incomplete sweep (of ``sweeps``, if given); None when every
    sweep is complete or its total unknown."""
    notes = []
    for row in progress.to_dict("records"):
        if (sweeps is not None and row["sweep"] not in sweeps) or row["total"] is None or pd.isna(row["total"]):
            continue
        if row["stored"] < row["total"]:
            state = "still running" if row["running"] else "stopped"
            notes.append(f"{row['sweep']}: {row['stored']} of {int(row['total'])} configs ({state})")
    return "; ".join(notes) or None


def _duration(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _groups(records: list[dict]) -> str:
    """"2 groups (8 + 4 members) at 120/200, 40/200" for the groups training now; "-" for none seen."""
    if not records:
        return "-"
    members = " + ".join(str(r["members"]) for r in records)
    steps = ", ".join(f"{r['step']}/{r['total']}" for r in records[:4]) + (", ..." if len(records) > 4 else "")
    return f"{len(records)} group{'s' if len(records) > 1 else ''} ({members} members) at {steps}"


def status_table(progress: pd.DataFrame) -> str:
    """``ebgan status``'s screen: one line per sweep."""
    if progress.empty:
        return "the database holds no sweeps yet; run one (make sweep)"
    shown = pd.DataFrame({
        "sweep": progress["sweep"], "profile": progress["profile"], "search": progress["search"],
        "stored": [f"{s} / {'?' if t is None or pd.isna(t) else int(t)}" for s, t in
                   zip(progress["stored"], progress["total"], strict=True)],
        "failed": progress["failed"], "diverged": progress["diverged"],
        "driver": [f"{d} (beat {_duration(h)} ago)" if r else "none (stopped)" if s < (t or 0) else "none"
                   for d, h, r, s, t in zip(progress["driver"], progress["heartbeat_s"], progress["running"],
                                            progress["stored"], progress["total"].fillna(0), strict=True)],
        "eta": [_duration(e) if r else "-" for e, r in zip(progress["eta_s"], progress["running"], strict=True)],
        "training now": [_groups(groups) for groups in progress["groups"]],
    })
    return shown.to_string(index=False)
