"""Run a grid of any study: configs packed into stacked groups, each group trained on Ray Tune (one trial per
group; ``sweeps.tune_runner``) or in this process (``--executor local``; ``sweeps.local_executor``), every member
stored by the driver.

Resume = run the same command again: configs already stored as completed or diverged are skipped, failed
ones are retried, and the database's unique key (sweep, config hash, seed) makes every write idempotent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ebgan_core.provenance import code_version, library_versions
from sweeps.grid_file import load_grid_file
from sweeps.group_checkpoints import GroupCheckpoints, storage_location
from sweeps.image_data import folder_listing, on_image_folder
from sweeps.lease import DRIVER, LEASE_S, holding
from sweeps.projection import projection_line, sweep_flops
from sweeps.settings import SweepSettings, is_grid_file
from sweeps.store.result_store import ResultStore, check_same_data
from sweeps.studies import Config, Study, in_seeded_random_rounds, pack_groups, study_of_config, study_of_grid

SWEEP_LIBRARIES = ("ray", "optuna", "sqlalchemy", "pandas")


@dataclass(frozen=True)
class Plan:
    """What a sweep stores as its grid and profile, and how it packs and scores its groups."""

    study: Study
    grid: str
    profile: str
    max_members: int
    score_every: int
    details: dict[str, Any]  # kept in the sweep's settings: the profile's, or the grid file's text
    interim_samples: int | None = None  # samples behind each interim score (None: the final score's)
    inputs: dict[str, Any] | None = None  # what the workers get instead of the study's inputs of the same names


def named_plan(study: Study, settings: SweepSettings) -> Plan:
    """The plan of a study's named grid and profile."""
    if settings.profile not in study.profiles:
        raise ValueError(f"unknown profile {settings.profile!r} for grid {settings.grid!r}; use one of "
                         f"{', '.join(study.profiles)}")
    profile = study.profiles[settings.profile]
    return Plan(study, settings.grid, settings.profile, settings.max_members or profile.max_members,
                profile.score_every, {"profile_settings": dataclasses.asdict(profile)}, profile.interim_samples)


@dataclass
class Prepared:
    """What every sweep needs before training starts; building it runs every check that bad input can fail."""

    store: ResultStore  # the driver's one store: the sweep's claim, its rows and its reads all go through it
    sweep_id: int
    provenance: dict[str, Any]
    shared: dict[str, Any]  # the worker's keyword arguments besides the members (through Ray's object store)
    finished: set[tuple[str, int]]


def check_settings(settings: SweepSettings, search: str) -> None:
    """Refuse settings no sweep can run with, in one line each, before the database is opened."""
    if settings.group_memory_gib is not None and not settings.group_memory_gib > 0:
        raise ValueError(f"--group-memory-gib must be > 0, got {settings.group_memory_gib}; "
                         "fix: give the GiB one group may use, or omit it")
    if settings.executor not in ("ray", "local") or (settings.executor == "local" and search != "grid"):
        raise ValueError(f"--executor {settings.executor} cannot run a {search} search; fix: use --executor ray "
                         "(adaptive search runs on Ray), or local for a grid")
    if settings.images and search != "grid":
        raise ValueError("--images runs grid sweeps; fix: drop --search optuna, or --images")
    if settings.retries < 0:
        raise ValueError(f"--retries must be >= 0, got {settings.retries}; fix: give how often a lost group reruns")
    if not settings.checkpoint_minutes >= 0:
        raise ValueError(f"--checkpoint-minutes must be >= 0, got {settings.checkpoint_minutes}; "
                         "fix: give how often a group saves its state (0: never)")


