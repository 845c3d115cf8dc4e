"""Table 1 grids, profiles and group packing."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from sweeps.projection import sweep_flops
from sweeps.studies import pack_groups
from sweeps.table1.grids import PROFILES, grid

PAPER_SIZES = {"ebgan": 512, "gan": 6144, "ebgan-pt": 512, "margin": 7}  # Table 1 and Fig. 9


@pytest.mark.parametrize(("name", "size"), sorted(PAPER_SIZES.items()))
def test_paper_grids_have_table_1_sizes_and_widths(name, size):
    configs = grid(name, "paper")
    assert len(configs) == size and len({(c.config_hash(), c.seed) for c in configs}) == size
    if name in ("ebgan", "gan", "ebgan-pt"):
        assert {c.size_g for c in configs} == {400, 800, 1600, 3200}
        assert {c.size_d for c in configs} == {128, 256, 512, 1024}
        assert {c.n_layer_g for c in configs} == {c.n_layer_d for c in configs} == {2, 3, 4, 5}


def test_gan_grid_has_the_twelve_optimisation_subgrids_of_512():
    subgrids = Counter((c.optim_d, c.optim_g, c.lr) for c in grid("gan", "paper"))
    assert len(subgrids) == 12 and set(subgrids.values()) == {512}


def test_ebgan_restrictions_and_the_pt_and_margin_grids():
    ebgan = grid("ebgan", "paper")
    assert {(c.optim_d, c.optim_g, c.lr, c.margin, c.pt_weight) for c in ebgan} == {("adam", "adam", 0.001, 10.0, 0.0)}
    assert {c.pt_weight for c in grid("ebgan-pt", "paper")} == {0.1}
    margins = grid("margin", "paper")
    assert sorted(c.margin for c in margins) == [1, 2, 4, 6, 8, 12, 32]
    assert {(c.n_layer_g, c.n_layer_d, c.size_g, c.size_d) for c in margins} == {(5, 2, 1600, 1024)}


def test_demo_profile_is_a_balanced_subset_big_enough_for_histograms():
    ebgan, gan = grid("ebgan", "demo"), grid("gan", "demo")
    assert len(ebgan) >= 64 and len(gan) >= 192
    for configs in (ebgan, gan):
        for axis in ("n_layer_g", "n_layer_d", "size_g", "size_d"):
            counts = Counter(getattr(c, axis) for c in configs)
            assert len(counts) == 4 and len(set(counts.values())) == 1, axis  # every value equally often
    assert len(Counter((c.optim_d, c.optim_g, c.lr) for c in gan)) == 12
    assert {c.steps for c in ebgan} == {PROFILES["demo"].steps}


@pytest.mark.parametrize(("profile", "size"), [("paper", 7175), ("laptop-balanced", 327), ("laptop-mini", 47)])
def test_all_is_the_papers_four_grids(profile, size):
    assert len(grid("all", profile)) == size


def test_seeds_multiply_the_grid():
    assert len(grid("gan", "smoke", seeds=(0, 1, 2))) == 3 * len(grid("gan", "smoke"))


@pytest.mark.parametrize(
    ("args", "message"),
    [(("nope", "demo"), "unknown grid 'nope'"), (("ebgan", "huge"), "unknown profile 'huge'")],
)
def test_unknown_grid_or_profile_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        grid(*args)


def test_groups_share_keys_and_respect_the_member_cap():
    configs = grid("all", "paper")
    groups = pack_groups(configs, max_members=24)
    assert sum(len(g) for g in groups) == len(configs)
    assert all(len(g) <= 24 and len({c.group_key() for c in g}) == 1 for g in groups)
    # ebgan and ebgan-pt of one shape share a stack; the 24 GAN settings of a shape fill one group.
    assert max(len(g) for g in groups) == 24
    assert len(groups) < len(configs) / 10
    flops = [sweep_flops(g, score_every=0) for g in groups]
    assert flops == sorted(flops, reverse=True) and flops[0] > flops[-1], "costliest groups first"


def test_precision_comes_from_the_profile_unless_overridden_and_names_its_own_sweep():
    from sweeps.settings import SweepSettings

    assert {c.precision for c in grid("all", "smoke")} == {PROFILES["smoke"].precision} == {"fp32"}
    bf16 = grid("all", "smoke", precision="bf16")
    assert {c.precision for c in bf16} == {"bf16"} and len(bf16) == len(grid("all", "smoke"))
    assert SweepSettings(grid="ebgan", profile="smoke").sweep_name == "ebgan-smoke"
    assert SweepSettings(grid="ebgan", profile="smoke", precision="fp32").sweep_name == "ebgan-smoke"
    assert SweepSettings(grid="ebgan", profile="smoke", precision="bf16").sweep_name == "ebgan-smoke-bf16"


def test_laptop_subsets_are_balanced_and_share_the_laptop_budget():
    full, balanced, mini = (grid("all", p) for p in ("laptop", "laptop-balanced", "laptop-mini"))
    assert (len(full), len(balanced), len(mini)) == (7175, 327, 47)
    keys = {c.config_hash() for c in full}
    assert {c.config_hash() for c in balanced} <= keys and {c.config_hash() for c in mini} <= keys
    assert {c.config_hash() for c in mini} <= {c.config_hash() for c in balanced}
    ebgan = [c for c in mini if c.family == "ebgan" and not c.pt_weight and c.margin == 10]
    for axis in ("n_layer_g", "n_layer_d", "size_d"):
        assert Counter(getattr(c, axis) for c in ebgan) == Counter({v: 2 for v in {getattr(c, axis) for c in ebgan}})
        assert len({getattr(c, axis) for c in ebgan}) == 4, axis  # every value once per dropout setting
    gan = [c for c in mini if c.family == "gan"]
    assert len({(c.optim_d, c.optim_g, c.lr) for c in gan}) == 12  # every Fig. 3 sub-grid


def test_paper_balanced_is_the_balanced_subset_at_the_paper_budget():
    balanced, paper = grid("all", "paper-balanced"), grid("all", "paper")
    assert len(balanced) == 327 and {c.config_hash() for c in balanced} <= {c.config_hash() for c in paper}
    assert {(c.steps, c.batch_size, c.score_samples, c.precision) for c in balanced} == {(4685, 64, 5000, "fp32")}
    assert PROFILES["paper-balanced"].score_every == 937  # each epoch
    laptop = grid("all", "laptop-balanced")  # the same shapes, at Table 1's widths
    assert sorted((c.n_layer_g, c.size_g // 16, c.n_layer_d, c.size_d // 16) for c in balanced) == sorted(
        (c.n_layer_g, c.size_g, c.n_layer_d, c.size_d) for c in laptop)


def test_groups_share_this_machines_cpus_unless_told_otherwise():
    from sweeps.tune_runner import default_cpus_per_group

    assert default_cpus_per_group(2, trials=8, cluster=False) == 1  # two groups at once on two cores
    assert default_cpus_per_group(2, trials=1, cluster=False) == 2  # a lone group takes both
    assert default_cpus_per_group(16, trials=6, cluster=False) == 2
    assert default_cpus_per_group(16, trials=100, cluster=True) == 1


def config_digest(configs) -> list:
    """The count and a sha256 of the sorted ``config_hash:seed`` lines of ``configs``."""
    lines = sorted(f"{c.config_hash()}:{c.seed}" for c in configs)
    return [len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()]


def test_every_grid_and_profile_of_both_studies_keeps_the_config_hashes_it_had_before_families_were_data():
    """tests/data/config_hashes.json: every grid x profile of both studies, computed by the code before the family
    registries; stored results are found again by these hashes."""
    from sweeps.table2.grids import LADDER_PROFILES, ladder_grid

    expected = json.loads((Path(__file__).parent / "data" / "config_hashes.json").read_text())
    assert len(expected) == 5 * len(PROFILES) + 4 * len(LADDER_PROFILES)
    for key, digest in expected.items():
        study, name, profile = key.split("/")
        configs = grid(name, profile) if study == "table1" else ladder_grid(name, profile)
        assert config_digest(configs) == digest, key
