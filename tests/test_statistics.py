"""The report's statistics against straightforward computations written out here."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from analysis.table1 import statistics as st


def test_superiority_and_cliffs_delta_equal_the_pairwise_counts_with_ties():
    a, b = np.array([3.0, 1.0, 2.0, 2.0, 5.0]), np.array([2.0, 0.0, 4.0, 2.0])
    wins = sum(x > y for x, y in itertools.product(a, b))
    ties = sum(x == y for x, y in itertools.product(a, b))
    losses = len(a) * len(b) - wins - ties
    result = st.compare(a, b)
    assert result["superiority"] == pytest.approx((wins + ties / 2) / (len(a) * len(b)))
    assert result["cliffs_delta"] == pytest.approx((wins - losses) / (len(a) * len(b)))


def test_mann_whitney_p_value_equals_the_exact_permutation_distribution():
    a, b = np.array([0.3, 2.2, 1.7, 4.0]), np.array([0.1, 0.2, 1.1, 0.9, 0.5])
    pooled, n = np.concatenate([a, b]), len(a)

    def u(first):
        return sum(x > y for x in pooled[list(first)] for y in np.delete(pooled, list(first)))

    observed = u(range(n))
    null = [u(split) for split in itertools.combinations(range(len(pooled)), n)]
    centre = n * len(b) / 2
    exact = np.mean([abs(v - centre) >= abs(observed - centre) for v in null])
    assert st.compare(a, b)["p_value"] == pytest.approx(exact)


def test_wilson_interval_equals_its_formula():
    k, n, z = 7, 40, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert st.share_ci(k, n) == pytest.approx((centre - half, centre + half), abs=1e-9)


def test_bootstrap_interval_agrees_with_a_plain_percentile_bootstrap():
    values = np.random.default_rng(1).gamma(2.0, 1.0, size=300)
    rng = np.random.default_rng(2)
    means = [rng.choice(values, size=len(values)).mean() for _ in range(4000)]
    low, high = st.bootstrap_ci(values, np.mean)
    assert low == pytest.approx(np.percentile(means, 2.5), abs=0.03)
    assert high == pytest.approx(np.percentile(means, 97.5), abs=0.03)
    assert low < values.mean() < high


def frame(rows) -> pd.DataFrame:
    base = {"n_layer_g": 2, "n_layer_d": 2, "size_g": 25, "size_d": 8, "dropout_d": False, "optim_d": "adam",
            "optim_g": "adam", "lr": 0.001, "seed": 0}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_summary_counts_a_diverged_run_as_zero_and_leaves_failed_runs_out():
    trials = frame([{"label": "EBGAN", "status": "completed", "i_prime": v, "config_hash": str(v)}
                    for v in (0.5, 2.0, 4.0, 6.0)]
                   + [{"label": "EBGAN", "status": "diverged", "i_prime": None, "config_hash": "d"},
                      {"label": "EBGAN", "status": "failed", "i_prime": None, "config_hash": "f"}])
    (row,) = st.family_summary(trials).to_dict("records")
    assert row["runs"] == 5 and row["diverged"] == 1
    assert row["median"] == 2.0 and row["mean"] == pytest.approx(12.5 / 5)
    assert row["share_above_1"] == pytest.approx(3 / 5) and row["share_above_5"] == pytest.approx(1 / 5)
    assert row["median_low"] <= row["median"] <= row["median_high"]


def test_importance_finds_the_one_axis_that_decides_the_score():
    rng = np.random.default_rng(0)
    rows = []
    for ng, nd, do, od in itertools.product((2, 3, 4), (2, 3), (True, False), ("adam", "sgd")):
        for seed in range(3):
            rows.append({"label": "GAN", "status": "completed", "n_layer_g": ng, "n_layer_d": nd, "dropout_d": do,
                         "optim_d": od, "i_prime": (4.0 if od == "adam" else 0.5) + 0.05 * rng.standard_normal(),
                         "config_hash": f"{ng}{nd}{do}{od}", "seed": seed})
    weights = st.importance(frame(rows), "GAN")
    assert weights.index[0] == "optim_d" and weights["optim_d"] > 0.8
    assert set(weights.index) == {"n_layer_g", "n_layer_d", "dropout_d", "optim_d"}  # axes that vary
    assert weights.sum() == pytest.approx(1.0)


def test_seed_spread_separates_seed_noise_from_setting_effects():
    trials = frame([{"label": "EBGAN", "status": "completed", "config_hash": h, "seed": s, "i_prime": v}
                    for h, s, v in (("a", 0, 1.0), ("a", 1, 3.0), ("b", 0, 5.0), ("b", 1, 5.0), ("c", 0, 9.0))])
    (row,) = st.seed_spread(trials).to_dict("records")
    assert row["configs"] == 2 and row["seeds_per_config"] == 2.0
    assert row["within_config_sd"] == pytest.approx((math.sqrt(2) + 0.0) / 2)
    assert row["between_config_sd"] == pytest.approx(np.std([2.0, 5.0], ddof=1))
