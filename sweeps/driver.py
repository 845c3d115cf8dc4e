"""Run a grid of any study on Ray Tune: one Tune trial per stacked group; a driver-side callback stores every member.

Resume = run the same command again: configs already stored as completed or diverged are skipped, failed
ones are retried, and the database's unique key (sweep, config hash, seed) makes every write idempotent.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs
import ray
from ray import tune
from sqlalchemy import text

from analysis.connection import engine_url
from ebgan_core.provenance import code_version, library_versions
from ebgan_core.rng import derive_seed
from sweeps.grid_file import load_grid_file
from sweeps.grids import PROFILES
from sweeps.rows import failed_rows, ready_to_store
from sweeps.store import ResultStore, create_database_engine
from sweeps.studies import STUDIES, Config, Study, pack_groups, study_of_config, study_of_grid
from sweeps.workers import train_table1_members

SWEEP_LIBRARIES = ("ray", "optuna", "sqlalchemy", "pandas")
DRIVER = f"{socket.gethostname()}:{os.getpid()}"  # who claims a sweep in the store while running it
LEASE_S, HEARTBEAT_S = 300.0, 30.0  # a claim not renewed for LEASE_S is free to take (sooner if its process died)
OPTUNA_SCHEMA = "optuna"
# Tune looks for per-trial result files that we deliberately do not write.
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


@dataclass(frozen=True)
class SweepSettings:
    """Everything a sweep run needs; the CLI fills it from flags."""

    grid: str = "all"  # a grid of any study, or a grid file (.toml)
    profile: str = "demo"  # ignored for a grid file
    db_url: str | None = None
    address: str | None = None  # None: start a local Ray; "auto" or host:port: join a cluster
    cpus_per_group: float | None = None  # default: all local CPUs (1 on a cluster)
    gpus_per_group: float = 0.0  # fractional GPUs allowed, e.g. 0.25 packs four groups per GPU
    max_concurrent: int = 0  # 0: as many as resources allow
    seeds: tuple[int, ...] | None = None  # default: the profile's (Table 1: seed 0) or the grid file's
    name: str | None = None  # default: "<grid>-<profile>" ("-optuna" appended for adaptive search); a file's stem
    search: str = "grid"  # "grid" or "optuna"
    max_members: int | None = None  # default: the profile's
    group_memory_gib: float | None = None  # memory one group may use; default: its share of its node's device
    precision: str | None = None  # matmul precision; default: the profile's
    retries: int = 2  # times a group whose worker or node died is run again before its members are stored failed
    checkpoint_minutes: float = 10.0  # a group saves its training state this often (0: never); a rerun resumes it
    storage_path: str = "results/ray"
    quiet: bool = False

    @property
    def sweep_name(self) -> str:
        """``--name``, else ``<grid>-<profile>[-<precision> if not the profile's][-<search> if not grid]``."""
        if self.name:
            return self.name
        if is_grid_file(self.grid):
            return Path(self.grid).stem
        profile = PROFILES.get(self.profile)
        precision = self.precision if profile and self.precision not in (None, profile.precision) else None
        return "-".join(part for part in (self.grid, self.profile, precision,
                                          None if self.search == "grid" else self.search) if part)


def group_trainable(tune_config: dict[str, Any], *, study: str, groups: list[list[dict[str, Any]]],
                    checkpoint_s: float, **shared: Any) -> None:
    """Ray Tune trial body of a grid sweep: one stacked group of ``study``, trained by the study's worker and
    checkpointed every ``checkpoint_s`` seconds."""
    rows = STUDIES[study].worker(groups[tune_config["group_index"]], checkpoint_s=checkpoint_s, **shared)
    tune.report({"rows": rows, "members": len(rows)})


def single_trainable(tune_config: dict[str, Any], *, base: dict[str, Any], **shared: Any) -> None:
    """Ray Tune trial body of an adaptive search: one config, the searcher's choices over ``base`` (not checkpointed:
    the searcher takes every reported result as a score)."""
    (row,) = train_table1_members([base | tune_config], **shared)
    score = (row.get("scores") or {}).get("i_prime")
    tune.report({"rows": [row], "members": 1, "search_score": 0.0 if score is None else float(score)})


class StoreCallback(tune.Callback):
    """Driver-side Tune callback: writes each group's rows, prints progress; opens its engine in setup()."""

    def __init__(self, db_url: str, sweep_id: int, provenance: dict[str, Any], total_configs: int, already_done: int,
                 quiet: bool, groups: list[list[dict[str, Any]]] | None = None, base: dict[str, Any] | None = None,
                 study: str = "table1") -> None:
        """``groups`` (grid sweeps) or ``base`` (adaptive search) say which configs of ``study`` a trial trained."""
        self.db_url, self.sweep_id, self.provenance, self.study = db_url, sweep_id, provenance, study
        self.groups, self.base = groups, base
        self.total, self.done, self.quiet = total_configs, already_done, quiet
        self.failed = self.diverged = self.finished_now = 0
        self.store: ResultStore | None = None
        self.started = time.monotonic()

    def setup(self, **info: Any) -> None:
        self.store = ResultStore(self.db_url)

    def __getstate__(self) -> dict[str, Any]:  # the engine is re-opened in setup(), never pickled
        return {k: v for k, v in self.__dict__.items() if k != "store"} | {"store": None}

    def _write(self, rows: list[dict[str, Any]]) -> None:
        assert self.store is not None
        self.store.record(self.sweep_id, ready_to_store(rows, self.provenance))
        self.done += len(rows)
        self.finished_now += len(rows)
        self.failed += sum(r["status"] == "failed" for r in rows)
        self.diverged += sum(r["status"] == "diverged" for r in rows)
        if not self.quiet:
            elapsed = time.monotonic() - self.started
            remaining = self.total - self.done
            eta = elapsed / self.finished_now * remaining if self.finished_now else float("nan")
            print(f"[sweep] {self.done}/{self.total} configs stored ({self.failed} failed, {self.diverged} "
                  f"diverged) | {elapsed:.0f} s elapsed, ETA {eta:.0f} s", flush=True)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        rows = result.pop("rows", None)  # Tune lets callbacks edit the result before it is kept
        if rows:
            self._write(rows)
        elif "checkpoint_step" in result and not self.quiet:
            print(f"[sweep] a group of {len(self.groups[trial.config['group_index']])} saved its state at step "
                  f"{result['checkpoint_step']}/{result['total_steps']}", flush=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if not self.quiet:
            error = trial.get_error()
            reason = str(error).strip().splitlines()[0] if error and str(error).strip() else "its worker died"
            print(f"[sweep] a group lost its worker ({reason[:200]}); running it again (attempt "
                  f"{trial.num_failures + 1} of {trial.max_failures + 1})", flush=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        drop_checkpoints(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = trial.get_error()
        text = "".join(traceback.format_exception(error)) if error else "the trial's worker died"
        members = self.groups[trial.config["group_index"]] if self.groups is not None else [self.base | trial.config]
        self._write(failed_rows(members, text, self.study))
        drop_checkpoints(trial)


def drop_checkpoints(trial: Any) -> None:
    """Delete an ended group's saved states: its rows are stored, and a state can take GBs (on local disk, a cloud
    bucket or NFS alike, through Tune's own filesystem handle)."""
    storage = trial.storage
    if storage is None:
        return
    filesystem = storage.storage_filesystem
    for entry in filesystem.get_file_info(pyarrow.fs.FileSelector(storage.trial_fs_path, allow_not_found=True)):
        if entry.type == pyarrow.fs.FileType.Directory and entry.base_name.startswith("checkpoint_"):
            filesystem.delete_dir(entry.path)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a host:port that does not answer (ray.init would retry for many minutes)."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms are resolved by Ray itself, which fails fast for them
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConnectionError(f"cannot reach Ray at {address} ({exc.strerror or exc}); "
                              "fix: check --address, or omit it to start a local Ray") from None


def _init_ray(address: str | None, quiet: bool) -> None:
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": not quiet}
    if address is not None:
        _check_reachable(address)
    try:
        ray.init(address=address or "local", **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectionError(f"cannot reach Ray at {address or 'a new local instance'} ({first_line}); "
                              "fix: check --address, or omit it to start a local Ray") from None


def is_grid_file(grid: str) -> bool:
    """Whether ``--grid`` names a grid file rather than a grid of a study."""
    return grid.endswith(".toml")


def run_sweep(settings: SweepSettings) -> dict[str, int]:
    """Run (or resume) the sweep of ``settings.grid`` (a study's grid x ``settings.profile``, or a grid file);
    returns the counts of ``run_configs``."""
    if is_grid_file(settings.grid):
        spec = load_grid_file(Path(settings.grid), settings.seeds)
        return run_configs(spec.configs, settings, _Plan(
            spec.study, Path(settings.grid).name[:64], "grid-file", settings.max_members or spec.max_members,
            spec.score_every, {"grid_file": spec.text}))
    study = study_of_grid(settings.grid)
    configs = study.configs(settings.grid, settings.profile, settings.seeds, settings.precision)  # validates them
    return run_configs(configs, settings)


@dataclass(frozen=True)
class _Plan:
    """What a sweep stores as its grid and profile, and how it packs and scores its groups."""

    study: Study
    grid: str
    profile: str
    max_members: int
    score_every: int
    details: dict[str, Any]  # kept in the sweep's settings: the profile's, or the grid file's text


def _named_plan(study: Study, settings: SweepSettings) -> _Plan:
    """The plan of a study's named grid and profile."""
    if settings.profile not in study.profiles:
        raise ValueError(f"unknown profile {settings.profile!r} for grid {settings.grid!r}; use one of "
                         f"{', '.join(study.profiles)}")
    profile = study.profiles[settings.profile]
    return _Plan(study, settings.grid, settings.profile, settings.max_members or profile.max_members,
                 profile.score_every, {"profile_settings": dataclasses.asdict(profile)})


@dataclass
class _Prepared:
    """What every sweep needs before Ray starts; building it runs every check that bad input can fail."""

    store_url: str
    sweep_id: int
    provenance: dict[str, Any]
    shared: dict[str, Any]  # trainable keyword arguments that travel through the object store
    finished: set[tuple[str, int]]


def _prepare(settings: SweepSettings, search: str, plan: _Plan) -> _Prepared:
    if settings.group_memory_gib is not None and not settings.group_memory_gib > 0:
        raise ValueError(f"--group-memory-gib must be > 0, got {settings.group_memory_gib}; "
                         "fix: give the GiB one group may use, or omit it")
    if settings.retries < 0:
        raise ValueError(f"--retries must be >= 0, got {settings.retries}; fix: give how often a lost group reruns")
    if not settings.checkpoint_minutes >= 0:
        raise ValueError(f"--checkpoint-minutes must be >= 0, got {settings.checkpoint_minutes}; "
                         "fix: give how often a group saves its state (0: never)")
    store = ResultStore(settings.db_url)
    inputs = plan.study.inputs()
    provenance = {"code_version": code_version(), "library_versions": library_versions(SWEEP_LIBRARIES),
                  "search": search}
    sweep_id = store.open_sweep(
        settings.sweep_name, plan.grid, plan.profile, search, provenance["code_version"],
        provenance["library_versions"], device=f"{'GPU' if settings.gpus_per_group else 'CPU'} workers",
        settings={k: v for k, v in dataclasses.asdict(settings).items() if k != "quiet"} | plan.details)
    try:
        store.claim_sweep(sweep_id, DRIVER, LEASE_S)
        finished = store.trial_keys(sweep_id)
    finally:
        store.close()
    shared = inputs | {
        "memory_budget": None if settings.group_memory_gib is None else int(settings.group_memory_gib * 2**30),
        "score_every": plan.score_every}
    return _Prepared(store.url, sweep_id, provenance, shared, finished)


@contextmanager
def _holding(prepared: _Prepared) -> Iterator[None]:
    """Keep this driver's claim on the sweep alive (a heartbeat thread) while it runs; release it afterwards."""
    store = ResultStore(prepared.store_url)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                store.renew_claim(prepared.sweep_id, DRIVER)
            except Exception as exc:  # a missed beat is survivable; the lease outlasts several
                logging.getLogger(__name__).warning("sweep heartbeat failed: %s", exc)

    beating = threading.Thread(target=heartbeat, name="sweep-heartbeat", daemon=True)
    beating.start()
    try:
        yield
    finally:
        stop.set()
        beating.join()
        store.release_sweep(prepared.sweep_id, DRIVER)
        store.close()


def _fit(settings: SweepSettings, trainable: Any, callback: StoreCallback, tune_config: tune.TuneConfig,
         param_space: dict[str, Any], trials: int) -> None:
    """Start (or join) Ray, run the Tuner with our callback, shut Ray down. SIGTERM stops it as SIGINT does:
    Tune ends the running groups, the rows stored so far stay, and Ray shuts down."""
    _init_ray(settings.address, settings.quiet)
    relay = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT)) if relay else None
    try:
        cpus = settings.cpus_per_group or (ray.cluster_resources().get("CPU", 1) if settings.address is None else 1)
        if not settings.quiet:
            print(f"[sweep] {trials} Tune trials on Ray ({cpus:g} CPU, {settings.gpus_per_group:g} GPU each); "
                  f"database {callback.db_url}")
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": cpus, "gpu": settings.gpus_per_group}),
            param_space=param_space, tune_config=tune_config,
            run_config=tune.RunConfig(name=f"{settings.sweep_name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                      storage_path=storage_location(settings.storage_path),
                                      callbacks=[callback], verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=settings.retries),
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
        )
        tuner.fit()
    finally:
        if relay:
            signal.signal(signal.SIGTERM, previous)
        ray.shutdown()


def storage_location(path: str) -> str:
    """Tune's storage path: a URI (``s3://...``) as given, a local path made absolute."""
    return path if "://" in path else str(Path(path).resolve())


def _stored_and_failed(prepared: _Prepared, keys: set[tuple[str, int]] | None = None) -> tuple[int, int]:
    """How many configs of the sweep (of ``keys`` only, if given) are stored as finished, and how many as failed."""
    store = ResultStore(prepared.store_url)
    finished, failed = store.trial_keys(prepared.sweep_id), store.trial_keys(prepared.sweep_id, ("failed",))
    store.close()
    if keys is not None:
        finished, failed = finished & keys, failed & keys
    return len(finished), len(failed)


def _counts(prepared: _Prepared, keys: set[tuple[str, int]], total: int, done: int) -> dict[str, int]:
    stored, failed = _stored_and_failed(prepared, keys)
    return {"total": total, "stored": stored, "new": stored - done, "failed": failed, "remaining": total - stored}


def run_configs(configs: Sequence[Config], settings: SweepSettings, plan: _Plan | None = None) -> dict[str, int]:
    """Train and store every config not yet stored in the sweep; returns total, stored, new, failed, remaining.

    ``plan`` defaults to that of ``settings``' grid and profile in the configs' study. Every check that can fail on
    bad input (database, judge, data, Ray address) runs before any training.
    """
    if not configs:
        raise ValueError("the grid has no configs; fix: check its axes (an empty list of values leaves none)")
    plan = plan or _named_plan(study_of_config(configs[0]), settings)
    prepared = _prepare(settings, "grid", plan)
    with _holding(prepared):
        keys = {(c.config_hash(), c.seed) for c in configs}
        todo = [c for c in configs if (c.config_hash(), c.seed) not in prepared.finished]
        total, done = len(configs), len(keys & prepared.finished)
        if not settings.quiet:
            print(f"[sweep] {settings.sweep_name}: {total} configs, {done} already stored, {len(todo)} to run")
        if not todo:
            return {"total": total, "stored": done, "new": 0, "failed": 0, "remaining": 0}
        groups = [[c.to_dict() for c in g] for g in pack_groups(todo, plan.max_members)]
        callback = StoreCallback(prepared.store_url, prepared.sweep_id, prepared.provenance, total, done,
                                 settings.quiet, groups=groups, study=plan.study.name)
        trainable = tune.with_parameters(group_trainable, study=plan.study.name, groups=groups,
                                         checkpoint_s=60 * settings.checkpoint_minutes, **prepared.shared)
        _fit(settings, trainable, callback,
             tune.TuneConfig(reuse_actors=True, max_concurrent_trials=settings.max_concurrent or None),
             {"group_index": tune.grid_search(list(range(len(groups))))}, len(groups))
        return _counts(prepared, keys, total, done)


def run_optuna(settings: SweepSettings, budget: int, continuous: bool = False) -> dict[str, int]:
    """Adaptive search with Optuna's TPE (seeded) over the Table 1 space of ``settings.grid``: ``budget`` trials.

    Rerunning resumes: the Optuna study lives in an RDB storage beside the results, and its finished trials
    count against the budget. TPE may propose a config it already tried; it is trained again and stored once
    (its latest result), so ``stored`` (distinct configs) can be below ``trials``.
    """
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from sweeps.search_space import optuna_space, search_base

    if budget < 1:
        raise ValueError(f"--budget must be >= 1, got {budget}")
    space = optuna_space(settings.grid, settings.profile, continuous)  # validates grid and profile
    seed = (settings.seeds or (0,))[0]
    base = search_base(settings.grid, settings.profile, seed, settings.precision)
    prepared = _prepare(settings, "optuna", _named_plan(STUDIES["table1"], settings))
    with _holding(prepared):
        _create_optuna_schema(prepared.store_url)
        storage = optuna.storages.RDBStorage(optuna_storage_url(prepared.store_url))
        study = optuna.create_study(study_name=settings.sweep_name, storage=storage, direction="maximize",
                                    load_if_exists=True)

        def finished_trials() -> int:
            return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                optuna.trial.TrialState.FAIL)))

        done, stored_before = finished_trials(), len(prepared.finished)
        if not settings.quiet:
            print(f"[sweep] {settings.sweep_name}: budget {budget} trials, {done} done "
                  f"({stored_before} distinct configs stored)")
        if done < budget:
            # A sampler seeded as before would replay its random start-up proposals after a resume: seed it from
            # (seed, trials done), deterministic yet new at every resume.
            sampler = optuna.samplers.TPESampler(seed=derive_seed(seed, "optuna", done) % 2**32)
            searcher = OptunaSearch(space=space, metric="search_score", mode="max", study_name=settings.sweep_name,
                                    storage=storage, sampler=sampler)
            callback = StoreCallback(prepared.store_url, prepared.sweep_id, prepared.provenance, budget, done,
                                     settings.quiet, base=base)
            _fit(settings, tune.with_parameters(single_trainable, base=base, **prepared.shared), callback,
                 tune.TuneConfig(search_alg=searcher, num_samples=budget - done, reuse_actors=True,
                                 max_concurrent_trials=settings.max_concurrent or None), {}, budget - done)
        stored, failed = _stored_and_failed(prepared)
        trials = finished_trials()
        return {"total": budget, "trials": trials, "stored": stored, "new": stored - stored_before, "failed": failed,
                "remaining": max(0, budget - trials)}


def optuna_storage_url(results_url: str) -> str:
    """Optuna's study storage beside the results: ``<results>.optuna.sqlite`` for SQLite results; on a server, the
    same database in a schema of its own, ``optuna`` (Optuna's tables include a ``trials`` of its own).

    RDB storage in SQLite suits us: only the Tune driver (one process) asks and tells, so SQLite's single
    writer is no limit, and the study survives the driver for resuming.
    """
    if results_url.startswith("sqlite:///"):
        path = Path(results_url.removeprefix("sqlite:///"))
        return f"sqlite:///{path.with_name(path.stem + '.optuna.sqlite')}"
    url = engine_url(results_url)
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{OPTUNA_SCHEMA}"


def _create_optuna_schema(results_url: str) -> None:
    """The schema Optuna's tables live in on a database server (SQLite results keep Optuna in a file of its own)."""
    if results_url.startswith("sqlite:///"):
        return
    engine = create_database_engine(results_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"create schema if not exists {OPTUNA_SCHEMA}"))
    finally:
        engine.dispose()
