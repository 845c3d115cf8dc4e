"""The Python steps of `make cluster-test` (``sweeps/cluster_test.sh``), here so that the test suite runs them too:
the on-prem venv YAML pointed at one machine, and the check of the database fetched back from the cluster.

    python -m sweeps.cluster_check config WORK_DIR NODE_USER   # writes WORK_DIR/cluster.yaml
    python -m sweeps.cluster_check fetched DATABASE            # exit 0 when it holds the smoke grid, once each
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import yaml

from sweeps.table1.grids import grid

ONPREM_VENV = Path(__file__).resolve().parent / "cluster-onprem-venv.yaml"


def node_config(work: Path, user: str) -> Path:
    """``cluster-onprem-venv.yaml`` as shipped but for its address (127.0.0.1), user and key (``work/id_ed25519``)."""
    config = yaml.safe_load(ONPREM_VENV.read_text())
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {"ssh_user": user, "ssh_private_key": str(work / "id_ed25519")}
    path = work / "cluster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def fetched_database_holds_the_smoke_grid(database: Path) -> tuple[bool, str]:
    """Whether ``database`` holds every config of ``--grid all --profile smoke`` once, completed; and a line saying
    what it holds."""
    expected = len(grid("all", "smoke"))
    with sqlite3.connect(database) as db:
        rows, distinct, completed = db.execute(
            "select count(*), count(distinct config_hash || ':' || seed), coalesce(sum(status = 'completed'), 0) "
            "from trials").fetchone()
    line = f"fetched database: {rows} rows, {distinct} distinct configs, {completed} completed, {expected} expected"
    return rows == distinct == completed == expected, line


def main(argv: list[str]) -> int:
    if argv[:1] == ["config"] and len(argv) == 3:
        node_config(Path(argv[1]), argv[2])
        return 0
    if argv[:1] == ["fetched"] and len(argv) == 2:
        ok, line = fetched_database_holds_the_smoke_grid(Path(argv[1]))
        print(f"[cluster-test] {line}")
        return 0 if ok else 1
    print("usage: python -m sweeps.cluster_check config WORK_DIR NODE_USER | fetched DATABASE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
