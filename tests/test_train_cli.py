"""`ebgan train` end to end: files written, checkpoint reloads to the same generator, bad input is one line."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from analysis.command import main
from ebgan_core.checkpoint import CheckpointError
from ebgan_core.images import to_uint8
from ebgan_core.rng import fixed_noise
from ebgan_core.table1.checkpoint import load_checkpoint

TINY_FLAGS = ["--n-layer-g", "2", "--size-g", "32", "--n-layer-d", "2", "--size-d", "16", "--batch-size", "16",
              "--noise-dim", "8", "--steps", "4", "--score-samples", "40"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    main(["train", "--preset", "fig4c", *TINY_FLAGS, "--out-dir", str(out), "--device", "cpu"])
    (directory,) = out.iterdir()
    return directory


def test_train_writes_samples_metrics_and_checkpoint(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] == 4
    assert metrics["config"]["pt_weight"] == 0.1 and metrics["config"]["size_g"] == 32  # preset + overrides
    assert run_dir.name == f"{metrics['config_hash'][:12]}-seed0"
    assert metrics["scores"]["n_samples"] == 40 and "i_prime" in metrics["scores"]
    assert {"torch", "numpy", "python"} <= set(metrics["library_versions"]) and metrics["code_version"]
    image = Image.open(io.BytesIO((run_dir / "samples.png").read_bytes()))
    assert image.size[0] == image.size[1] > 8 * 32


def test_checkpoint_reloads_the_trained_generator(run_dir):
    config, model, metadata = load_checkpoint(run_dir / "checkpoint.pt")
    assert config.config_hash() == json.loads((run_dir / "metrics.json").read_text())["config_hash"]
    assert metadata["status"] == "completed"
    with torch.no_grad():
        grid = to_uint8(model.generator(fixed_noise(64, config.noise_dim).unsqueeze(0)))[0]
    png = np.array(Image.open(run_dir / "samples.png"))
    assert grid.shape == (64, 32, 32)
    assert np.array_equal(png[4:68:2, 4:68:2], grid[0, :, :])  # first tile, upscaled 2x after a 2px gap


def test_damaged_or_foreign_checkpoints_are_refused(run_dir, tmp_path):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes((run_dir / "checkpoint.pt").read_bytes()[:3000])
    with pytest.raises(CheckpointError, match="corrupt or not ours"):
        load_checkpoint(damaged)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": 7}, foreign)
    with pytest.raises(CheckpointError, match="has format 7"):
        load_checkpoint(foreign)
    malicious = tmp_path / "malicious.pt"
    torch.save({"format": 1, "config": _Exploit()}, malicious)
    with pytest.raises(CheckpointError, match="corrupt or not ours"):
        load_checkpoint(malicious)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_a_checkpoint_from_before_formats_were_named_still_loads(run_dir, tmp_path):
    payload = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert (payload["format"], payload["version"], payload["study"]) == ("ebgan-sweep member checkpoint", 1, "table1")
    old = tmp_path / "old.pt"
    torch.save({k: v for k, v in payload.items() if k not in ("version", "study")} | {"format": 1}, old)
    config, model, _ = load_checkpoint(old)
    assert config.config_hash() == json.loads((run_dir / "metrics.json").read_text())["config_hash"]
    current = load_checkpoint(run_dir / "checkpoint.pt")[1]
    assert torch.equal(model.generator.output.weight, current.generator.output.weight)


def test_train_at_a_profile_takes_its_widths_steps_batch_samples_and_interim_scores(tmp_path):
    main(["train", "--preset", "fig4b", "--profile", "smoke", "--noise-dim", "8", "--out-dir", str(tmp_path),
          "--device", "cpu"])
    (directory,) = tmp_path.iterdir()
    metrics = json.loads((directory / "metrics.json").read_text())
    # fig4b is G 5x800, D 2x1024; the smoke profile divides widths by 16 and trains 6 steps at batch 16, 32 samples.
    config = metrics["config"]
    assert (config["size_g"], config["size_d"], config["n_layer_g"], config["n_layer_d"]) == (50, 64, 5, 2)
    assert (config["steps"], config["batch_size"], config["score_samples"], config["noise_dim"]) == (6, 16, 32, 8)
    assert metrics["scores"]["n_samples"] == 32 and list(metrics["interim_scores"]) == ["3"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "-0.1"], "lr must be a positive finite number"),
        (["--optim-g", "rmsprop"], "argument --optim-g: invalid choice: 'rmsprop'"),
        (["--family", "gan", "--pt-weight", "0.1"], "pt_weight applies to EBGAN only"),
    ],
)
def test_bad_flags_are_one_line_errors(flags, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *flags, "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not list(tmp_path.iterdir()), "nothing is written for a bad config"


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_ctrl_c_stops_training_with_one_line(tmp_path):
    command = [str(Path(sys.executable).parent / "ebgan"), "train", "--preset", "fig4c", *TINY_FLAGS[:-4],
               "--steps", "100000", "--out-dir", str(tmp_path), "--device", "cpu"]
    training = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert training.stdout.readline().startswith("training ")
    training.send_signal(signal.SIGINT)
    _, stderr = training.communicate(timeout=60)
    assert training.returncode == 130 and stderr.strip().splitlines()[-1] == "stopped: ebgan train interrupted"
    assert "Traceback" not in stderr
