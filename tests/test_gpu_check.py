"""benchmarks/gpu_check.py runs end to end (on the CPU, quick), so the GPU path's one command cannot rot."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_runs_quick_on_cpu_and_writes_its_json_log_and_stored_run(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(tmp_path), "--device", "cpu",
                           "--quick"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["failed"] == []
    for section in ("parity", "optimizer", "captured_step", "waves", "stored_run", "throughput"):
        assert report[section].get("ok", True) is True, section
    assert report["captured_step"]["captured"] is False and report["captured_step"]["bitwise_equal"]  # both eager here
    assert report["parity"]["ebgan.float64"]["gradient_l2_relative_error"] <= 1e-9
    assert 0.001 < report["parity"]["gan.bf16"]["gradient_l2_relative_error"] <= 0.25  # bf16 really rounds
    for update in ("fused", "eager"):  # --quick on a CPU leaves the compiled update to tests/test_optim.py
        assert report["optimizer"][update]["masked_member_untouched"] is True, update
    assert "compiled" not in report["optimizer"]
    assert report["optimizer"]["default"] == "fused"  # on a CPU
    assert 0 < report["optimizer_share_laptop"] < 1 and 0 < report["optimizer_share_fig4b"] < 1
    assert report["kernel_launches_per_step"] is None and report["kernel_launches"] is None  # counted on CUDA only
    assert report["waves"]["forced_wave_sizes"] == [2, 2, 1]
    assert set(report["throughput"]["precisions"]) == {"fp32", "bf16"} and "bf16_speedup_demo" in report["throughput"]
    assert set(report["projected_paper_study_seconds"]) == {"fp32", "bf16"}
    with sqlite3.connect(tmp_path / "gpu_check.sqlite") as db:
        assert db.execute("select count(*), min(status), max(status) from trials").fetchone() == (
            report["stored_run"]["configs"], "completed", "completed")
    assert "[gpu-check] all checks passed" in (tmp_path / "gpu_check.log").read_text()


def test_gpu_check_without_cuda_says_how_to_run_it(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so the missing-CUDA message cannot be provoked")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "fix: run on a GPU machine, or pass --device cpu --quick" in done.stderr
