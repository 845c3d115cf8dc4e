"""The paper's convolutional GANs (Section 4.3, Appendix C) as Table 1 configs of architecture ``conv``: their
configs, each member against the same textbook PyTorch model, members alone and in a group, and the images grids."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch

from ebgan_core.table1.config import PRESETS, TrialConfig
from ebgan_core.table1.footprint import flops_per_step, member_bytes
from ebgan_core.table1.train import train_group
from sweeps.table1.grids import grid

REPO = Path(__file__).resolve().parent.parent
EBGAN = str(Path(sys.executable).parent / "ebgan")
TINY_CONV = TrialConfig(family="ebgan", architecture="conv", image_size=32, width=4, batch_size=16, noise_dim=16,
                        steps=20, score_samples=64, lr=0.0002)


@pytest.fixture(scope="module")
def real_subset(mnist_train) -> torch.Tensor:
    return mnist_train[0][:2048]


def test_a_conv_config_hashes_its_own_fields_and_table_1_configs_keep_theirs():
    conv = PRESETS["conv-ebgan"]
    canonical = conv.canonical()
    assert {"architecture": "conv", "image_size": 64, "width": 64}.items() <= canonical.items()
    assert not {"n_layer_g", "size_g", "n_layer_d", "size_d", "dropout_d", "dropout_rate"} & set(canonical)
    assert not {"architecture", "image_size", "width"} & set(PRESETS["fig4b"].canonical())
    assert conv.replace(width=32).config_hash() != conv.config_hash()
    assert conv.replace(image_size=32).group_key() != conv.group_key()
    assert "generator" not in canonical  # Appendix C's generator: the hashes from before Section 4.4's
    deep = PRESETS["conv-ebgan-pt-128"]
    assert deep.canonical()["generator"] == "noise-fed"
    assert deep.group_key() != deep.replace(generator="dcgan").group_key()


def test_the_noise_fed_generator_takes_section_4_4s_noise_planes_and_layers():
    """Section 4.4's 128x128 generator: (1024) 4c-(512) 4c2s-(256) 4c2s-(128) 4c2s-(64) 4c2s-(64) 4c2s-(3) 3c, noise
    planes 100-64-32-16-8-4, z holding every plane."""
    from ebgan_core.table1.models import StackedGan

    config = PRESETS["conv-ebgan-pt-128"].replace(channels=3, dataset="folder-" + "0" * 64)
    g = StackedGan([config], [None]).generator.network
    assert [tuple(c.weight.shape[1:]) for c in g.convs] == [
        (100, 1024, 4, 4), (1024 + 64, 512, 4, 4), (512 + 32, 256, 4, 4), (256 + 16, 128, 4, 4), (128 + 8, 64, 4, 4),
        (64 + 4, 64, 4, 4)]
    assert [c.stride for c in g.convs] == [1, 2, 2, 2, 2, 2] and all(c.transposed for c in g.convs)
    assert tuple(g.output.weight.shape[1:]) == (3, 64, 3, 3) and (g.output.stride, g.output.padding) == (1, 1)
    assert config.noise_inputs() == 100 + 64 * 4 * 4 + 32 * 8 * 8 + 16 * 16 * 16 + 8 * 32 * 32 + 4 * 64 * 64
    assert g(torch.randn(1, 2, config.noise_inputs())).shape == (1, 2, 3, 128, 128)


@pytest.mark.parametrize(("changes", "message"), [
    ({"image_size": 48}, "image size must be 4 times a power of 2"),
    ({"dropout_d": True}, "dropout_d applies to architecture mlp only"),
    ({"n_layer_g": 3}, "n_layer_g applies to architecture mlp only"),
    ({"precision": "bf16"}, "precision bf16 applies to the fully connected networks only"),
    ({"width": 0}, "width must be >= 1"),
    ({"architecture": "resnet"}, "architecture 'resnet' is unknown"),
    ({"generator": "unet"}, "generator 'unet' is unknown; use one of dcgan, noise-fed"),
    ({"image_size": 8}, "at least 16"),
])
def test_bad_conv_settings_are_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message) as error:
        PRESETS["conv-dcgan"].replace(**changes)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="width applies to architecture conv only"):
        PRESETS["fig4b"].replace(width=32)


@pytest.mark.parametrize("config", [
    TINY_CONV.replace(family="gan"),
    TINY_CONV.replace(pt_weight=0.1),
    TINY_CONV.replace(family="gan", batch_norm_d=False, lr=0.001),
    TINY_CONV.replace(pt_weight=0.1, generator="noise-fed"),
], ids=["dcgan", "ebgan-pt", "dcgan-no-bn-d", "ebgan-pt-noise-fed"])
def test_a_conv_member_trains_as_the_textbook_pytorch_model(config, real_subset, judge):
    """Every weight and batch-norm statistic after 20 steps, in float64, against nn.Conv2d / ConvTranspose2d /
    BatchNorm2d networks trained by a textbook loop from the same initial weights, batches and z."""
    from test_train import assert_matches_reference

    assert_matches_reference(config, real_subset, judge, torch.float64, rtol=1e-6)


@pytest.mark.parametrize(("family", "generator"), [("gan", "dcgan"), ("ebgan", "dcgan"), ("ebgan", "noise-fed")])
def test_conv_members_in_a_group_are_themselves_alone_bit_for_bit(family, generator, real_subset, judge):
    from test_train import assert_same_member

    configs = [TINY_CONV.replace(family=family, generator=generator, lr=lr, seed=seed, steps=8) for lr, seed in
               ((0.0002, 0), (0.001, 1), (0.0005, 0))]
    if family == "ebgan":
        configs[1] = configs[1].replace(margin=20.0)
        configs[2] = configs[2].replace(pt_weight=0.1)
    grouped = train_group(configs, real_subset, judge, keep_state=True)
    for index, config in enumerate(configs):
        (alone,) = train_group([config], real_subset, judge, keep_state=True)
        assert_same_member(grouped[index], alone)
    assert not torch.equal(grouped[0].state["generator"]["network.convs.0.weight"],
                           grouped[1].state["generator"]["network.convs.0.weight"])


def test_a_conv_member_is_the_same_whatever_threads_its_process_has(real_subset, judge):
    """CPU convolutions split their sums by the thread count; a convolutional group trains on one thread."""
    from test_train import assert_same_member

    config = TINY_CONV.replace(pt_weight=0.1, steps=6)
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results += train_group([config], real_subset, judge, keep_state=True)
    finally:
        torch.set_num_threads(previous)
    assert_same_member(*results)
    assert torch.get_num_threads() == previous


def test_a_64x64_member_trains_on_resized_mnist_and_is_scored_at_the_judges_size(real_subset, judge):
    (result,) = train_group([TINY_CONV.replace(image_size=64, steps=2)], real_subset, judge)
    assert result.status == "completed" and result.sample_grid.shape == (64, 64, 64)
    assert result.scores["n_samples"] == 64 and result.scores["frechet_distance"] > 0


def test_cost_estimates_of_conv_members_grow_with_their_shapes():
    small, large = TINY_CONV, TINY_CONV.replace(width=8, image_size=64)
    assert 0 < flops_per_step(small) < flops_per_step(large)
    assert 0 < member_bytes(small) < member_bytes(large)


def test_the_images_grid_sets_dcgan_ebgan_and_ebgan_pt_around_the_presets():
    from ebgan_core.table1.families import FAMILIES

    laptop = grid("images", "laptop")
    labels = Counter(FAMILIES[c.family].run_label(c.to_dict()) for c in laptop)
    assert labels == {"DCGAN": 16, "EBGAN": 32, "EBGAN-PT": 32}
    assert len({c.config_hash() for c in laptop}) == 80
    assert {(c.image_size, c.width) for c in laptop} == {(32, 16), (32, 8)}
    paper = grid("images", "paper")
    assert {(c.image_size, c.width) for c in paper} == {(64, 64), (64, 32)}
    presets = grid("images-presets", "paper")
    assert [c.replace(steps=3000, batch_size=64, score_samples=1000) for c in presets] == [
        PRESETS[name] for name in ("conv-dcgan", "conv-ebgan", "conv-ebgan-pt")]
    assert set(presets) <= set(paper)
    assert [c.config_hash() for c in grid("images", "smoke")] == [c.config_hash() for c in
                                                                  grid("images-presets", "smoke")]


def test_the_images_grids_refuse_profiles_without_an_image_budget_and_bf16():
    with pytest.raises(ValueError, match="profile 'demo' has no budget for convolutional configs; use one of paper"):
        grid("images", "demo")
    with pytest.raises(ValueError, match="--precision bf16 applies to the fully connected grids only"):
        grid("images", "laptop", precision="bf16")


def images_sweep(db: Path, grid_name: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "sweeps" / "mnist_grid.py"), "--grid", grid_name, "--profile",
                           "smoke", "--db", f"sqlite:///{db}", "--quiet", *flags],
                          cwd=db.parent, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def images_db(tmp_path_factory, ray_address) -> Path:
    """The smoke images grid (the three presets at 16x16, two seeds) swept on a Ray cluster, and beside it Section
    4.4's smoke grid (its two presets at 32x32, one seed) on the local executor."""
    db = tmp_path_factory.mktemp("images") / "r.sqlite"
    done = images_sweep(db, "images", "--storage-path", str(db.parent / "ray"), "--address", ray_address,
                        "--seeds", "0,1")
    assert done.returncode == 0, done.stderr[-3000:]
    done = images_sweep(db, "images-128", "--executor", "local")
    assert done.returncode == 0, done.stderr[-3000:]
    return db


