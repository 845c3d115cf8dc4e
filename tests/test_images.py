"""The paper's convolutional GANs (Section 4.3, Appendix C) as Table 1 configs of architecture ``conv``: their
configs, each member against the same textbook PyTorch model, members alone and in a group, and the images grids."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from ebgan_core.table1.config import PRESETS, TrialConfig
from ebgan_core.table1.footprint import flops_per_step, member_bytes
from ebgan_core.table1.train import train_group
from sweeps.table1.grids import grid

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


@pytest.mark.parametrize(("changes", "message"), [
    ({"image_size": 48}, "image size must be 4 times a power of 2"),
    ({"dropout_d": True}, "dropout_d applies to architecture mlp only"),
    ({"n_layer_g": 3}, "n_layer_g applies to architecture mlp only"),
    ({"precision": "bf16"}, "precision bf16 applies to the fully connected networks only"),
    ({"width": 0}, "width must be >= 1"),
    ({"architecture": "resnet"}, "architecture 'resnet' is unknown"),
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
], ids=["dcgan", "ebgan-pt", "dcgan-no-bn-d"])
def test_a_conv_member_trains_as_the_textbook_pytorch_model(config, real_subset, judge):
    """Every weight and batch-norm statistic after 20 steps, in float64, against nn.Conv2d / ConvTranspose2d /
    BatchNorm2d networks trained by a textbook loop from the same initial weights, batches and z."""
    from test_train import assert_matches_reference

    assert_matches_reference(config, real_subset, judge, torch.float64, rtol=1e-6)


@pytest.mark.parametrize("family", ["gan", "ebgan"])
def test_conv_members_in_a_group_are_themselves_alone_bit_for_bit(family, real_subset, judge):
    from test_train import assert_same_member

    configs = [TINY_CONV.replace(family=family, lr=lr, seed=seed, steps=8) for lr, seed in
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
