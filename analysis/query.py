"""Filter and rank stored trials without writing SQL: `ebgan query --where family=gan --top 10`."""

from __future__ import annotations

import pandas as pd

from ebgan_core.table1.config import TrialConfig
from ebgan_core.table1.families import FAMILIES
from ebgan_core.table2.families import LADDER_FAMILIES

DEFAULT_COLUMNS = ("sweep", "label", "n_layer_g", "size_g", "n_layer_d", "size_d", "dropout_d", "optim_d", "optim_g",
                   "lr", "margin", "pt_weight", "seed", "status", "i_prime", "inception_score", "classes_present",
                   "n_samples", "seconds", "config_hash")
# After the label, for convolutional runs:
CONV_COLUMNS = ("architecture", "image_size", "channels", "width", "generator", "batch_norm_d")
TABLE2_COLUMNS = ("sweep", "label", "labels", "recon_weight", "lr", "lr_g", "margin", "width_divisor", "steps", "seed",
                  "status", "test_error", "seconds", "config_hash")


BOOLEAN_COLUMNS = ("dropout_d",)  # stored as 0/1


def _coerce(value: str, column: pd.Series) -> object:
    if column.name in BOOLEAN_COLUMNS:
        return int(value.lower() in ("1", "true", "yes"))
    if pd.api.types.is_numeric_dtype(column):
        return float(value)
    return value


def filter_trials(trials: pd.DataFrame, where: list[str] = (), min_i_prime: float | None = None) -> pd.DataFrame:
    """Rows matching every ``column=value`` (``,`` separates alternatives) and, optionally, I' >= min_i_prime."""
    selected = trials
    for clause in where:
        column, sep, values = clause.partition("=")
        if not sep or not column:
            raise ValueError(f"--where needs COLUMN=VALUE, got {clause!r}")
        if column not in trials.columns:
            raise ValueError(f"unknown column {column!r}; known: {', '.join(sorted(trials.columns))}")
        try:
            wanted = [_coerce(v, trials[column]) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"--where {clause!r}: {column} holds numbers") from None
        if column == "family":  # a misspelt family matches nothing: say so instead
            registry = LADDER_FAMILIES if (trials["study"] == "table2").any() else FAMILIES
            for name in wanted:
                registry[name]
        selected = selected[selected[column].isin(wanted)]
    if min_i_prime is not None:
        selected = selected[selected["i_prime"] >= min_i_prime]
    return selected


def default_columns(trials: pd.DataFrame) -> tuple[str, ...]:
    """Table 1's columns, with the convolutional networks' after the label where any run has them."""
    if "architecture" in trials and (trials["architecture"] == "conv").any():
        return (*DEFAULT_COLUMNS[:2], *CONV_COLUMNS, *DEFAULT_COLUMNS[2:])
    return DEFAULT_COLUMNS


def rank_trials(trials: pd.DataFrame, by: str = "i_prime", top: int | None = None, ascending: bool = False,
                columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Sorted by ``by`` (missing scores last), first ``top`` rows, the chosen columns (default: ``default_columns``);
    a field of the other architecture than a run's is left blank (a convolutional run has no n_layer_g)."""
    columns = default_columns(trials) if columns is None else columns
    if by not in trials.columns:
        raise ValueError(f"cannot sort by unknown column {by!r}")
    unknown = [c for c in columns if c not in trials.columns]
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}; known: {', '.join(sorted(trials.columns))}")
    ranked = trials.sort_values(by, ascending=ascending, na_position="last")
    selected = ranked.head(top) if top else ranked
    shown = selected.loc[:, list(columns)]
    if "architecture" not in trials:
        return shown
    architecture = selected["architecture"]
    for kind, fields in TrialConfig.ARCHITECTURE_FIELDS.items():
        for field in (f for f in fields if f in shown):
            shown[field] = shown[field].astype(object).where(architecture == kind, "")
    return shown
