"""The chaos soak (``make chaos``; not part of ``make test``): sweeps of both studies, run once without faults as
the reference, then again on a two-node Ray (two raylets on this machine) under a seeded schedule of faults at
random moments (SIGKILL and SIGTERM of the driver, SIGKILL of the Tune workers, SIGKILL of the second raylet),
with ``ebgan status``, ``query`` and ``report`` reading the database throughout, on SQLite and then on PostgreSQL.
After the last fault the same commands finish the sweeps. Then it checks, prints and writes
(``results/reference/chaos/chaos-<database>.json``): faults injected and survived, every config stored exactly once,
every stored row, curve, sample grid, interim score and interim grid equal to the reference's, no orphan rows, no group
checkpoint or Ray process left, the database's integrity, every read answered without a lock error, and the share
of training steps redone because of faults. Exit status 1 if any check fails.

    python tests/chaos.py [--seed 0] [--faults 20] [--databases sqlite,postgresql]

The same seed gives the same schedule (kinds and delays); where a fault lands in training depends on the machine.
It runs ``ray stop`` at the end: run it where no other Ray is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from database_servers import missing_reason, postgres_server, query

from sweeps.group_checkpoints import PROGRESS_EVERY_S

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
       "RAY_AUTH_MODE": "disabled", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
KINDS = ("driver SIGKILL", "driver SIGTERM", "worker SIGKILL", "raylet SIGKILL")
CHECKPOINT_MINUTES = 0.005  # a group saves its state every 0.3 s of training
# Table 2: the ladder (LN) at 1/16 width, four settings in two groups of 600 steps, scored every 200.
LADDER_GRID = """\
    study = "table2"
    max_members = 2
    score_every = 200
    [base]
    family = "ln"
    width_divisor = 16
    steps = 600
    decay_start = 400
    bn_samples = 500
    [axes]
    lr = [0.002, 0.0005]
    recon_weight = [1000.0, 10.0]
