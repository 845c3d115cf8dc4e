"""A folder of images as training data: decoded once (centre-cropped, resized, grey or RGB) into a cache named by the
listing's checksum, read back memory-mapped; a folder that cannot serve is a one-line error naming the file."""

from __future__ import annotations

import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from analysis.explore.data import FOLDER_SCORE_NOTE, study_runs
from ebgan_core.data import sha256_file
from ebgan_core.fid import (
    FidInceptionV3,
    FidScorer,
    FidWeightsError,
    fid_features,
    fid_network,
    load_fid_weights,
    statistics,
)
from ebgan_core.image_folder import ImageFolderError, load_image_folder

REPO = Path(__file__).resolve().parent.parent


def make_folder(root: Path, count: int = 5, mode: str = "RGB", size: tuple[int, int] = (20, 12)) -> Path:
    """``count`` images of ``size`` (width, height): a left and a right fifth of other colours, so that a centre crop
    shows only the middle one; image i's middle has value 10 i in every channel."""
    root.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pixels = np.full((size[1], size[0], 3), 10 * index, dtype=np.uint8)
        pixels[:, : size[0] // 5], pixels[:, -(size[0] // 5):] = 250, 200
        image = Image.fromarray(pixels).convert(mode)
        image.save(root / (f"img{index}.png" if index % 2 else f"sub/img{index}.jpg".replace("sub/", "")))
    return root


def test_a_folder_is_decoded_once_into_square_images_of_the_asked_size(tmp_path):
    folder = make_folder(tmp_path / "rgb")
    decoded = load_image_folder(folder, 8, cache_dir=tmp_path / "cache")
    assert decoded.images.shape == (5, 3, 8, 8) and decoded.images.dtype == np.uint8 and decoded.channels == 3
    assert isinstance(decoded.images, np.memmap)
    png = sorted(folder.glob("*.png"))[0]  # img1.png, lossless: its centre square is value 10 throughout
    index = sorted(p.name for p in folder.iterdir()).index(png.name)
    assert np.abs(decoded.images[index].astype(int) - 10).max() <= 1  # the side fifths are cropped away
    cached = list((tmp_path / "cache" / "images").glob("*.npy"))
    assert [p.name for p in cached] == [f"{decoded.listing_sha256}-8.npy"]
    before = cached[0].stat().st_mtime_ns
    again = load_image_folder(folder, 8, cache_dir=tmp_path / "cache")
    assert again.listing_sha256 == decoded.listing_sha256 and cached[0].stat().st_mtime_ns == before
    assert np.array_equal(again.images, decoded.images)


def test_a_grey_folder_has_one_channel_and_a_changed_folder_another_checksum(tmp_path):
    folder = make_folder(tmp_path / "grey", mode="L")
    first = load_image_folder(folder, 8, cache_dir=tmp_path / "cache")
    assert first.images.shape == (5, 1, 8, 8)
    changed = sorted(folder.glob("*.png"))[0]
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    assert load_image_folder(folder, 8, cache_dir=tmp_path / "cache").listing_sha256 != first.listing_sha256


@pytest.mark.parametrize(("prepare", "message"), [
    (lambda f: None, "not found"),
    (lambda f: f.mkdir(), "holds no PNG or JPEG files"),
    (lambda f: (make_folder(f), (f / "notes.txt").write_text("x")),
     re.escape("1 file(s) that are not PNG or JPEG, the first notes.txt; fix: move them out")),
    (lambda f: (make_folder(f), (f / "broken.png").write_bytes(b"not a png")), "cannot read image broken.png"),
    (lambda f: (make_folder(f), (f / "cut.png").write_bytes((f / "img1.png").read_bytes()[:60])),
     "image cut.png in"),
])
def test_a_folder_that_cannot_serve_is_a_one_line_error_naming_the_file(tmp_path, prepare, message):
    folder = tmp_path / "data"
    prepare(folder)
    with pytest.raises(ImageFolderError, match=message) as error:
        load_image_folder(folder, 8, cache_dir=tmp_path / "cache")
    assert "\n" not in str(error.value) and "fix:" in str(error.value)
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # no half-written cache left behind


def test_hidden_files_are_skipped(tmp_path):
    folder = make_folder(tmp_path / "data", count=2)
    (folder / ".DS_Store").write_bytes(b"\0")
    assert load_image_folder(folder, 8, cache_dir=tmp_path / "cache").images.shape[0] == 2


def folder_sweep(db: Path, folder: Path, *flags: str, grid: str = "images") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--grid", grid, "--profile", "smoke",
                           "--executor", "local", "--db", f"sqlite:///{db}", "--images", str(folder), "--quiet",
                           *flags], cwd=db.parent, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "EBGAN_DATA_DIR": str(db.parent / "cache")})


