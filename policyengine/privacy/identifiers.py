"""Direct identifiers (names, e-mail, phone, MRN, dates of birth, …) found in a frame.

Two kinds of evidence, reported separately so a reviewer can judge them:

- the column *name*, split into lowercase words (`PatientFirstName` → patient first name)
  and matched against word sequences per kind. Whole words only, and the sequence must be
  the head of the name (only words such as `id`, `number` or a digit may follow), so
  `hotel_id` is not a telephone, `drug_name` is not a person's name and `phone_calls` or
  `dob_year` are not what their first word suggests;
- the column *values*: the share of the non-null values in a seeded random sample of rows
  that match a kind's pattern in full. Only text columns are matched, so numeric measurements (a
  10-digit lab value, a weight) can never look like a phone number or an MRN.

Findings never contain the values themselves: the report of a privacy check must not leak
what it found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from policyengine.privacy._frame import Frame, columns_of, lazy, polars_call, require_columns
from policyengine.privacy.errors import PrivacyError

__all__ = [
    "IDENTIFIER_KINDS",
    "NAME_PATTERNS",
    "VALUE_PATTERNS",
    "IdentifierFinding",
    "IdentifierKind",
    "column_words",
    "detect_identifiers",
    "kinds_by_name",
]

IdentifierKind = Literal[
    "name", "email", "phone", "mrn", "date_of_birth", "ssn", "ip_address", "street_address"
]
IDENTIFIER_KINDS: tuple[IdentifierKind, ...] = (
    "name",
    "email",
    "phone",
    "mrn",
    "date_of_birth",
    "ssn",
    "ip_address",
    "street_address",
)

# Word sequences that, found contiguously in a column name, mark the kind. A one-word entry
# in `_WHOLE` only counts when it is the entire name (`name`, `mail`, `tel` are too common
# as parts of other names).
NAME_PATTERNS: dict[IdentifierKind, tuple[tuple[str, ...], ...]] = {
    "name": (
        ("first", "name"),
        ("last", "name"),
        ("given", "name"),
        ("family", "name"),
        ("full", "name"),
        ("middle", "name"),
        ("maiden", "name"),
        ("patient", "name"),
        ("person", "name"),
        ("subject", "name"),
        ("surname",),
        ("forename",),
        ("firstname",),
        ("lastname",),
        ("fullname",),
    ),
    "email": (("email",), ("email", "address"), ("e", "mail"), ("mail", "address")),
    "phone": (
        ("phone",),
        ("tel",),
        ("telephone",),
        ("cellphone",),
        ("mobile", "number"),
        ("fax",),
        ("msisdn",),
    ),
    "mrn": (
        ("mrn",),
        ("medical", "record"),
        ("patient", "number"),
        ("hospital", "number"),
        ("chart", "number"),
        ("beneficiary", "number"),
    ),
    "date_of_birth": (
        ("dob",),
        ("date", "of", "birth"),
        ("birth", "date"),
        ("birthdate",),
        ("birthday",),
        ("birth", "datetime"),
    ),
    "ssn": (
        ("ssn",),
        ("social", "security"),
        ("national", "id"),
        ("national", "insurance", "number"),
        ("nhs", "number"),
    ),
    "ip_address": (("ip", "address"), ("ipaddress",), ("ipv4",), ("ipv6",)),
    "street_address": (
        ("street",),
        ("street", "address"),
        ("home", "address"),
        ("postal", "address"),
        ("address", "line"),
    ),
}
_WHOLE: dict[IdentifierKind, frozenset[str]] = {
    "name": frozenset({"name"}),
    "email": frozenset({"mail"}),
    "phone": frozenset({"mobile"}),
    "ip_address": frozenset({"ip"}),
    "street_address": frozenset({"address"}),
}

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

# Full-match patterns (Rust regex syntax, applied to trimmed text). Each is specific on
# purpose: a pattern that also matched codes, dates or numbers would block every release.
VALUE_PATTERNS: dict[IdentifierKind, str] = {
    # local@domain.tld
    "email": r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$",
    # +CC / (area) groups separated by space, dot or dash: 555-123-4567, +44 20 7946 0958
    "phone": r"^(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,5}\)[ .-]?|\d{2,5}[ .-])\d{3,4}[ .-]?\d{3,5}$",
    # US SSN in its printed form
    "ssn": r"^\d{3}-\d{2}-\d{4}$",
    # an MRN written with its label: MRN-0012345, MRN: 12345678
    "mrn": r"^(?i:mrn)[ :#-]{0,2}\d{5,12}$",
    # dotted-quad IPv4
    "ip_address": r"^(?:" + _OCTET + r"\.){3}" + _OCTET + "$",
    # titled names: "Dr. Jane Doe", "Mrs Ann O'Neil". Not "Doe, Jane": clinical text such
    # as "Fracture, Femur" has the same shape.
    "name": r"^(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.? [A-Z][a-zA-Z'-]+(?: [A-Z][a-zA-Z'-]+)+$",
}

DEFAULT_SAMPLE = 10_000
DEFAULT_MIN_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class IdentifierFinding:
    """A column that holds (or is named like) a direct identifier."""

    column: str
    kind: IdentifierKind
    name_match: bool
    """The column name says so."""
    share: float | None
    """Share of the sampled non-null values matching the kind's pattern; `None` when no
    value was matched (not a text column, no pattern for the kind, or no values)."""
    sampled: int
    """Non-null values the share was computed from."""

    @property
    def evidence(self) -> str:
        parts = []
        if self.name_match:
            parts.append("column name")
        if self.share is not None:
            parts.append(f"{self.share:.0%} of {self.sampled} sampled values match")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "name_match": self.name_match,
            "share": self.share,
            "sampled": self.sampled,
            "evidence": self.evidence,
        }


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def column_words(name: str) -> tuple[str, ...]:
    """`PatientFirstName` / `patient_first-name` → `("patient", "first", "name")`."""
    return tuple(w for w in _NON_WORD.split(_CAMEL.sub("_", name).lower()) if w)


# Words that may follow the identifying words without changing what the column holds.
_NEUTRAL_TAIL = frozenset(
    {"id", "no", "nr", "num", "number", "value", "text", "raw", "str", "primary", "secondary"}
)


def _heads(words: Sequence[str], seq: Sequence[str]) -> bool:
    """`seq` occurs in `words` followed only by neutral words (`phone_number_2`)."""
    n = len(seq)
    for i in range(len(words) - n + 1):
        if tuple(words[i : i + n]) == tuple(seq) and all(
            w in _NEUTRAL_TAIL or w.isdigit() for w in words[i + n :]
        ):
            return True
    return False


def kinds_by_name(name: str) -> list[IdentifierKind]:
    """The identifier kinds a column name points to (most columns: none)."""
    words = column_words(name)
    found: list[IdentifierKind] = []
    for kind in IDENTIFIER_KINDS:
        whole = _WHOLE.get(kind, frozenset())
        if (len(words) == 1 and words[0] in whole) or any(
            _heads(words, seq) for seq in NAME_PATTERNS.get(kind, ())
        ):
            found.append(kind)
    # `email address` / `ip address` are not street addresses.
    if "street_address" in found and ({"email", "ip_address"} & set(found)):
        found.remove("street_address")
    return found


def _is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


def detect_identifiers(
    frame: Frame,
    *,
    sample: int | None = DEFAULT_SAMPLE,
    min_share: float = DEFAULT_MIN_SHARE,
    columns: Iterable[str] | None = None,
    seed: int = 0,
) -> list[IdentifierFinding]:
    """Columns that look like direct identifiers, by name and by sampled values.

    A column is reported for a kind when its name matches the kind, or when at least
    `min_share` of the non-null values in a sample of `sample` rows (drawn uniformly with
    `seed`; `None` = every row) match the kind's pattern. Findings come in column order,
    then kind order.
    """
    if sample is not None and (isinstance(sample, bool) or sample < 1):
        raise PrivacyError(f"the identifier sample must be a positive integer, got `{sample}`")
    if not 0.0 < min_share <= 1.0:
        raise PrivacyError(f"the minimum share must be in (0, 1], got `{min_share}`")
    lf = lazy(frame)
    schema = columns_of(lf)
    chosen = list(schema) if columns is None else list(columns)
    require_columns(schema, chosen, "the identifier columns")

    text = [c for c in chosen if _is_text(schema[c])]
    shares = _value_shares(lf, text, sample, seed) if text else {}
    findings: list[IdentifierFinding] = []
    for column in chosen:
        by_name = set(kinds_by_name(column))
        sampled, matched = shares.get(column, (0, {}))
        for kind in IDENTIFIER_KINDS:
            share = matched[kind] / sampled if sampled and kind in matched else None
            by_value = share is not None and share >= min_share
            if kind in by_name or by_value:
                findings.append(
                    IdentifierFinding(
                        column=column,
                        kind=kind,
                        name_match=kind in by_name,
                        share=None if share is None else round(share, 4),
                        sampled=sampled if share is not None else 0,
                    )
                )
    return findings


def _value_shares(
    lf: pl.LazyFrame, columns: Sequence[str], sample: int | None, seed: int
) -> dict[str, tuple[int, dict[IdentifierKind, int]]]:
    """Per text column: (values sampled, matches per kind), all in one polars query.

    The same rows are sampled for every column: their indices are drawn once (seeded), so
    only `sample` values per column are ever cast and matched.
    """
    base = lf.select(columns)
    if sample is not None:
        rows = int(polars_call("count the rows", lambda: lf.select(pl.len()).collect().item()))
        if rows > sample:
            picked = np.sort(np.random.default_rng(seed).choice(rows, size=sample, replace=False))
            base = base.select(pl.all().gather(pl.Series(picked, dtype=pl.UInt64)))
    exprs: list[pl.Expr] = []
    for i, column in enumerate(columns):
        values = pl.col(column).cast(pl.String).drop_nulls().str.strip_chars()
        exprs.append(values.len().alias(f"n{i}"))
        for j, kind in enumerate(VALUE_PATTERNS):
            pattern = VALUE_PATTERNS[kind]
            exprs.append(values.str.contains(pattern).sum().alias(f"m{i}_{j}"))
    row = polars_call("sample the text columns", lambda: base.select(exprs).collect().row(0))
    out: dict[str, tuple[int, dict[IdentifierKind, int]]] = {}
    per_column = 1 + len(VALUE_PATTERNS)
    for i, column in enumerate(columns):
        at = i * per_column
        counts = {kind: int(row[at + 1 + j] or 0) for j, kind in enumerate(VALUE_PATTERNS)}
        out[column] = (int(row[at] or 0), counts)
    return out
