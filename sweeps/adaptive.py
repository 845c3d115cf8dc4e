"""Adaptive search with Optuna's TPE through Ray Tune, for either study: one trial per proposed config, over one
grid's space at a profile's budget (Table 1: a family's Table 1 axes, I' maximised; Table 2: the ladder's or
EBGAN-LN's settings, test error minimised). Trials land in the same trials table with ``search = 'optuna'``.

Rerunning resumes: the Optuna study lives in an RDB storage beside the results, and its finished trials count against
``--trials``. Trials a stopped driver left running are proposed again first, with the same values, so each resumes
from its checkpoint. TPE may propose a config it already tried; it is trained again and stored once (its latest result).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ray import tune
from sqlalchemy import text

from ebgan_core.rng import derive_seed
from sweeps.driver import check_settings, named_plan, prepare, stored_and_failed
from sweeps.lease import holding
from sweeps.settings import SweepSettings
from sweeps.store.connection import create_database_engine, engine_url
from sweeps.store.result_store import ResultStore
from sweeps.store_callback import StoreCallback
from sweeps.studies import search_study
from sweeps.trainables import single_trainable
from sweeps.tune_runner import fit

OPTUNA_SCHEMA = "optuna"


def run_optuna(settings: SweepSettings, trials: int, continuous: bool = False) -> dict[str, int]:
    """``trials`` trials of TPE (seeded by the first seed) over the space of ``settings.grid`` at its profile;
    ``continuous`` searches ranges instead of the grid's values (docs/sweeps.md, "Adaptive search")."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    if trials < 1:
        raise ValueError(f"--trials must be >= 1, got {trials}")
    study = search_study(settings.grid)
    plan = named_plan(study, settings)  # an unknown profile stops here
    space = study.search_space(settings.grid, settings.profile, continuous)
    seed = (settings.seeds or (0,))[0]
    base = study.search_base(settings.grid, settings.profile, seed, settings.precision)
    check_settings(settings, "optuna")
    with ExitStack() as stack:
        store = stack.enter_context(ResultStore(settings.db_url))
        prepared = prepare(settings, "optuna", plan, trials, store)
        stack.enter_context(holding(store, prepared.sweep_id))
        _create_optuna_schema(store.url)
        storage = optuna.storages.RDBStorage(optuna_storage_url(store.url))
        direction = "maximize" if study.higher_is_better else "minimize"
        optuna_study = optuna.create_study(study_name=settings.sweep_name, storage=storage, direction=direction,
                                           load_if_exists=True)

        def finished_trials() -> int:
            return len(optuna_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                       optuna.trial.TrialState.FAIL)))

        interrupted = interrupted_trials(optuna_study)
        done, stored_before = finished_trials(), len(prepared.finished)
        if not settings.quiet:
            print(f"[sweep] {settings.sweep_name}: {trials} trials, {done} done "
                  f"({stored_before} distinct configs stored)" +
                  (f"; {len(interrupted)} left running by a stopped driver, proposed again first" if interrupted
                   else ""))
        if done < trials:
            # A sampler seeded as before would replay its random start-up proposals after a resume: seed it from
            # (seed, trials done), deterministic yet new at every resume.
            sampler = optuna.samplers.TPESampler(seed=derive_seed(seed, "optuna", done) % 2**32)
            searcher = OptunaSearch(space=space, metric="search_score", mode="max" if study.higher_is_better else "min",
                                    study_name=settings.sweep_name, storage=storage, sampler=sampler,
                                    points_to_evaluate=interrupted[: trials - done] or None)
            callback = StoreCallback(store, prepared.sweep_id, prepared.provenance, trials, done,
                                     settings.quiet, study.name, base=base,
                                     checkpoints=prepared.shared["checkpoints"])
            fit(settings, tune.with_parameters(single_trainable, base=base, **prepared.shared), callback,
                tune.TuneConfig(search_alg=searcher, num_samples=trials - done, reuse_actors=True,
                                max_concurrent_trials=settings.max_concurrent or None), {}, trials - done)
        stored, failed = stored_and_failed(prepared)
        finished = finished_trials()
        return {"total": trials, "trials": finished, "stored": stored, "new": stored - stored_before,
                "failed": failed, "remaining": max(0, trials - finished)}


def interrupted_trials(optuna_study: Any) -> list[dict[str, Any]]:
    """The values of the trials a stopped driver left running, each now marked pruned (so it counts neither as done
    nor as failed). The caller holds the sweep, so no other driver runs them."""
    import optuna

    running = optuna_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        optuna_study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
    return [trial.params for trial in running]


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
