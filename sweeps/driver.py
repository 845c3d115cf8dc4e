"""Run a grid on Ray Tune: one Tune trial per stacked group; a driver-side callback stores every member.

Resume = run the same command again: configs already stored as completed or diverged are skipped, failed
ones are retried, and the database's unique key (sweep, config hash, seed) makes every write idempotent.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs
import ray
import torch
from ray import tune
from sqlalchemy import text

from ebgan_core.checkpoint import CheckpointError, load_group_state, save_group_state
from ebgan_core.classifier import MnistConvNet, load_classifier, weights_sha256
from ebgan_core.config import TrialConfig
from ebgan_core.data import MNIST_ARRAY_SHA256, load_mnist_uint8, to_model_images
from ebgan_core.footprint import default_memory_budget
from ebgan_core.provenance import code_version, library_versions
from ebgan_core.rng import derive_seed
from ebgan_core.train import Checkpointing, train_group
from sweeps.grids import PROFILES, grid, pack_groups
from sweeps.rows import failed_rows, member_row, ready_to_store
from sweeps.store import ResultStore, create_database_engine, engine_url, now

SWEEP_LIBRARIES = ("ray", "optuna", "sqlalchemy", "pandas")
DRIVER = f"{socket.gethostname()}:{os.getpid()}"  # who claims a sweep in the store while running it
LEASE_S, HEARTBEAT_S = 300.0, 30.0  # a claim not renewed for LEASE_S is free to take (sooner if its process died)
OPTUNA_SCHEMA = "optuna"
GROUP_STATE_FILE = "group_state.pt"  # inside each Tune checkpoint of a group
# Tune looks for per-trial result files that we deliberately do not write.
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
_worker_data: dict[str, torch.Tensor] = {}  # per worker process (actors are reused): decoded training images


@dataclass(frozen=True)
class SweepSettings:
    """Everything a sweep run needs; the CLI fills it from flags."""

    grid: str = "all"
    profile: str = "demo"
    db_url: str | None = None
    address: str | None = None  # None: start a local Ray; "auto" or host:port: join a cluster
    cpus_per_group: float | None = None  # default: all local CPUs (1 on a cluster)
    gpus_per_group: float = 0.0  # fractional GPUs allowed, e.g. 0.25 packs four groups per GPU
    max_concurrent: int = 0  # 0: as many as resources allow
    seeds: tuple[int, ...] = (0,)
    name: str | None = None  # default: "<grid>-<profile>" ("-optuna" appended for adaptive search)
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
        profile = PROFILES.get(self.profile)
        precision = self.precision if profile and self.precision not in (None, profile.precision) else None
        return "-".join(part for part in (self.grid, self.profile, precision,
                                          None if self.search == "grid" else self.search) if part)


def trial_memory_budget(device: str) -> int:
    """Bytes this Tune trial may use: its share of the node (its GPU fraction, or its CPUs over the node's
    CPUs) of what ``train_group`` would take alone (80% of the memory available on the device)."""
    assigned = ray.get_runtime_context().get_assigned_resources()
    node_cpus = os.cpu_count() or 1
    share = assigned.get("GPU", 1.0) if device == "cuda" else assigned.get("CPU", node_cpus) / node_cpus
    return default_memory_budget(device, share)


def tune_checkpointing(every_s: float, total_steps: int) -> Checkpointing | None:
    """A group's training state saved through Tune every ``every_s`` seconds (None: ``every_s`` <= 0); a trial that
    Tune runs again after its worker or node died resumes from its latest one.

    Tune needs storage every node can reach for checkpoints from other nodes than the driver's (a cloud URI or a
    shared filesystem as ``storage_path``); where it has none, the group says so once and trains on without.
    """
    if every_s <= 0:
        return None
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)  # one line per checkpoint otherwise
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        try:
            with checkpoint.as_directory() as directory:
                resume = load_group_state(Path(directory) / GROUP_STATE_FILE)
            print(f"[group] resuming from its checkpoint at step {resume['run']['step']}/{total_steps}", flush=True)
        except CheckpointError as exc:
            print(f"[group] {exc}; training from step 0", flush=True)
    unsaved = False

    def save(state: dict[str, Any]) -> None:
        nonlocal unsaved
        if unsaved:
            return
        with tempfile.TemporaryDirectory(prefix="ebgan-group-") as directory:
            save_group_state(Path(directory) / GROUP_STATE_FILE, state)
            try:
                tune.report({"members": 0, "checkpoint_step": state["run"]["step"], "total_steps": total_steps},
                            checkpoint=tune.Checkpoint.from_directory(directory))
            except RuntimeError as exc:  # Tune refuses a checkpoint its storage path cannot take from this node
                unsaved = True
                print(f"[group] checkpoints off for this group: {str(exc).splitlines()[0]} (fix: a --storage-path "
                      "every node can reach, e.g. s3://bucket/ray or an NFS mount)", flush=True)

    return Checkpointing(every_s, save, resume)


def _train_members(members: list[dict[str, Any]], images: np.ndarray, images_sha: str,
                   judge_state: dict[str, torch.Tensor], judge_sha: str,
                   memory_budget: int | None, score_every: int = 0, checkpoint_s: float = 0.0,
                   ) -> list[dict[str, Any]]:
    """Inside a Ray worker: train one stacked group and return its member rows (all failed if it raises).

    Members that do not fit in ``memory_budget`` bytes (default: ``trial_memory_budget``) train in waves; they are
    also scored every ``score_every`` steps before their last (0: never). With ``checkpoint_s`` > 0 the group saves
    its state that often through Tune, and resumes from it when rerun."""
    started_at = now()
    try:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        device_name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        judge = MnistConvNet()
        judge.load_state_dict(judge_state)
        if weights_sha256(judge.state_dict()) != judge_sha:
            raise RuntimeError("the judge's weights changed in transit (sha256 mismatch)")
        if images_sha not in _worker_data:
            _worker_data.clear()
            _worker_data[images_sha] = to_model_images(images)
        configs = [TrialConfig.from_dict(m) for m in members]
        budget = trial_memory_budget(device) if memory_budget is None else memory_budget
        results = train_group(configs, _worker_data[images_sha], judge.to(device), device=device,
                              memory_budget=budget, checkpointing=tune_checkpointing(checkpoint_s, configs[0].steps),
                              score_steps=range(score_every, configs[0].steps, score_every) if score_every else ())
        return [member_row(r, device_name, judge_sha, started_at) for r in results]
    except Exception:  # a failing group is data, not a crash: its members are stored as failed
        return failed_rows(members, traceback.format_exc())


def group_trainable(tune_config: dict[str, Any], *, groups: list[list[dict[str, Any]]], checkpoint_s: float,
                    **shared: Any) -> None:
    """Ray Tune trial body of a grid sweep: one stacked group, checkpointed every ``checkpoint_s`` seconds."""
    rows = _train_members(groups[tune_config["group_index"]], checkpoint_s=checkpoint_s, **shared)
    tune.report({"rows": rows, "members": len(rows)})


def single_trainable(tune_config: dict[str, Any], *, base: dict[str, Any], **shared: Any) -> None:
    """Ray Tune trial body of an adaptive search: one config, the searcher's choices over ``base`` (not checkpointed:
    the searcher takes every reported result as a score)."""
    (row,) = _train_members([base | tune_config], **shared)
    score = (row.get("scores") or {}).get("i_prime")
    tune.report({"rows": [row], "members": 1, "search_score": 0.0 if score is None else float(score)})


class StoreCallback(tune.Callback):
    """Driver-side Tune callback: writes each group's rows, prints progress; opens its engine in setup()."""

    def __init__(self, db_url: str, sweep_id: int, provenance: dict[str, Any], total_configs: int, already_done: int,
                 quiet: bool, groups: list[list[dict[str, Any]]] | None = None, base: dict[str, Any] | None = None,
                 ) -> None:
        """``groups`` (grid sweeps) or ``base`` (adaptive search) say which configs a trial trained."""
        self.db_url, self.sweep_id, self.provenance = db_url, sweep_id, provenance
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
        self._write(failed_rows(members, text))
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


