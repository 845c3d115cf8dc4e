"""A stopped driver loses no training: a sweep's driver killed (SIGKILL: a closed laptop, an out-of-memory kill, a lost
head node) or stopped (SIGTERM) after a group saved its state, then the same command run again, resumes the group
from that checkpoint, and every stored result (scores, curves, sample grids, interim scores and grids) equals a
never-stopped run's bit for bit. Both studies, both executors, adaptive search too; a lost worker (the driver alive)
resumes from the same checkpoints."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from database_servers import query

from ebgan_core.group import member_keys
from ebgan_core.provenance import code_version
from sweeps.group_checkpoints import FOLDER, GroupCheckpoints
from sweeps.table1.grids import grid

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
# One thread everywhere: a result depends on the thread count through the order of its sums (Ray workers of 1 CPU run
# one thread too).
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
OUTCOME = {
    "trials": "select t.config_hash, t.seed, t.status, t.i_prime, t.frechet_distance, t.test_error, "
              "t.class_histogram, t.steps_done, t.diverged_at_step, t.group_size, c.curves, s.png from trials t "
              "join curves c on c.trial_id = t.id left join samples s on s.trial_id = t.id order by 1, 2",
    "interim scores": "select t.config_hash, t.seed, i.step, i.i_prime, i.frechet_distance, i.test_error, "
                      "i.n_samples from interim_scores i join trials t on t.id = i.trial_id order by 1, 2, 3",
    "interim grids": "select t.config_hash, t.seed, i.step, i.png from interim_samples i "
                     "join trials t on t.id = i.trial_id order by 1, 2, 3",
}
# Fig. 9's 7 margins at demo size as one group of 200 steps (a few seconds), saving its state about every 0.6 s.
MARGINS = ["--grid", "margin", "--profile", "demo", "--max-members", "7"]
# Table 2's ladder (LN) at 1/16 width, three learning rates in one group of 120 steps, scored every 40.
LADDER_GRID = """\
    study = "table2"
    max_members = 3
    score_every = 40
    [base]
    family = "ln"
    width_divisor = 16
    steps = 120
    decay_start = 80
    bn_samples = 500
    [axes]
    lr = [0.002, 0.001, 0.0005]
"""


def sweep(folder: Path, *flags: str) -> list[str]:
    """The sweep command as a user types it, into ``folder``'s results (database, group checkpoints)."""
    return [sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), *flags, "--db",
            f"sqlite:///{folder / 'r.sqlite'}", "--storage-path", str(folder / "ray")]


