"""Which metrics, thresholds and options apply to which columns.

The default report checks every numeric column with KS, PSI and normalised
Wasserstein, and every categorical column with chi-squared, Jensen–Shannon and PSI. A
thresholds file (TOML or JSON) replaces the defaults per column type, per column, or per
column-name pattern:

    bins = 10                       # reference quantile bins for binned metrics

    [numeric]                       # replaces the numeric defaults
    ks = { threshold = 0.01 }       # a test: the threshold is the p-value's alpha
    psi = 0.25                      # shorthand for { threshold = 0.25 }
    wasserstein = true              # the metric's default threshold

    [categorical]
    chi2 = {}
    new_categories = 0.0

    [columns.age]                   # this column only
    kind = "numeric"
    psi = { threshold = 0.1, bins = 20 }

    [columns."assay_*"]             # shell-style pattern; exact names win
    skip = true
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policyengine.drift.compare import METRICS, MetricSpec, validate_spec
from policyengine.drift.errors import DriftError
from policyengine.drift.profile import DEFAULT_BINS, ColumnKind

__all__ = [
    "DEFAULT_CATEGORICAL",
    "DEFAULT_NUMERIC",
    "ColumnConfig",
    "DriftConfig",
    "config_from_mapping",
    "load_config",
]

DEFAULT_NUMERIC: tuple[MetricSpec, ...] = (
    MetricSpec("ks"),
    MetricSpec("psi"),
    MetricSpec("wasserstein"),
)
DEFAULT_CATEGORICAL: tuple[MetricSpec, ...] = (
    MetricSpec("chi2"),
    MetricSpec("js"),
    MetricSpec("psi"),
)


@dataclass(frozen=True, slots=True)
class ColumnConfig:
    kind: ColumnKind | None = None
    """Compare as this kind regardless of the stored type (e.g. integer codes as categories)."""
    metrics: tuple[MetricSpec, ...] | None = None
    """None: the defaults for the column's kind."""
    skip: bool = False


@dataclass(frozen=True, slots=True)
class DriftConfig:
    numeric: tuple[MetricSpec, ...] = DEFAULT_NUMERIC
    categorical: tuple[MetricSpec, ...] = DEFAULT_CATEGORICAL
    columns: Mapping[str, ColumnConfig] = field(default_factory=dict)
    """Exact column names and shell-style patterns; exact names win, then the first
    matching pattern in file order."""
    bins: int = DEFAULT_BINS

    def column(self, name: str) -> ColumnConfig | None:
        if name in self.columns:
            return self.columns[name]
        for pattern, cfg in self.columns.items():
            if _is_pattern(pattern) and fnmatch.fnmatchcase(name, pattern):
                return cfg
        return None

    def kind_for(self, name: str, stored: ColumnKind | None) -> ColumnKind | None:
        cfg = self.column(name)
        return cfg.kind if cfg is not None and cfg.kind is not None else stored

    def skipped(self, name: str) -> bool:
        cfg = self.column(name)
        return cfg is not None and cfg.skip

    def specs_for(self, name: str, kind: ColumnKind) -> tuple[MetricSpec, ...]:
        cfg = self.column(name)
        if cfg is not None and cfg.metrics is not None:
            return cfg.metrics
        return self.numeric if kind == "numeric" else self.categorical


def _is_pattern(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def load_config(path: str | Path) -> DriftConfig:
    """Read a thresholds file: `.json` as JSON, anything else as TOML."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DriftError(f"no such thresholds file `{path}`") from None
    except OSError as exc:
        raise DriftError(f"cannot read `{path}`: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DriftError(f"thresholds file `{path}` is not UTF-8") from None
    try:
        data: Any = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise DriftError(f"`{path}` is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DriftError(f"`{path}` is not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise DriftError(f"`{path}` must hold a table of settings")
    return config_from_mapping(data, source=str(path))


_TOP = ("bins", "numeric", "categorical", "columns")
_COLUMN_KEYS = ("kind", "skip")


def config_from_mapping(data: Mapping[str, Any], *, source: str = "thresholds") -> DriftConfig:
    for key in data:
        if key not in _TOP:
            raise DriftError(f"{source}: unknown setting `{key}`", _suggest(key, _TOP))
    bins = data.get("bins", DEFAULT_BINS)
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
        raise DriftError(f"{source}: `bins` must be a positive integer, got `{bins}`")
    numeric = (
        _specs(data["numeric"], f"{source}: [numeric]") if "numeric" in data else DEFAULT_NUMERIC
    )
    categorical = (
        _specs(data["categorical"], f"{source}: [categorical]")
        if "categorical" in data
        else DEFAULT_CATEGORICAL
    )
    for s in numeric:
        validate_spec(s, "numeric")
    for s in categorical:
        validate_spec(s, "categorical")
    columns: dict[str, ColumnConfig] = {}
    raw_cols = data.get("columns", {})
    if not isinstance(raw_cols, dict):
        raise DriftError(f"{source}: `columns` must be a table of column names")
    for name, body in raw_cols.items():
        where = f"{source}: [columns.{name}]"
        if not isinstance(body, dict):
            raise DriftError(f"{where} must be a table")
        kind = body.get("kind")
        if kind not in (None, "numeric", "categorical"):
            raise DriftError(f'{where}: `kind` must be "numeric" or "categorical", got `{kind}`')
        skip = body.get("skip", False)
        if not isinstance(skip, bool):
            raise DriftError(f"{where}: `skip` must be true or false")
        metric_items = {k: v for k, v in body.items() if k not in _COLUMN_KEYS}
        metrics = _specs(metric_items, where) if metric_items else None
        if metrics is not None and kind is not None:
            for s in metrics:
                validate_spec(s, kind, name)
        columns[str(name)] = ColumnConfig(kind, metrics, skip)
    return DriftConfig(numeric, categorical, columns, bins)


def _specs(table: Any, where: str) -> tuple[MetricSpec, ...]:
    if not isinstance(table, dict):
        raise DriftError(f"{where} must be a table of metric = threshold or options")
    out: list[MetricSpec] = []
    for name, value in table.items():
        if name not in METRICS:
            raise DriftError(
                f"{where}: unknown drift metric `{name}`", _suggest(name, list(METRICS))
            )
        if value is True:
            out.append(MetricSpec(name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(MetricSpec(name, float(value)))
        elif isinstance(value, dict):
            opts = dict(value)
            threshold = opts.pop("threshold", None)
            if threshold is not None and (
                not isinstance(threshold, (int, float)) or isinstance(threshold, bool)
            ):
                raise DriftError(
                    f"{where}: threshold of `{name}` must be a number, got `{threshold}`"
                )
            out.append(MetricSpec(name, None if threshold is None else float(threshold), opts))
        else:
            raise DriftError(
                f"{where}: `{name}` must be a threshold, `true` or a table of options, "
                f"got `{value!r}`"
            )
    return tuple(out)


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.5)
    if close:
        return "did you mean " + ", ".join(f"`{c}`" for c in close) + "?"
    return "known: " + ", ".join(f"`{c}`" for c in choices)