def run_sweep(settings: SweepSettings) -> dict[str, int]:
    """Run (or resume) the sweep of ``settings.grid`` x ``settings.profile``; returns the counts of ``run_configs``."""
    configs = grid(settings.grid, settings.profile, settings.seeds, settings.precision)  # validates them first
    return run_configs(configs, settings)


@dataclass
class _Prepared:
    """What every sweep needs before Ray starts; building it runs every check that bad input can fail."""

    store_url: str
    sweep_id: int
    provenance: dict[str, Any]
    shared: dict[str, Any]  # trainable keyword arguments that travel through the object store
    finished: set[tuple[str, int]]


def _prepare(settings: SweepSettings, search: str) -> _Prepared:
    if settings.group_memory_gib is not None and not settings.group_memory_gib > 0:
        raise ValueError(f"--group-memory-gib must be > 0, got {settings.group_memory_gib}; "
                         "fix: give the GiB one group may use, or omit it")
    if settings.retries < 0:
        raise ValueError(f"--retries must be >= 0, got {settings.retries}; fix: give how often a lost group reruns")
    if not settings.checkpoint_minutes >= 0:
        raise ValueError(f"--checkpoint-minutes must be >= 0, got {settings.checkpoint_minutes}; "
                         "fix: give how often a group saves its state (0: never)")
    store = ResultStore(settings.db_url)
    judge, judge_meta = load_classifier()
    images = load_mnist_uint8()["train_images"]
    provenance = {"code_version": code_version(), "library_versions": library_versions(SWEEP_LIBRARIES),
                  "search": search}
    sweep_id = store.open_sweep(
        settings.sweep_name, settings.grid, settings.profile, search, provenance["code_version"],
        provenance["library_versions"], device=f"{'GPU' if settings.gpus_per_group else 'CPU'} workers",
        settings={k: v for k, v in dataclasses.asdict(settings).items() if k != "quiet"}
        | {"profile_settings": dataclasses.asdict(PROFILES[settings.profile])})
    try:
        store.claim_sweep(sweep_id, DRIVER, LEASE_S)
        finished = store.trial_keys(sweep_id)
    finally:
        store.close()
    # load_mnist_uint8 has verified this content, so its known checksum names it (no re-hash of 47 MB).
    shared = {"images": images, "images_sha": MNIST_ARRAY_SHA256["train_images"],
              "judge_state": {k: v.cpu() for k, v in judge.state_dict().items()},
              "judge_sha": judge_meta["weights_sha256"],
              "memory_budget": None if settings.group_memory_gib is None else int(settings.group_memory_gib * 2**30),
              "score_every": PROFILES[settings.profile].score_every}
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


