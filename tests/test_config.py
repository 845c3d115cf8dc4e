"""TrialConfig: validation with one-line errors, a stable hash, and group keys."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from ebgan_core.table1.config import PRESETS, TrialConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optim_d": "adamw"}, "optim_d 'adamw' is unknown; use one of adam, sgd"),
        ({"lr": 0}, "lr must be a positive finite number"),
        ({"lr": float("nan")}, "lr must be a positive finite number"),
        ({"n_layer_d": 1}, "n_layer_d must be >= 2"),
        ({"family": "sngan"}, "unknown Table 1 family 'sngan'"),
        ({"family": "gan", "pt_weight": 0.1}, "pt_weight applies to EBGAN only"),
        ({"batch_size": 1}, "batch_size must be >= 2"),
        ({"dropout_rate": 1.0}, "dropout_rate must be in [0, 1)"),
        ({"margin": -1}, "margin must be a positive finite number"),
        ({"size_g": "800"}, "size_g must be an integer"),
        ({"dropout_d": 1}, "dropout_d must be true or false"),
        ({"margin_decay_steps": -5}, "margin_decay_steps must be >= 0"),
        ({"family": "gan", "margin_decay_steps": 100}, "margin_decay_steps applies to EBGAN only"),
    ],
)
def test_bad_settings_give_one_line_errors(changes, message):
    with pytest.raises(ValueError) as info:
        TrialConfig().replace(**changes)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_field_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown config field 'sizeG'; known fields: .*size_g"):
        TrialConfig.from_dict({"sizeG": 800})


def test_hash_is_stable_across_processes_and_excludes_the_seed():
    config = PRESETS["fig4b"]
    code = "from ebgan_core.table1.config import PRESETS; print(PRESETS['fig4b'].config_hash())"
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": hash_seed, "PATH": ""}).stdout.strip()
        assert out == config.config_hash()
    assert config.replace(seed=5).config_hash() == config.config_hash()
    assert len(config.config_hash()) == 64


def test_hash_is_sha256_of_the_pinned_canonical_json():
    # Written out literally: if the canonical form changes, every stored result's key changes (bump HASH_SCHEMA).
    canonical = (
        '{"adam_beta1":0.5,"adam_beta2":0.999,"batch_size":64,"data_seed":0,"dropout_d":false,"family":"ebgan",'
        '"hash_schema":1,"lr":0.001,"margin":10.0,"n_layer_d":2,"n_layer_g":5,"noise_dim":100,"optim_d":"adam",'
        '"optim_g":"adam","pt_weight":0.0,"score_samples":1000,"size_d":1024,"size_g":800,"steps":3000}'
    )
    assert PRESETS["fig4b"].config_hash() == hashlib.sha256(canonical.encode()).hexdigest()


def test_hash_covers_what_changes_results_and_ignores_unused_settings():
    base = PRESETS["fig4b"]
    for change in ({"lr": 0.002}, {"steps": 10}, {"score_samples": 50}, {"margin": 5.0}, {"data_seed": 1},
                   {"margin_decay_steps": 100}, {"precision": "bf16"}):
        assert base.replace(**change).config_hash() != base.config_hash(), change
    assert base.replace(sgd_momentum=0.9).config_hash() == base.config_hash()  # no SGD in this config
    assert base.replace(dropout_rate=0.2).config_hash() == base.config_hash()  # dropout is off
    gan = PRESETS["fig4a"]
    assert "margin" not in gan.canonical() and "pt_weight" not in gan.canonical()  # EBGAN's fields only
    with pytest.raises(ValueError, match="margin applies to EBGAN only, not to GAN"):  # and never silently ignored
        gan.replace(margin=3.0)


def test_group_key_separates_shapes_not_per_member_settings():
    base = PRESETS["fig4b"]
    same_group = [base.replace(lr=1e-4), base.replace(optim_g="sgd"), base.replace(dropout_d=True),
                  base.replace(margin=20.0), base.replace(pt_weight=0.1), base.replace(seed=3)]
    assert {c.group_key() for c in same_group} == {base.group_key()}
    for change in ({"size_g": 400}, {"n_layer_d": 3}, {"batch_size": 32}, {"steps": 5}, {"family": "gan"},
                   {"precision": "bf16"}):
        assert base.replace(**change).group_key() != base.group_key(), change


def test_precision_is_named_in_the_hash_only_when_it_is_not_fp32():
    bf16 = PRESETS["fig4b"].replace(precision="bf16")
    assert bf16.canonical()["precision"] == "bf16" and "precision" not in PRESETS["fig4b"].canonical()
    assert "bf16" in bf16.short_name()
    with pytest.raises(ValueError, match="precision 'fp16' is unknown; use one of fp32, bf16"):
        PRESETS["fig4b"].replace(precision="fp16")