"""
# Table 1: EBGAN's 64 demo configs (1/16 width, 200 steps, interim scores and grids every 100) in groups of <= 8.
SWEEPS = {"table1": ["--grid", "ebgan", "--profile", "demo", "--max-members", "8"],
          "table2": ["--grid", "chaos-ladder.toml"]}
OUTCOME = {
    "trials": "select s.name, t.config_hash, t.seed, t.status, t.i_prime, t.inception_score, t.frechet_distance, "
              "t.test_error, t.class_histogram, t.n_samples, t.steps_done, t.diverged_at_step, t.group_size, "
              "t.error, c.curves, p.png from trials t join sweeps s on s.id = t.sweep_id "
              "left join curves c on c.trial_id = t.id left join samples p on p.trial_id = t.id order by 1, 2, 3",
    "interim scores": "select s.name, t.config_hash, t.seed, i.step, i.i_prime, i.frechet_distance, i.test_error, "
                      "i.n_samples from interim_scores i join trials t on t.id = i.trial_id "
                      "join sweeps s on s.id = t.sweep_id order by 1, 2, 3, 4",
    "interim grids": "select s.name, t.config_hash, t.seed, i.step, i.png from interim_samples i "
                     "join trials t on t.id = i.trial_id join sweeps s on s.id = t.sweep_id order by 1, 2, 3, 4",
}
ORPHANS = " + ".join(f"(select count(*) from {table} where trial_id not in (select id from trials))"
                     for table in ("samples", "curves", "interim_scores", "interim_samples"))


def sweep_command(name: str, folder: Path, db_url: str, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), *SWEEPS[name], "--db", db_url,
            "--storage-path", str(folder / "storage"), "--checkpoint-minutes", str(CHECKPOINT_MINUTES), *extra]


def run(command: list[str], folder: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=folder, env=ENV, capture_output=True, text=True, timeout=timeout)


def reference(folder: Path) -> tuple[dict[str, list[tuple]], int]:
    """Both sweeps without faults, each in its own process without Ray (whose rows equal those of Ray's one-CPU
    workers bit for bit: tests/test_sweep_ray.py), side by side into a database each; their outcome, in the order
    of one database holding both, and the member-steps they trained."""
    folder.mkdir(parents=True)
    (folder / "chaos-ladder.toml").write_text(textwrap.dedent(LADDER_GRID))
    urls = {name: f"sqlite:///{folder / f'{name}.sqlite'}" for name in SWEEPS}
    started = time.monotonic()
    drivers = {name: subprocess.Popen(sweep_command(name, folder, url, "--executor", "local"), cwd=folder, env=ENV,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for name, url in urls.items()}
    for name, driver in drivers.items():
        output = driver.communicate(timeout=1800)[0]
        if driver.returncode != 0:
            raise SystemExit(f"the fault-free reference sweep {name} failed:\n{output[-3000:]}")
    parts = [outcome(url) for url in urls.values()]
    # Each query orders by sweep name first: the sweeps' rows, sweep by sweep in name order, are one database's.
    parts.sort(key=lambda part: part["trials"][0][0])
    steps = sum(query(url, "select sum(steps_done) from trials")[0][0] for url in urls.values())
    print(f"[chaos] reference: both sweeps without faults in {time.monotonic() - started:.0f} s "
          f"({steps} member-steps)", flush=True)
    return {name: [row for part in parts for row in part[name]] for name in OUTCOME}, steps


def outcome(url: str) -> dict[str, list[tuple]]:
    return {name: [tuple(row) for row in query(url, sql)] for name, sql in OUTCOME.items()}


class TwoNodeRay:
    """A Ray head (1 CPU) and a second raylet (1 CPU) on this machine; the second can be killed and restarted."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.second: int | None = None

    def start(self) -> None:
        self._ray("start", "--head", f"--port={self.port}", "--num-cpus=1", "--include-dashboard=false",
                  "--node-ip-address=127.0.0.1")
        self.start_second()

    def start_second(self) -> None:
        before = raylets()
        self._ray("start", f"--address={self.address}", "--num-cpus=1", "--node-ip-address=127.0.0.1")
        (self.second,) = raylets() - before

    def kill_second(self) -> None:
        os.kill(self.second, signal.SIGKILL)

    def stop(self) -> None:
        self._ray("stop", "--force")

    def _ray(self, *arguments: str) -> None:
        done = subprocess.run([str(BIN / "ray"), *arguments], env=ENV, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise SystemExit(f"ray {' '.join(arguments)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def raylets() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "ray/core/src/ray/raylet/raylet"], capture_output=True, text=True).stdout
    return {int(pid) for pid in found.split()}


def ray_processes() -> list[str]:
    found = subprocess.run(["pgrep", "-af", "raylet|gcs_server|ray::"], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


@dataclass
class Readers:
    """``ebgan status``, ``query`` and ``report`` in turn against the database while it is written."""

    url: str
    folder: Path
    reads: int = 0
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="chaos-readers", daemon=True)

    def _loop(self) -> None:
        commands = [["status", "--db", self.url], ["query", "--db", self.url, "--top", "5"],
                    ["report", "--db", self.url, "--out", str(self.folder / "report.html")]]
        turn = 0
        while not self.stop.wait(1.0):
            if not query(self.url, "select id from trials limit 1"):
                continue  # nothing to read yet
            command = commands[turn % len(commands)]
            turn += 1
            done = run([str(BIN / "ebgan"), *command], self.folder, timeout=300)
            self.reads += 1
            text = done.stdout + done.stderr
            if done.returncode != 0 or "locked" in text.lower():
                self.failures.append(f"ebgan {command[0]}: rc {done.returncode}: {text.strip()[-300:]}")

    def __enter__(self) -> Readers:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


@dataclass
class Fault:
    kind: str
    at_s: float
    sweep: str
    groups_running: int = 0
    groups_lost: int = 0
    member_steps_lost: int = 0
    survived: bool = False


class Soak:
    """One database's faulted run: drivers started and restarted, faults injected on the schedule."""

    def __init__(self, folder: Path, url: str, cluster: TwoNodeRay,
                 schedule: list[tuple[str, float, float]]) -> None:
        self.folder, self.url, self.cluster, self.schedule = folder, url, cluster, schedule
        self.faults: list[Fault] = []
        self.unexpected: list[str] = []  # drivers that stopped by themselves with an error
        self.started = time.monotonic()
        self.log = (folder / "drivers.log").open("a")

    def command(self, name: str) -> list[str]:
        return sweep_command(name, self.folder, self.url, "--address", self.cluster.address, "--cpus-per-group",
                             "1", "--retries", "1000")

    def start(self, name: str) -> subprocess.Popen:
        self.log.write(f"\n--- {name} driver started at {time.monotonic() - self.started:.1f} s\n")
        self.log.flush()
        return subprocess.Popen(self.command(name), cwd=self.folder, env=ENV, stdout=self.log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def progress(self) -> dict[str, dict]:
        """The running groups' progress files (sweeps/group_checkpoints.py)."""
        found = {}
        for path in (self.folder / "storage").glob("group-checkpoints/*/*.progress.json"):
            try:
                found[str(path)] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # replaced or deleted while read
        return found

    def run_schedule(self) -> None:
        """Both sweeps' drivers run at once (sharing the cluster and the database, as two studies of one lab would);
        each fault strikes its delay after a group is seen training, after the previous fault's recovery. A driver
        fault stops one driver, drawn among the sweeps not yet complete; worker and raylet faults hit whatever
        trains."""
        drivers = {name: self.start(name) for name in SWEEPS}
        complete: set[str] = set()
        for kind, delay, draw in self.schedule:
            self.tend(drivers, complete, lambda: bool(self.training()))
            ends = time.monotonic() + delay
            self.tend(drivers, complete, lambda ends=ends: time.monotonic() >= ends)
            running = [name for name in SWEEPS if name not in complete]
            if not running:
                print("[chaos] both sweeps completed before the schedule ended: a workload too small for it",
                      flush=True)
                break
            if self.faults:
                self.faults[-1].survived = not self.unexpected
            target = running[int(draw * len(running))] if kind.startswith("driver") else "+".join(running)
            fault = Fault(kind, round(time.monotonic() - self.started, 1), target)
            before, struck = self.training(), time.time()
            self.inject(fault, drivers)
            time.sleep(1.5)
            dead = [record for record in before if not _alive(record["pid"])]
            fault.groups_running, fault.groups_lost = len(before), len(dead)
            fault.member_steps_lost = sum(lost_steps(record, struck) * record["members"] for record in dead)
            self.faults.append(fault)
            print(f"[chaos] fault {len(self.faults)}/{len(self.schedule)} at {fault.at_s:.0f} s: {kind} "
                  f"({target}); {fault.groups_lost} of {fault.groups_running} training groups lost "
                  f"{fault.member_steps_lost} member-steps since their last save", flush=True)
        for name, driver in drivers.items():
            driver.wait(timeout=1800)
            if driver.returncode not in (0, 1):
                self.unexpected.append(f"{name}: its driver exited {driver.returncode} by itself")
        if self.faults:
            self.faults[-1].survived = not self.unexpected

    def training(self) -> list[dict]:
        """The progress records of the groups training now (their process alive)."""
        return [record for record in self.progress().values() if _alive(record["pid"])]

    def tend(self, drivers: dict[str, subprocess.Popen], complete: set[str], ready: Callable[[], bool]) -> None:
        """Keep the drivers of incomplete sweeps running until ``ready()`` (at most 120 s): a driver that ends is
        restarted unless its sweep is complete; one that ends with an error by itself is recorded as unexpected."""
        deadline = time.monotonic() + 120
        while not ready() and time.monotonic() < deadline and len(complete) < len(drivers):
            time.sleep(0.1)
            for name, driver in drivers.items():
                if name in complete or driver.poll() is None:
                    continue
                if driver.returncode == 0:
                    complete.add(name)
                    continue
                self.unexpected.append(f"{name}: its driver exited {driver.returncode} by itself")
                drivers[name] = self.start(name)

    def inject(self, fault: Fault, drivers: dict[str, subprocess.Popen]) -> None:
        if fault.kind.startswith("driver"):
            driver = drivers[fault.sweep]
            driver.send_signal(signal.SIGKILL if fault.kind == "driver SIGKILL" else signal.SIGTERM)
            driver.wait(timeout=300)
            self.log.write(f"--- {fault.sweep}: {fault.kind} (exit {driver.returncode})\n")
            drivers[fault.sweep] = self.start(fault.sweep)
        elif fault.kind == "worker SIGKILL":
            subprocess.run(["pkill", "-KILL", "-f", "ray::ImplicitFunc"], capture_output=True)
        else:
            self.cluster.kill_second()
            time.sleep(2.0)
            self.cluster.start_second()

    def finish(self) -> list[str]:
        """The same commands, run again after the last fault, until both sweeps are complete."""
        problems = []
        for name in SWEEPS:
            done = run(self.command(name), self.folder)
            self.log.write(f"\n--- {name} finished (exit {done.returncode})\n{done.stdout}{done.stderr}")
            if done.returncode != 0:
                problems.append(f"the same command did not finish {name}: exit {done.returncode}")
        self.log.close()
        return problems


def lost_steps(record: dict, struck: float) -> int:
    """The steps a group trained since its last save when it was struck at ``struck``: those its progress file
    shows, plus its speed times the time since the file was written, up to the second a stepping group rewrites it
    within (a file older than that is of a group scoring, which takes no steps)."""
    unseen = min(max(0.0, struck - record["time"]), PROGRESS_EVERY_S) * record["steps_per_s"]
    return min(record["total"] - record["saved"], record["step"] - record["saved"] + round(unseen))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def schedule(seed: int, faults: int) -> list[tuple[str, float, float]]:
    """``faults`` (kind, seconds of training before it, a draw in [0, 1) that picks the driver a driver fault stops):
    every kind within the first four, then drawn at random."""
    rng = random.Random(seed)
    kinds = rng.sample(KINDS, len(KINDS)) + rng.choices(KINDS, weights=(3, 2, 3, 2), k=max(0, faults - len(KINDS)))
    return [(kind, round(rng.uniform(0.5, 4.0), 1), rng.random()) for kind in kinds[:faults]]


def integrity(url: str, folder: Path) -> str:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(f"file:{folder / 'chaos.sqlite'}?mode=ro", uri=True) as db:
            check = db.execute("pragma integrity_check").fetchall()
            foreign = db.execute("pragma foreign_key_check").fetchall()
        return "ok" if check == [("ok",)] and not foreign else f"integrity {check}, foreign keys {foreign}"
    broken = query(url, "select count(*) from pg_index where not indisvalid")[0][0]
    return "ok" if broken == 0 else f"{broken} invalid indexes"


def soak(database: str, url: str, folder: Path, expected: dict[str, list[tuple]], total_steps: int,
         plan: list[tuple[str, float, float]]) -> dict:
    folder.mkdir(parents=True)
    (folder / "chaos-ladder.toml").write_text(textwrap.dedent(LADDER_GRID))
    cluster = TwoNodeRay()
    cluster.start()
    started = time.monotonic()
    try:
        with Readers(url, folder) as readers:
            run_ = Soak(folder, url, cluster, plan)
            run_.run_schedule()
            problems = run_.finish()
    finally:
        cluster.stop()
    seconds = time.monotonic() - started
    time.sleep(2.0)
    got = outcome(url)
    keys = query(url, "select sweep_id, config_hash, seed from trials")
    left_checkpoints = [str(p) for p in (folder / "storage").rglob("group-checkpoints/*/*") if p.is_file()]
    lost = sum(f.member_steps_lost for f in run_.faults)
    checks = {
        "faults injected and survived": (sum(f.survived for f in run_.faults) == len(plan) == len(run_.faults),
                                         f"{sum(f.survived for f in run_.faults)}/{len(plan)}; "
                                         f"{sum(f.groups_lost > 0 for f in run_.faults)} struck training groups"),
        "every config stored exactly once": (len(keys) == len(set(keys)) == len(expected["trials"]),
                                             f"{len(keys)} rows, {len(set(keys))} configs, "
                                             f"{len(expected['trials'])} expected"),
        **{f"{name} equal to the fault-free run's": (got[name] == expected[name], f"{len(got[name])} rows")
           for name in OUTCOME},
        "no orphan rows": ((orphans := query(url, f"select {ORPHANS}")[0][0]) == 0, f"{orphans}"),
        "no group checkpoint left": (not left_checkpoints, f"{len(left_checkpoints)} files "
                                                           f"{[Path(p).name for p in left_checkpoints[:3]]}"),
        "no Ray process left": (not (ray := ray_processes()), f"{len(ray)} processes"),
        "database integrity": ((state := integrity(url, folder)) == "ok", state),
        "readers never failed": (not readers.failures and readers.reads > 0,
                                 f"{readers.reads} reads, {len(readers.failures)} failed"),
        "training redone under 10%": (lost / total_steps < 0.10,
                                      f"{lost} of {total_steps} member-steps ({100 * lost / total_steps:.1f}%)"),
        "the same command finished the sweeps": (not problems, "; ".join(problems) or "yes"),
    }
    return {"database": database, "seconds": round(seconds), "faults": [asdict(f) for f in run_.faults],
            "faults_by_kind": {k: sum(f.kind == k for f in run_.faults) for k in KINDS},
            "faults_that_hit_training": sum(f.groups_lost > 0 for f in run_.faults),
            "checks": {name: {"passed": bool(ok), "measured": measured} for name, (ok, measured) in checks.items()},
            "reader_failures": readers.failures[:10], "unexpected_exits": run_.unexpected,
            "redone_share": round(lost / total_steps, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", type=int, default=20, help="faults per database (default 20)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--out", default=str(REPO / "results" / "reference" / "chaos"),
                        help="where the JSON results go (default: the committed ones, results/reference/chaos)")
    args = parser.parse_args(argv)
    if ray_processes():
        print("error: Ray is running on this machine; fix: stop it (ray stop) before the soak, which ends with one",
              file=sys.stderr)
        return 2
    plan = schedule(args.seed, args.faults)
    print(f"[chaos] seed {args.seed}: {len(plan)} faults per database: " +
          ", ".join(f"{k} {d:g} s into training" for k, d, _ in plan), flush=True)
    results, ok = [], True
    with tempfile.TemporaryDirectory(prefix="ebgan-chaos-") as scratch, ExitStack() as servers:
        expected, total_steps = reference(Path(scratch) / "reference")
        for database in args.databases.split(","):
            if database == "sqlite":
                url = f"sqlite:///{Path(scratch) / database / 'chaos.sqlite'}"
            elif database == "postgresql":
                if reason := missing_reason():
                    raise SystemExit(f"error: cannot start PostgreSQL: {reason}")
                url = servers.enter_context(postgres_server())
            else:
                raise SystemExit(f"error: unknown database {database!r}; fix: --databases sqlite,postgresql")
            print(f"[chaos] {database}: {url}", flush=True)
            result = soak(database, url, Path(scratch) / database, expected, total_steps, plan)
            result["seed"] = args.seed
            results.append(result)
            for name, check in result["checks"].items():
                ok &= check["passed"]
                print(f"[chaos] {database}: {'PASS' if check['passed'] else 'FAIL'} {name} ({check['measured']})",
                      flush=True)
            for failure in result["reader_failures"]:
                print(f"[chaos]   {failure}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for result in results:
        (out / f"chaos-{result['database']}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"[chaos] {'passed' if ok else 'FAILED'}; results in {out}/chaos-*.json", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
