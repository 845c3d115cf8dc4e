"""The statistics a reviewer asks of a grid study, from the trials table (scipy for tests and intervals, Optuna's
fANOVA for hyperparameter importance).

Conventions: a diverged run scores I' = 0 (no digits: the lowest score there is); a failed run (a crash, not a
property of its configuration) is left out. Intervals are 95%. Bootstrap intervals resample runs
(``scipy.stats.bootstrap``, percentile method, a fixed seed, so a report is reproducible).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from ebgan_core.table1.families import EBGAN, GAN

CONFIDENCE = 0.95
RESAMPLES = 2000
THRESHOLDS = (1.0, 3.0, 5.0)
TABLE1_AXES = ("n_layer_g", "n_layer_d", "size_g", "size_d", "dropout_d", "optim_d", "optim_g", "lr")
SEED = 0


def scored(trials: pd.DataFrame) -> pd.DataFrame:
    """Completed and diverged runs, with ``score``: I', or 0 for a diverged run."""
    kept = trials[trials["status"].isin(("completed", "diverged"))].copy()
    kept["score"] = kept["i_prime"].where(kept["status"] == "completed", 0.0).astype(float)
    return kept


def bootstrap_ci(values: np.ndarray, statistic) -> tuple[float, float]:
    """A 95% percentile-bootstrap interval of ``statistic`` (a numpy reducer taking ``axis``); NaNs for n < 2."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.ptp(values) == 0:  # every resample is the same: the interval is the value itself
        value = float(statistic(values))
        return value, value
    result = stats.bootstrap((values,), statistic, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                             method="percentile", rng=np.random.default_rng(SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def share_ci(successes: int, total: int) -> tuple[float, float]:
    """Wilson's 95% interval of a proportion."""
    if total == 0:
        return float("nan"), float("nan")
    interval = stats.binomtest(successes, total).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(interval.low), float(interval.high)


def family_summary(trials: pd.DataFrame, thresholds: tuple[float, ...] = THRESHOLDS) -> pd.DataFrame:
    """Per label: runs, diverged, median and mean I' with bootstrap CIs, and the share above each threshold with
    Wilson CIs (one row per label, CIs as ``*_low`` / ``*_high`` columns)."""
    rows = []
    for label, group in scored(trials).groupby("label", sort=True):
        values = group["score"].to_numpy()
        row = {"label": label, "runs": len(values), "diverged": int((group["status"] == "diverged").sum())}
        for name, reducer in (("median", np.median), ("mean", np.mean)):
            low, high = bootstrap_ci(values, reducer)
            row |= {name: float(reducer(values)), f"{name}_low": low, f"{name}_high": high}
        for threshold in thresholds:
            above = int((values > threshold).sum())
            low, high = share_ci(above, len(values))
            row |= {f"share_above_{threshold:g}": above / len(values), f"share_above_{threshold:g}_low": low,
                    f"share_above_{threshold:g}_high": high}
        rows.append(row)
    return pd.DataFrame(rows)


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """A vs B: probability of superiority P(A > B) + P(A = B)/2 (from the Mann-Whitney U), Cliff's delta
    (2 PS - 1) and the two-sided Mann-Whitney p-value."""
    if len(a) == 0 or len(b) == 0:
        return {"n_a": len(a), "n_b": len(b), "superiority": float("nan"), "cliffs_delta": float("nan"),
                "p_value": float("nan")}
    test = stats.mannwhitneyu(a, b, alternative="two-sided")
    superiority = float(test.statistic) / (len(a) * len(b))
    return {"n_a": len(a), "n_b": len(b), "superiority": superiority, "cliffs_delta": 2 * superiority - 1,
            "p_value": float(test.pvalue)}


def family_comparison(trials: pd.DataFrame, a: str = EBGAN.label, b: str = GAN.label) -> pd.DataFrame:
    """``a`` vs ``b`` over all their runs, then ``a`` against each Fig. 3 sub-grid of ``b`` (optimD, optimG, lr)."""
    runs = scored(trials)
    first, second = runs[runs["label"] == a], runs[runs["label"] == b]
    rows = [{"comparison": f"{a} vs {b} (all)", **compare(first["score"].to_numpy(), second["score"].to_numpy())}]
    for (optim_d, optim_g, lr), part in sorted(second.groupby(["optim_d", "optim_g", "lr"]),
                                               key=lambda item: (item[0][0], item[0][1], -item[0][2])):
        rows.append({"comparison": f"{a} vs {b} optimD={optim_d} optimG={optim_g} lr={lr:g}",
                     **compare(first["score"].to_numpy(), part["score"].to_numpy())})
    return pd.DataFrame(rows)


def importance(trials: pd.DataFrame, label: str) -> pd.Series:
    """fANOVA importance of each Table 1 axis that varies among ``label``'s runs (Optuna's evaluator, a random
    forest of 64 trees, seeded; sums to 1), largest first. Empty when fewer than 8 runs or no axis varies."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.importance import FanovaImportanceEvaluator

    runs = scored(trials)
    runs = runs[runs["label"] == label]
    axes = [axis for axis in TABLE1_AXES if runs[axis].nunique() > 1]
    if len(runs) < 8 or not axes:
        return pd.Series(dtype=float)
    distributions = {axis: CategoricalDistribution(sorted(_plain(v) for v in runs[axis].unique())) for axis in axes}
    logging.getLogger("optuna").setLevel(logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(params={axis: _plain(row[axis]) for axis in axes},
                                                distributions=distributions, value=float(row["score"]))
                      for _, row in runs.iterrows()])
    values = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=SEED))
    return pd.Series(values, name=label, dtype=float).sort_values(ascending=False)


def _plain(value: object) -> object:
    """numpy scalars as the Python values Optuna's distributions take."""
    return value.item() if isinstance(value, np.generic) else value


def seed_spread(trials: pd.DataFrame) -> pd.DataFrame:
    """Where configs ran with several seeds: per label, the configs, seeds per config, the mean within-config
    standard deviation of I' (seed noise) and the standard deviation of the config means (setting effect)."""
    runs = scored(trials)
    rows = []
    for label, group in runs.groupby("label", sort=True):
        per_config = group.groupby("config_hash")["score"]
        counts = per_config.count()
        repeated = counts[counts > 1].index
        if len(repeated) == 0:
            continue
        kept = group[group["config_hash"].isin(repeated)].groupby("config_hash")["score"]
        rows.append({"label": label, "configs": len(repeated), "seeds_per_config": float(counts[repeated].mean()),
                     "within_config_sd": float(kept.std(ddof=1).mean()),
                     "between_config_sd": float(kept.mean().std(ddof=1)) if len(repeated) > 1 else float("nan")})
    return pd.DataFrame(rows)
