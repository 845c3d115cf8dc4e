"""Table 2 from the database: test error (%) mean +/- std over seeds per model and label count, the paper's numbers
beside ours, EBGAN-LN's relative improvement over LN and a Welch t-test of the two."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ebgan_core.table2.config import LABEL_COUNTS
from ebgan_core.table2.families import EBGAN_LN, LADDER_FAMILIES, LN

PAPER_ROWS = {  # Table 2 of the paper: (mean, std) of the test error in %, None where not reported
    "LN, Pezeshki et al. (2015)": ((1.69, 0.18), None, (1.05, 0.02)),
    "LN, Rasmus et al. (2015)": ((1.09, 0.32), None, (0.90, 0.05)),
    "LN, reproduced in the paper": ((1.36, 0.21), (1.24, 0.09), (1.04, 0.06)),
    "EBGAN-LN, the paper": ((1.04, 0.12), (0.99, 0.12), (0.89, 0.04)),
}


def best_settings(trials: pd.DataFrame) -> pd.DataFrame:
    """Per model and label count, the setting (config hash) with the lowest mean test error over its seeds, with its
    mean, std (ddof 1), seed count and how many settings it was chosen from."""
    done = trials[(trials["status"] == "completed") & trials["test_error"].notna()]
    if done.empty:
        return pd.DataFrame(columns=["label", "labels", "config_hash", "mean", "std", "seeds", "settings"])
    per_setting = done.groupby(["label", "labels", "config_hash"])["test_error"].agg(["mean", "std", "count"])
    rows = []
    for (label, labels), group in per_setting.groupby(level=[0, 1]):
        best = group["mean"].idxmin()
        rows.append({"label": label, "labels": labels, "config_hash": best[2], "mean": group.loc[best, "mean"],
                     "std": group.loc[best, "std"], "seeds": int(group.loc[best, "count"]), "settings": len(group)})
    return pd.DataFrame(rows)


def _cell(mean: float, std: float, seeds: int, settings: int) -> str:
    spread = "" if seeds < 2 else f" ± {std:.2f}"
    chosen = f", best of {settings}" if settings > 1 else ""
    return f"{mean:.2f}{spread} (n={seeds}{chosen})"


def table2(trials: pd.DataFrame) -> pd.DataFrame:
    """The comparison table: our models and the paper's rows, one column per label count."""
    best = best_settings(trials)
    columns = [f"{n} labels" for n in LABEL_COUNTS]
    rows = []
    for model in (family.label for family in LADDER_FAMILIES):
        row = {"model": f"{model}, this run"}
        for count, column in zip(LABEL_COUNTS, columns, strict=True):
            hit = best[(best["label"] == model) & (best["labels"] == count)]
            row[column] = "-" if hit.empty else _cell(*hit.iloc[0][["mean", "std", "seeds", "settings"]])
        rows.append(row)
    rows.append({"model": "EBGAN-LN vs LN, this run: relative improvement; Welch p",
                 **{column: improvement(trials, best, count) for count, column in zip(LABEL_COUNTS, columns,
                                                                                      strict=True)}})
    for model, values in PAPER_ROWS.items():
        rows.append({"model": model, **{column: "-" if v is None else f"{v[0]:.2f} ± {v[1]:.2f}"
                                         for column, v in zip(columns, values, strict=True)}})
    return pd.DataFrame(rows)


def improvement(trials: pd.DataFrame, best: pd.DataFrame, count: int) -> str:
    """(LN - EBGAN-LN) / LN in % for the chosen settings at ``count`` labels, with a Welch t-test's p over seeds."""
    errors = {}
    for model in (LN.label, EBGAN_LN.label):
        hit = best[(best["label"] == model) & (best["labels"] == count)]
        if hit.empty:
            return "-"
        chosen = trials[(trials["config_hash"] == hit.iloc[0]["config_hash"]) & (trials["status"] == "completed")]
        errors[model] = chosen["test_error"].to_numpy(dtype=float)
    ln, ebgan = errors[LN.label], errors[EBGAN_LN.label]
    relative = 100 * (ln.mean() - ebgan.mean()) / ln.mean()
    if min(len(ln), len(ebgan)) < 2:
        return f"{relative:+.0f}%"
    p_value = stats.ttest_ind(ln, ebgan, equal_var=False).pvalue
    return f"{relative:+.0f}%; p = {p_value:.2g}" if np.isfinite(p_value) else f"{relative:+.0f}%"


def budget_text(trials: pd.DataFrame) -> str:
    """The budget of these semi-supervised trials in words: widths and each model's steps."""
    if trials.empty:
        return "no trials"
    divisors = sorted(set(trials["width_divisor"]))
    steps = "; ".join(f"{label} {', '.join(f'{int(v):,}' for v in sorted(set(group['steps'])))} steps"
                      for label, group in trials.groupby("label"))
    widths = ", ".join("the paper's widths" if d == 1 else f"widths / {d}" for d in divisors)
    return f"{widths}; {steps}; batch 100 labelled + 100 unlabelled"