@pytest.mark.slow
def test_a_sweep_trains_the_convolutional_presets_on_a_folder_and_refuses_a_changed_one(tmp_path):
    folder = make_folder(tmp_path / "faces", count=20)
    db = tmp_path / "r.sqlite"
    done = folder_sweep(db, folder)
    assert done.returncode == 0, done.stderr[-3000:]
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select t.dataset, t.channels, t.status, t.i_prime, s.png from trials t "
                                  "join samples s on s.trial_id = t.id").fetchall()
    sha = load_image_folder(folder, 16, cache_dir=tmp_path / "cache").listing_sha256
    assert len(rows) == 3 and {r[:4] for r in rows} == {(f"folder-{sha}", 3, "completed", None)}
    assert Image.open(io.BytesIO(rows[0][4])).mode == "RGB"  # colour sample grids
    ebgan, url = str(Path(sys.executable).parent / "ebgan"), f"sqlite:///{db}"
    drawn = subprocess.run([ebgan, "figures", "--db", url, "--out", str(tmp_path / "figures")], capture_output=True,
                           text=True, timeout=300)
    assert drawn.returncode == 0 and {p.stem for p in (tmp_path / "figures").glob("*.png")} == {"images_folder_samples"}
    report = subprocess.run([ebgan, "report", "--db", url, "--figures", str(tmp_path / "figures"), "--out",
                             str(tmp_path / "report.html")], capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert f"Images from a folder (listing {sha[:12]})" in (tmp_path / "report.html").read_text()
    assert "no I&#x27; (the judge knows MNIST&#x27;s digits only)" in (tmp_path / "report.html").read_text()
    assert_the_explore_page_says_why_runs_have_no_score(db)
    (folder / "img1.png").touch()  # the listing changes
    rerun = folder_sweep(db, folder)
    assert rerun.returncode == 2 and rerun.stderr.count("\n") == 1  # refused before the folder is decoded again
    assert rerun.stderr.startswith("error: sweep 'images-smoke' was trained on image folder listing")
    assert rerun.stderr.strip().endswith("fix: restore the folder, or choose another --name")
    with sqlite3.connect(db) as connection:
        assert connection.execute("select count(*) from trials").fetchone() == (3,)  # nothing stored is lost
    few = folder_sweep(tmp_path / "few.sqlite", make_folder(tmp_path / "few", count=3))
    assert few.returncode == 2 and "holds 3 images, fewer than a batch of 16" in few.stderr
    fully_connected = folder_sweep(tmp_path / "mlp.sqlite", folder, grid="ebgan")
    assert fully_connected.returncode == 2 and "--images trains convolutional configs only" in fully_connected.stderr


def assert_the_explore_page_says_why_runs_have_no_score(db: Path) -> None:
    """In a real browser: the study's note above the plot and an opened run's note under its title."""
    from test_explore import FIRST_VIEW, served

    from analysis.explore.browser import chromium_page

    for url in served(db):
        with chromium_page() as page:
            page.goto(url)
            page.wait_for_function(FIRST_VIEW)
            assert "3 runs trained on an image folder without FID weights" in page.inner_text("#study-notes")
            page.click("#runs tbody tr")
            note = page.wait_for_selector(".card .run-note")
            assert "no I' (the judge knows MNIST's digits only) and no FID" in note.inner_text()


def save_random_fid_weights(folder: Path) -> Path:
    """A randomly initialised FID network in pytorch-fid's file format (He-initialised convolutions, so that its
    features depend on its input through 47 layers), named as torch hub names files (the first 8 hex digits of its
    sha256 after the last dash)."""
    torch.manual_seed(0)
    network = FidInceptionV3()
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
    path = folder / "random-inception.pth"
    torch.save(network.state_dict(), path)
    named = folder / f"pt_inception-random-{sha256_file(path)[:8]}.pth"
    path.rename(named)
    return named


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory) -> Path:
    return save_random_fid_weights(tmp_path_factory.mktemp("fid"))


