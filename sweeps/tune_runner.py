"""Ray and Ray Tune for a sweep: start a local Ray or join a cluster (failing fast on a bad address), run the trials
(one stacked group each) with the store callback, and shut Ray down; SIGTERM stops a sweep as Ctrl+C does."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import Any

import ray
from ray import tune
from ray.tune.error import TuneError

from ebgan_core import STRICT_GEMM_ENV
from ebgan_core.allocator import TRAINING_PROCESS_ENV
from ebgan_core.registry import PLUGINS_ENV
from sweeps.group_checkpoints import storage_location
from sweeps.settings import SweepSettings
from sweeps.store.result_store import ResultStore
from sweeps.store_callback import StoreCallback
from sweeps.trainables import group_trainable

# Tune looks for per-trial result files that we deliberately do not write.
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


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


def training_environment() -> dict[str, str]:
    """What a Ray worker's environment needs beyond Ray's: the allocator's setting, MKL's strict mode (as the driver
    has it: a mode the user set stays) and the plugin files that register families (ebgan_core.registry)."""
    inherited = {name: os.environ.get(name, value) for name, value in STRICT_GEMM_ENV.items()}
    plugins = {PLUGINS_ENV: os.environ[PLUGINS_ENV]} if os.environ.get(PLUGINS_ENV) else {}
    return TRAINING_PROCESS_ENV | inherited | plugins


def _init_ray(address: str | None, quiet: bool) -> None:
    # Trials train outside their worker's main thread: the workers start with TRAINING_PROCESS_ENV, so that the
    # memory a step frees stays for the next (ebgan_core.allocator), with MKL's strict reproducible mode asked for
    # before anything in them calls MKL (ebgan_core.determinism), and with the plugins that register families.
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": not quiet,
                              "runtime_env": {"env_vars": training_environment()}}
    if address is not None:
        _check_reachable(address)
    try:
        ray.init(address=address or "local", **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectionError(f"cannot reach Ray at {address or 'a new local instance'} ({first_line}); "
                              "fix: check --address, or omit it to start a local Ray") from None


def default_cpus_per_group(node_cpus: float, trials: int, cluster: bool) -> int:
    """CPUs per group unless ``--cpus-per-group`` says otherwise: on a cluster 1; on this machine its CPUs shared out
    among as many groups at once as there are groups (at least 1 each). Measured on 2 cores at the laptop budget (48
    GAN configs in 8 groups): two groups of 1 CPU each at once took 385 s, one group on both CPUs at a time 521 s
    (``benchmarks/vs_plain_script.py``): small layers use a second thread poorly."""
    if cluster:
        return 1
    return max(1, int(node_cpus) // max(1, min(trials, int(node_cpus))))


def fit(settings: SweepSettings, trainable: Any, callback: StoreCallback, tune_config: tune.TuneConfig,
        param_space: dict[str, Any], trials: int) -> None:
    """Start (or join) Ray, run the Tuner with our callback, shut Ray down. SIGTERM stops it as SIGINT does:
    Tune ends the running groups, the rows stored so far stay, and Ray shuts down."""
    _init_ray(settings.address, settings.quiet)
    relay = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT)) if relay else None
    try:
        cpus = settings.cpus_per_group or default_cpus_per_group(ray.cluster_resources().get("CPU", 1), trials,
                                                                  settings.address is not None)
        if not settings.quiet:
            print(f"[sweep] {trials} Tune trials on Ray ({cpus:g} CPU, {settings.gpus_per_group:g} GPU each); "
                  f"database {callback.db_url}")
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": cpus, "gpu": settings.gpus_per_group}),
            param_space=param_space, tune_config=tune_config,
            run_config=tune.RunConfig(name=f"{settings.sweep_name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                      storage_path=storage_location(settings.storage_path),
                                      callbacks=[callback], verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=settings.retries)),
        )
        try:
            tuner.fit()
        except TuneError:
            if callback.store_error is not None:  # the database refused a group's rows (a full disk): say so
                raise callback.store_error from None
            raise
    finally:
        if relay:
            signal.signal(signal.SIGTERM, previous)
        ray.shutdown()


def run_groups_on_tune(groups: list[list[dict[str, Any]]], settings: SweepSettings, store: ResultStore,
                       sweep_id: int, provenance: dict[str, Any], shared: dict[str, Any], total_configs: int,
                       already_done: int) -> None:
    """One Tune trial per group (each a list of member config dicts; checkpointed as ``shared['checkpoints']``
    says); the driver's callback stores every member through the driver's ``store``."""
    callback = StoreCallback(store, sweep_id, provenance, total_configs, already_done, settings.quiet,
                             shared["study"], groups=groups, checkpoints=shared["checkpoints"])
    trainable = tune.with_parameters(group_trainable, groups=groups, **shared)
    fit(settings, trainable, callback,
        tune.TuneConfig(reuse_actors=True, max_concurrent_trials=settings.max_concurrent or None),
        {"group_index": tune.grid_search(list(range(len(groups))))}, len(groups))