def finish(command: list[str], folder: Path) -> str:
    """Run ``command`` to its end in its own session; check it succeeded and left no process (no Ray) behind."""
    driver = subprocess.Popen(command, cwd=folder, env=ENV, start_new_session=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    output = driver.communicate(timeout=600)[0]
    assert driver.returncode == 0, output[-3000:]
    deadline = time.monotonic() + 20
    while (left := subprocess.run(["pgrep", "-s", str(driver.pid)], capture_output=True, text=True).stdout) and \
            time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == "", f"processes left running: {left}"
    return output


def until_first_save(command: list[str], folder: Path) -> tuple[subprocess.Popen, list[str]]:
    """``command`` started in its own session, and its output up to a group's first "saved its state" line."""
    driver = subprocess.Popen(command, cwd=folder, env=ENV, start_new_session=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in driver.stdout:
        lines.append(line)
        if "saved its state at step" in line:
            return driver, lines
    raise AssertionError(f"no group saved its state: {''.join(lines)[-3000:]}")


def stop_after_first_save(command: list[str], folder: Path, stop: signal.Signals) -> str:
    """Run ``command``; once a group says it saved its state, send ``stop``: SIGKILL to the whole session (the driver
    and any Ray it started, as a lost machine), SIGTERM to the driver alone."""
    driver, lines = until_first_save(command, folder)
    if stop == signal.SIGKILL:
        os.killpg(driver.pid, signal.SIGKILL)
    else:
        driver.send_signal(stop)
    return "".join(lines) + driver.communicate(timeout=300)[0]


def outcome(folder: Path) -> dict[str, list[tuple]]:
    return {name: query(f"sqlite:///{folder / 'r.sqlite'}", sql) for name, sql in OUTCOME.items()}


@pytest.fixture(scope="module")
def never_stopped(tmp_path_factory) -> dict[str, dict[str, list[tuple]]]:
    """Each sweep of this module run once without a stop and without checkpoints (no Ray: the local executor stores
    the same rows as Ray, tests/test_sweep_ray.py)."""
    results = {}
    for name, flags in {"margins": MARGINS, "ladder": ["--grid", "ladder.toml"]}.items():
        folder = tmp_path_factory.mktemp(name)
        (folder / "ladder.toml").write_text(textwrap.dedent(LADDER_GRID))
        finish(sweep(folder, *flags, "--executor", "local", "--checkpoint-minutes", "0"), folder)
        results[name] = outcome(folder)
        assert len(results[name]["trials"]) == {"margins": 7, "ladder": 3}[name] and results[name]["interim scores"]
    assert results["margins"]["interim grids"]
    return results


def resumed_step(output: str, total: int) -> int:
    """The step a group said it resumed from, checking it says so once."""
    lines = [line for line in output.splitlines() if "resuming from its checkpoint at step" in line]
    assert len(lines) == 1, output[-3000:]
    step = int(lines[0].split("at step ")[1].split("/")[0])
    assert 0 < step < total and f"/{total} (" in lines[0]
    return step


def assert_resumed_and_equal(folder: Path, output: str, reference: dict[str, list[tuple]], total: int) -> None:
    step = resumed_step(output, total)
    assert set(query(f"sqlite:///{folder / 'r.sqlite'}", "select resumed_from_step from trials")) == {(step,)}
    assert outcome(folder) == reference
    assert not list((folder / "ray" / FOLDER).rglob("*.pt")), "a stored group's checkpoint was kept"


def test_stopped_driver_killed_mid_group_resumes_it_from_its_checkpoint_table1(never_stopped, tmp_path):
    """The local executor; on Ray tests/test_sweep_signals.py kills a driver and its Ray the same way."""
    command = sweep(tmp_path, *MARGINS, "--executor", "local", "--checkpoint-minutes", "0.01")
    stop_after_first_save(command, tmp_path, signal.SIGKILL)
    assert query(f"sqlite:///{tmp_path / 'r.sqlite'}", "select count(*) from trials") == [(0,)]
    assert len(list((tmp_path / "ray" / FOLDER).rglob("*.pt"))) == 1
    output = finish(command, tmp_path)
    assert_resumed_and_equal(tmp_path, output, never_stopped["margins"], 200)


def test_stopped_driver_sigterm_mid_group_resumes_it_from_its_checkpoint_table2(never_stopped, tmp_path):
    (tmp_path / "ladder.toml").write_text(textwrap.dedent(LADDER_GRID))
    command = sweep(tmp_path, "--grid", "ladder.toml", "--executor", "local", "--checkpoint-minutes", "0.005")
    stopped = stop_after_first_save(command, tmp_path, signal.SIGTERM)
    assert "the same command resumes" in stopped, stopped[-3000:]
    output = finish(command, tmp_path)
    assert_resumed_and_equal(tmp_path, output, never_stopped["ladder"], 120)


def test_stopped_driver_leaves_a_checkpoint_only_its_own_group_and_code_resume(never_stopped, tmp_path, capsys):
    command = sweep(tmp_path, *MARGINS, "--executor", "local", "--checkpoint-minutes", "0.01")
    stop_after_first_save(command, tmp_path, signal.SIGKILL)
    (saved,) = (tmp_path / "ray" / FOLDER).rglob("*.pt")
    configs = grid("margin", "demo")
    checkpoints = GroupCheckpoints(str(tmp_path / "ray"), "margin-demo", code_version(), 60.0)
    assert checkpoints.checkpointing("table1", configs).resume["run"]["step"] > 0
    assert dataclasses.replace(checkpoints, code_version="0.0+gother").checkpointing("table1", configs).resume is None
    assert "saved by code" in capsys.readouterr().out
    shutil.copy(saved, checkpoints.location(member_keys(configs[:6])))  # a state copied under other members' name
    assert checkpoints.checkpointing("table1", configs[:6]).resume is None
    assert "for other members" in capsys.readouterr().out
    Path(checkpoints.location(member_keys(configs[:6]))).unlink()

    saved.write_bytes(saved.read_bytes()[:2000])  # a disk that filled up, or a copy cut short
    output = finish(command, tmp_path)
    refused = [line for line in output.splitlines() if "refused, training from step 0" in line]
    assert len(refused) == 1 and "corrupt or not ours" in refused[0], output[-3000:]
    assert "resuming from" not in output
    assert set(query(f"sqlite:///{tmp_path / 'r.sqlite'}", "select resumed_from_step from trials")) == {(None,)}
    assert outcome(tmp_path) == never_stopped["margins"]
    assert not (tmp_path / "ray" / FOLDER / "margin-demo").exists(), "the finished sweep's checkpoint folder was kept"


def test_a_group_whose_worker_is_killed_resumes_from_its_checkpoint_within_the_same_run(never_stopped, ray_address,
                                                                                         tmp_path):
    """The driver alive, the group's Ray worker SIGKILLed after its first save (as a lost node): Tune runs the group
    again, and it resumes from the same checkpoint a rerun of the driver would."""
    command = sweep(tmp_path, *MARGINS, "--cpus-per-group", "1", "--retries", "1", "--checkpoint-minutes", "0.01",
                    "--address", ray_address)
    driver, lines = until_first_save(command, tmp_path)
    raylet = subprocess.run(["pgrep", "-f", f"raylet .*--gcs-address={ray_address} "], capture_output=True,
                            text=True).stdout.split()
    assert len(raylet) == 1, f"the tests' Ray has one raylet, found {raylet}"
    killed = subprocess.run(["pkill", "-KILL", "-P", raylet[0], "-f", "ray::ImplicitFunc"], capture_output=True)
    output = "".join(lines) + driver.communicate(timeout=600)[0]
    assert killed.returncode == 0, "no trial worker was found to kill"
    assert driver.returncode == 0 and "lost its worker" in output, output[-3000:]
    assert_resumed_and_equal(tmp_path, output, never_stopped["margins"], 200)


def test_stopped_driver_mid_adaptive_trial_proposes_it_again_and_resumes_it(ray_address, tmp_path):
    """Adaptive search (Optuna on Ray): the trial a killed driver left running is proposed again first, with the same
    values, and resumes from its checkpoint; its result equals that of the same search never stopped. All three
    drivers join the tests' shared Ray, as on a cluster: the killed one alone is lost, and Ray ends its trial."""
    search = ["--grid", "ebgan", "--profile", "demo", "--search", "optuna", "--trials", "1", "--cpus-per-group", "1"]
    reference = tmp_path / "never-stopped"
    reference.mkdir()
    finish(sweep(reference, *search, "--checkpoint-minutes", "0", "--address", ray_address), reference)
    command = sweep(tmp_path, *search, "--checkpoint-minutes", "0.01", "--address", ray_address)
    stop_after_first_save(command, tmp_path, signal.SIGKILL)
    output = finish(command, tmp_path)
    assert "1 left running by a stopped driver, proposed again first" in output, output[-3000:]
    steps = query(f"sqlite:///{tmp_path / 'r.sqlite'}", "select steps_done from trials")
    assert_resumed_and_equal(tmp_path, output, outcome(reference), steps[0][0])