def test_the_fid_network_has_pytorch_fids_parameters_and_scores_a_set_against_itself_as_zero(fid_weights):
    state, sha = load_fid_weights(fid_weights)
    assert sum(t.numel() for k, t in state.items() if not k.endswith("running_mean") and not k.endswith(
        "running_var") and not k.endswith("num_batches_tracked")) == 23_850_960  # torchvision's Inception3, 1008
    # classes, no auxiliary logits: pytorch-fid's network
    assert fid_weights.name.split("-")[-1] == f"{sha[:8]}.pth"
    network = fid_network(state)
    images = torch.rand(12, 3 * 16 * 16) * 2 - 1
    mean, cov = statistics(fid_features(network, images, 3))
    scorer = FidScorer(network, mean, cov)
    assert scorer.score(images, 3)["frechet_distance"] == pytest.approx(0.0, abs=1e-6)
    assert scorer.score(-images, 3)["frechet_distance"] > 1e-3


@pytest.mark.parametrize(("make", "message"), [
    (lambda d, w: d / "absent.pth", "not found"),
    (lambda d, w: Path(shutil.copy(w, d / "pt_inception-2015-12-05-6726825d.pth")),
     "does not start with the 6726825d its name promises"),
    (lambda d, w: (torch.save({"fc.weight": torch.zeros(3, 3)}, d / "small.pth"), d / "small.pth")[1],
     "do not fit pytorch-fid's InceptionV3"),
    (lambda d, w: (torch.save({"network": FidInceptionV3}, d / "pickled.pth"), d / "pickled.pth")[1],
     "do not load as plain tensors"),
])
def test_fid_weights_that_cannot_serve_are_one_line_errors(tmp_path, fid_weights, make, message):
    with pytest.raises(FidWeightsError, match=message) as error:
        load_fid_weights(make(tmp_path, fid_weights))
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_a_folder_sweep_with_fid_weights_scores_every_run_by_fid_against_the_folder(tmp_path, fid_weights):
    folder = make_folder(tmp_path / "faces", count=20)
    grid = tmp_path / "one.toml"
    grid.write_text('study = "table1"\nscore_every = 0\n[base]\nfamily = "gan"\narchitecture = "conv"\n'
                    'image_size = 16\nwidth = 4\nsteps = 3\nbatch_size = 8\nscore_samples = 16\n[axes]\n'
                    'lr = [0.0002, 0.001]\n')
    db = tmp_path / "r.sqlite"
    done = folder_sweep(db, folder, "--fid-weights", str(fid_weights), grid=str(grid))
    assert done.returncode == 0, done.stderr[-3000:]
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select status, n_samples, frechet_distance, i_prime, judge_sha256 from trials"
                                  ).fetchall()
    sha = sha256_file(fid_weights)
    assert len(rows) == 2 and all(r[:2] == ("completed", 16) and r[2] > 0 and r[3] is None and r[4] == sha
                                  for r in rows)
    assert list((tmp_path / "cache" / "images").glob(f"*-16-fid-{sha[:16]}.npz"))  # the folder's statistics, cached
    explore = study_runs(f"sqlite:///{db}", "table1")  # the explore page's data: the FID as an axis, and why
    assert explore["notes"] == [f"2 runs {FOLDER_SCORE_NOTE}"]
    assert "frechet_distance" in [axis["name"] for axis in explore["axes"]]