def prepare(settings: SweepSettings, search: str, plan: Plan, total: int, store: ResultStore) -> Prepared:
    """Open (or create) the sweep of ``total`` configs in ``store`` (settings checked by ``check_settings``), claim
    it for this driver, and gather what every worker needs."""
    inputs = plan.study.inputs() | (plan.inputs or {})
    provenance = {"code_version": code_version(), "library_versions": library_versions(SWEEP_LIBRARIES),
                  "search": search}
    sweep_id = store.open_sweep(
        settings.sweep_name, plan.grid, plan.profile, search, provenance["code_version"],
        provenance["library_versions"], device=f"{'GPU' if settings.gpus_per_group else 'CPU'} workers",
        settings={k: v for k, v in dataclasses.asdict(settings).items() if k != "quiet"} | plan.details)
    store.claim_sweep(sweep_id, DRIVER, LEASE_S)
    store.set_total(sweep_id, total)
    finished = store.trial_keys(sweep_id)
    checkpoints = GroupCheckpoints(storage_location(settings.storage_path), settings.sweep_name,
                                   provenance["code_version"], 60 * settings.checkpoint_minutes)
    shared = {"study": plan.study.name, "inputs": inputs, "score_every": plan.score_every,
              "interim_samples": plan.interim_samples, "checkpoints": checkpoints,
              "memory_budget": None if settings.group_memory_gib is None else int(settings.group_memory_gib * 2**30)}
    return Prepared(store, sweep_id, provenance, shared, finished)


def training_device(settings: SweepSettings) -> str:
    """Where this machine's groups train: CUDA when there is a GPU and the sweep may use it (the local executor, or
    GPUs per group on Ray), else the CPU."""
    wants_gpu = settings.executor == "local" or settings.gpus_per_group > 0
    return "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"


def stored_and_failed(prepared: Prepared, keys: set[tuple[str, int]] | None = None) -> tuple[int, int]:
    """How many configs of the sweep (of ``keys`` only, if given) are stored as finished, and how many as failed."""
    finished = prepared.store.trial_keys(prepared.sweep_id)
    failed = prepared.store.trial_keys(prepared.sweep_id, ("failed",))
    if keys is not None:
        finished, failed = finished & keys, failed & keys
    return len(finished), len(failed)


def run_sweep(settings: SweepSettings) -> dict[str, int]:
    """Run (or resume) the sweep of ``settings.grid`` (a study's grid x ``settings.profile``, or a grid file);
    returns the counts of ``run_configs``. The database is opened once, after the grid and settings are checked."""
    check_settings(settings, "grid")
    if settings.best_of:
        if settings.images:
            raise ValueError("--best-of takes its configs, and their data, from the stored sweep; drop --images")
        with ResultStore(settings.db_url) as store:
            return run_best_of(settings, store)
    if is_grid_file(settings.grid):
        spec = load_grid_file(Path(settings.grid), settings.seeds)
        configs, plan = spec.configs, Plan(
            spec.study, Path(settings.grid).name[:64], "grid-file", settings.max_members or spec.max_members,
            spec.score_every, {"grid_file": spec.text})
    else:
        study = study_of_grid(settings.grid)
        configs = study.configs(settings.grid, settings.profile, settings.seeds, settings.precision,
                                settings.samples)  # validates them
        plan = named_plan(study, settings)
    if settings.fid_weights and not settings.images:
        raise ValueError("--fid-weights scores runs on an image folder (--images DIR); on MNIST the judge scores them")
    with ResultStore(settings.db_url) as store:
        if settings.images:  # a changed folder is refused before it is decoded
            exists, stored = store.stored_listing(settings.sweep_name)
            if exists:
                check_same_data(settings.sweep_name, stored, folder_listing(settings.images))
            folder = on_image_folder(configs, settings.images, settings.fid_weights)
            configs = [c.replace(dataset=folder.dataset, channels=folder.channels) for c in configs]
            plan = dataclasses.replace(plan, details=plan.details | folder.details, inputs=folder.inputs)
        return run_configs(configs, settings, plan, store)