def run_configs(configs: Sequence[TrialConfig], settings: SweepSettings) -> dict[str, int]:
    """Train and store every config not yet stored in the sweep; returns total, stored, new, failed, remaining.

    Every check that can fail on bad input (database, judge, data, Ray address) runs before any training.
    """
    prepared = _prepare(settings, "grid")
    with _holding(prepared):
        keys = {(c.config_hash(), c.seed) for c in configs}
        todo = [c for c in configs if (c.config_hash(), c.seed) not in prepared.finished]
        total, done = len(configs), len(keys & prepared.finished)
        if not settings.quiet:
            print(f"[sweep] {settings.sweep_name}: {total} configs, {done} already stored, {len(todo)} to run")
        if not todo:
            return {"total": total, "stored": done, "new": 0, "failed": 0, "remaining": 0}
        max_members = settings.max_members or PROFILES[settings.profile].max_members
        groups = [[c.to_dict() for c in g] for g in pack_groups(todo, max_members)]
        callback = StoreCallback(prepared.store_url, prepared.sweep_id, prepared.provenance, total, done,
                                 settings.quiet, groups=groups)
        trainable = tune.with_parameters(group_trainable, groups=groups, checkpoint_s=60 * settings.checkpoint_minutes,
                                         **prepared.shared)
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
    base = search_base(settings.grid, settings.profile, settings.seeds[0], settings.precision)
    prepared = _prepare(settings, "optuna")
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
            sampler = optuna.samplers.TPESampler(seed=derive_seed(settings.seeds[0], "optuna", done) % 2**32)
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
