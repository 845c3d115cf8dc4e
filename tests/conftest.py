"""Shared fixtures: real MNIST and the real shipped judge, loaded once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from database_servers import missing_reason, postgres_server

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


@pytest.fixture(scope="session")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    from ebgan_core.data import load_mnist

    return load_mnist("test")


@pytest.fixture(scope="session")
def mnist_train() -> tuple[torch.Tensor, torch.Tensor]:
    from ebgan_core.data import load_mnist

    return load_mnist("train")


@pytest.fixture(scope="session")
def judge():
    from ebgan_core.table1.classifier import load_classifier

    model, _ = load_classifier()
    return model


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """One local Ray cluster (a head node of this machine's CPUs) for the sweeps whose tests do not test Ray's own
    start-up: they join it with --address, as a cluster user would, instead of each starting a Ray of its own (3 s each
    on an idle 2-core machine, several times that under the suite's load). Started on first use, stopped (its own
    processes only) at the end of the session."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": os.cpu_count(), "include_dashboard": False})
    try:
        yield cluster.address
    finally:
        cluster.shutdown()


@pytest.fixture(params=["sqlite", "postgresql"])
def results_url(request, tmp_path) -> Iterator[str]:
    """A results database URL: a SQLite file, or a real PostgreSQL 15 server started for the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'r.sqlite'}"
        return
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url
