"""Reading the data to check: Parquet, CSV and Arrow IPC as polars lazy scans, plus the
content digest that ties an assessment to the exact bytes it was computed from."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from policyengine.drift.io import detect_format
from policyengine.privacy._frame import columns_of
from policyengine.privacy.errors import PrivacyError

__all__ = ["file_digest", "scan_data"]

_CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    """`sha256:<hex>` of the file's bytes, the form `dataset.registered` digests take, so a
    rule can compare an assessment with the registered dataset version."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
    except OSError as exc:
        raise PrivacyError(f"cannot read `{path}`: {exc.strerror or exc}") from None
    return "sha256:" + h.hexdigest()


def scan_data(path: str | Path) -> pl.LazyFrame:
    """A lazy scan of a data file (format by suffix, else by magic bytes, else CSV).

    The schema is read eagerly so that an unreadable file fails here, naming the file,
    rather than in the middle of a check. CSV types are inferred from the first 10,000 rows.
    """
    p = Path(path)
    if not p.exists():
        raise PrivacyError(
            f"no such file `{path}`", "check the path, relative to the current directory"
        )
    if p.is_dir():
        raise PrivacyError(f"`{path}` is a directory", "pass a Parquet, CSV or Arrow IPC file")
    fmt = detect_format(p)
    if fmt == "parquet":
        lf = pl.scan_parquet(p)
    elif fmt == "ipc":
        lf = pl.scan_ipc(p)
    elif fmt == "csv":
        lf = pl.scan_csv(p, infer_schema_length=10_000)
    else:
        raise PrivacyError(f"`{path}` is a saved drift profile, not data")
    try:
        columns_of(lf)
    except PrivacyError as err:
        raise PrivacyError(
            f"cannot read `{path}` as {fmt}: {err.message.split(': ', 1)[-1]}"
        ) from None
    return lf
