"""Adaptive search with Optuna on a real local Ray cluster (joined by address): trials land in the trials table and
resume."""

from __future__ import annotations

import json

import optuna
import pytest
from database_servers import query

from sweeps.adaptive import optuna_storage_url, run_optuna
from sweeps.settings import SweepSettings
from sweeps.studies import search_study
from sweeps.table1.search_space import optuna_space, search_base

pytestmark = pytest.mark.slow


def test_search_space_is_table_1_at_the_profile_widths():
    space = optuna_space("gan", "smoke")
    assert space["size_g"].choices == (25, 50, 100, 200) and space["lr"].choices == (0.01, 0.001, 0.0001)
    continuous = optuna_space("ebgan", "smoke", continuous=True)
    assert continuous["lr"].log and {"margin", "pt_weight"} <= set(continuous)
    assert search_base("ebgan", "smoke", seed=3)["seed"] == 3
    with pytest.raises(ValueError, match="adaptive search runs on one family or model"):
        search_study("all")
    assert search_study("ln").name == "table2" and search_study("gan").name == "table1"


def test_optuna_sweep_stores_its_trials_and_resumes(results_url, ray_address, tmp_path):
    settings = SweepSettings(grid="ebgan", profile="smoke", db_url=results_url, search="optuna",
                             storage_path=str(tmp_path / "ray"), quiet=True, address=ray_address)
    first = run_optuna(settings, trials=3)
    assert first["trials"] == 3 and first["stored"] == 3 and first["remaining"] == 0
    assert query(results_url, "select name, search from sweeps") == [("ebgan-smoke-optuna", "optuna")]
    rows = query(results_url, "select search, status, family, i_prime from trials")
    assert len(rows) == 3 and {(r[0], r[1], r[2]) for r in rows} == {("optuna", "completed", "ebgan")}
    study = optuna.load_study(study_name="ebgan-smoke-optuna", storage=optuna_storage_url(results_url))
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 3
    # The same command with a larger budget resumes: the study and the stored trials both carry on.
    second = run_optuna(settings, trials=5)
    assert second["trials"] == 5 and second["remaining"] == 0 and 4 <= second["stored"] <= 5
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 5
    assert query(results_url, "select count(*) from trials") == [(second["stored"],)]
    assert run_optuna(settings, trials=5)["new"] == 0


def test_table2_adaptive_search_minimises_the_test_error(results_url, ray_address, tmp_path):
    settings = SweepSettings(grid="ln", profile="smoke", db_url=results_url, search="optuna",
                             storage_path=str(tmp_path / "ray"), quiet=True, address=ray_address)
    counts = run_optuna(settings, trials=2)
    assert counts["trials"] == 2 and counts["remaining"] == 0
    rows = query(results_url, "select study, search, status, family, config, test_error from trials")
    assert {r[:4] for r in rows} == {("table2", "optuna", "completed", "ln")} and all(r[5] > 0 for r in rows)
    assert {json.loads(r[4])["labels"] for r in rows} == {100}  # the smoke profile's first label count
    study = optuna.load_study(study_name="ln-smoke-optuna", storage=optuna_storage_url(results_url))
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert sorted(t.value for t in study.trials) == sorted(r[5] for r in rows)