SCIENCE = ("select t.family, t.architecture, t.image_size, t.width, t.config_hash, t.seed, t.status, t.i_prime, "
           "t.frechet_distance, c.curves, s.png from trials t join sweeps w on w.id = t.sweep_id "
           "join curves c on c.trial_id = t.id left join samples s on s.trial_id = t.id where w.grid = 'images' "
           "order by 5, 6")


@pytest.mark.slow
def test_the_images_smoke_grid_runs_on_both_executors_and_stores_the_same_rows(images_db, tmp_path):
    with sqlite3.connect(images_db) as db:
        ray_rows = db.execute(SCIENCE).fetchall()
    assert len(ray_rows) == 6 and {r[:4] for r in ray_rows} == {("gan", "conv", 16, 4), ("ebgan", "conv", 16, 4)}
    assert {r[6] for r in ray_rows} == {"completed"}
    local = tmp_path / "local.sqlite"
    done = images_sweep(local, "images", "--executor", "local", "--seeds", "0,1")
    assert done.returncode == 0, done.stderr[-3000:]
    with sqlite3.connect(local) as db:
        assert db.execute(SCIENCE).fetchall() == ray_rows


@pytest.mark.slow
def test_figures_report_and_query_show_the_images_study_apart_from_table_1(images_db, tmp_path):
    url = f"sqlite:///{images_db}"
    figures = tmp_path / "figures"
    drawn = subprocess.run([EBGAN, "figures", "--db", url, "--out", str(figures)], capture_output=True, text=True,
                           timeout=300)
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    names = {p.stem for p in figures.glob("*.png")}
    assert {"images_presets", "images_histograms", "images_ecdf_i_prime", "images_presets_noise_fed"} <= names
    assert not {"fig2_histograms", "fig4_best_samples"} & names  # Table 1's figures are of fully connected runs
    report = subprocess.run([EBGAN, "report", "--db", url, "--figures", str(figures), "--out",
                             str(tmp_path / "report.html")], capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    page = (tmp_path / "report.html").read_text()
    assert "Images (convolutional), profile <code>smoke</code>: 6 runs, 16x16 MNIST, widths 4" in page
    assert "EBGAN-PT vs DCGAN (all)" in page and "DCGAN (conv)" in page and "conv 16x16, width 4" in page
    assert ("Images (convolutional, Section 4.4&#x27;s noise-fed generator), profile <code>smoke</code>: 2 runs, "
            "32x32 MNIST") in page
    listed = subprocess.run([EBGAN, "query", "--db", url, "--format", "json"], capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = json.loads(listed.stdout)
    assert {(r["label"], r["architecture"], r["image_size"], r["generator"], r["n_layer_g"]) for r in rows} == {
        ("DCGAN", "conv", 16, "dcgan", ""), ("EBGAN", "conv", 16, "dcgan", ""), ("EBGAN-PT", "conv", 16, "dcgan", ""),
        ("DCGAN", "conv", 32, "noise-fed", ""), ("EBGAN-PT", "conv", 32, "noise-fed", "")}


def test_the_presets_figure_shows_each_models_median_seed():
    from analysis.images import median_run

    runs = pd.DataFrame({"status": ["completed", "completed", "diverged", "completed"],
                         "i_prime": [3.0, 1.0, None, 2.0], "seed": [0, 1, 2, 3]})
    assert median_run(runs)["seed"] == 3
    assert median_run(runs.iloc[:2])["seed"] == 1  # the lower middle of an even count