def run_best_of(settings: SweepSettings, store: ResultStore) -> dict[str, int]:
    """Phase 3 of a Lucic et al. study: the best setting of each loss of the stored sweep ``settings.best_of`` once
    per seed (default 1-10), stored as the sweep ``<best_of>-best``."""
    from sweeps.table1 import lucic
    from sweeps.table1.study import TABLE1

    completed = store.completed_configs(settings.best_of)
    seeds = settings.seeds if settings.seeds is not None else lucic.PHASE3_SEEDS
    configs = lucic.best_configs(completed, seeds)
    if not settings.quiet:
        print(f"[sweep] the best of {settings.best_of}: " + ", ".join(
            f"{lucic.loss_of(c.to_dict())} ({c.short_name()})" for c in configs[:: len(seeds)]))
    return run_configs(configs, settings, Plan(TABLE1, f"best-of:{settings.best_of}"[:64], "best-of",
                                               settings.max_members or lucic.PHASE3_MAX_MEMBERS, 0,
                                               {"best_of": settings.best_of}), store)


def run_configs(configs: Sequence[Config], settings: SweepSettings, plan: Plan | None = None,
                store: ResultStore | None = None) -> dict[str, int]:
    """Train and store every config not yet stored in the sweep; returns total, stored, new, failed, remaining.

    ``plan`` defaults to that of ``settings``' grid and profile in the configs' study; ``store`` to one opened (and
    closed) here. Every check that can fail on bad input (database, judge, data, Ray address) runs before any
    training.
    """
    if not configs:
        raise ValueError("the grid has no configs; fix: check its axes (an empty list of values leaves none)")
    plan = plan or named_plan(study_of_config(configs[0]), settings)
    check_settings(settings, "grid")
    with ExitStack() as stack:
        if store is None:
            store = stack.enter_context(ResultStore(settings.db_url))
        prepared = prepare(settings, "grid", plan, len(configs), store)
        stack.enter_context(holding(store, prepared.sweep_id))
        keys = {(c.config_hash(), c.seed) for c in configs}
        todo = [c for c in configs if (c.config_hash(), c.seed) not in prepared.finished]
        total, done = len(configs), len(keys & prepared.finished)
        if not settings.quiet:
            print(f"[sweep] {settings.sweep_name}: {total} configs, {done} already stored, {len(todo)} to run")
        if not todo:
            return {"total": total, "stored": done, "new": 0, "failed": 0, "remaining": 0}
        if not settings.quiet and settings.address is None:  # training on this machine: project its time
            print(projection_line(todo, plan.score_every, plan.interim_samples, training_device(settings)), flush=True)
        if not settings.quiet and settings.address is not None and "://" not in settings.storage_path:
            print(f"[sweep] group checkpoints go to {prepared.shared['checkpoints'].folder} on the node that trains "
                  "each group; a rerun on another node finds them only if every node mounts that path (else "
                  "--storage-path s3://bucket/ray)", flush=True)
        packed = in_seeded_random_rounds(pack_groups(todo, plan.max_members), settings.sweep_name,
                                         lambda group: sweep_flops(group, plan.score_every, plan.interim_samples))
        groups = [[c.to_dict() for c in g] for g in packed]
        arguments = (store, prepared.sweep_id, prepared.provenance, prepared.shared, total, done)
        if settings.executor == "local":
            from sweeps.local_executor import run_locally

            if not settings.quiet:
                print(f"[sweep] {len(groups)} groups, one after another in this process (no Ray); database "
                      f"{store.url}", flush=True)
            run_locally(groups, *arguments, settings.quiet)
        else:
            from sweeps.tune_runner import run_groups_on_tune  # Ray is needed only here

            run_groups_on_tune(groups, settings, *arguments)
        stored, failed = stored_and_failed(prepared, keys)
        if stored == total:
            prepared.shared["checkpoints"].clear()
        return {"total": total, "stored": stored, "new": stored - done, "failed": failed, "remaining": total - stored}
