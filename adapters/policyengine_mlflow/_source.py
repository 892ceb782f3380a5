"""SOURCE for `--adapter mlflow`: an MLflow tracking URI plus options in its query string.

The tracking URI is what `MlflowClient(tracking_uri=...)` takes; the options after `?` are
ours and are removed before MLflow sees the URI, so a query string never reaches a tracking
server or a database driver. Checked up front, so a typo fails before anything is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from policyengine.adapter import AdapterError
from policyengine.adapter_kit import BadField, normalise_time

__all__ = ["OPTIONS", "Source"]

#: Query options and what they do (shown in errors for unknown keys).
OPTIONS = {
    "experiment": "read only runs of this experiment (name; repeatable)",
    "model": "read only this registered model (name; repeatable)",
    "since": "only events at or after this time (RFC 3339 or epoch milliseconds)",
    "state": "sync state file: each sync yields only what the previous ones did not",
    "alias": "map an alias to a stage, e.g. `champion:production` (repeatable)",
    "registry": "model registry URI, when it is not the tracking URI",
}

_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "file", "databricks")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_SQLITE_MEMORY = {"sqlite://", "sqlite:///:memory:"}


@dataclass(frozen=True)
class Source:
    """A parsed SOURCE: where to read and which of our options apply."""

    tracking_uri: str
    registry_uri: str | None = None
    experiments: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    since: str | None = None
    state: Path | None = None
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def is_http(self) -> bool:
        return self.tracking_uri.lower().startswith(("http://", "https://"))

    @classmethod
    def parse(cls, text: str) -> Source:
        """Parse `URI[?option=value&...]`; a bare path to a `.db` file is read as SQLite
        and a bare directory as a file store (`mlruns/`)."""
        text = text.strip()
        if not text:
            raise AdapterError("empty source", hint=_HINT)
        uri, _, query = text.partition("?")
        uri = _with_scheme(uri)
        options = _options(query)
        aliases: dict[str, str] = {}
        for spec in options.get("alias", []):
            alias, sep, stage = spec.partition(":")
            if not sep or not alias.strip() or not stage.strip():
                raise AdapterError(
                    f"`alias={spec}` is not `ALIAS:STAGE`", hint="e.g. `alias=champion:production`"
                )
            aliases[alias.strip()] = stage.strip()
        since = None
        if options.get("since"):
            try:
                since = normalise_time(_one(options, "since"), "since")
            except BadField as err:
                raise AdapterError(f"`since`: {err.message}", hint=err.hint) from None
        state = Path(_one(options, "state")) if options.get("state") else None
        registry = _with_scheme(_one(options, "registry")) if options.get("registry") else None
        return cls(
            tracking_uri=uri,
            registry_uri=registry,
            experiments=tuple(_split(options.get("experiment", []))),
            models=tuple(_split(options.get("model", []))),
            since=since,
            state=state,
            aliases=aliases,
        )

    def check_local(self) -> None:
        """Refuse a local store that does not exist: MLflow would silently create an empty
        one, and an empty registry reads as "nothing to check"."""
        for uri in (self.tracking_uri, self.registry_uri):
            if uri is None:
                continue
            lower = uri.lower()
            if lower.startswith("sqlite:"):
                if lower in _SQLITE_MEMORY:
                    raise AdapterError(
                        f"`{uri}` is an empty in-memory database",
                        hint="point SOURCE at the database file of your tracking server",
                    )
                path = Path(uri[len("sqlite:///") :]) if lower.startswith("sqlite:///") else None
                if path is None or not path.is_file():
                    raise AdapterError(
                        f"no MLflow database at `{uri}`",
                        hint="use `sqlite:///relative/path.db` or `sqlite:////absolute/path.db`",
                    )
            elif lower.startswith("file:"):
                path = Path(re.sub(r"^file:(//)?", "", uri, flags=re.IGNORECASE))
                if not path.is_dir():
                    raise AdapterError(f"no MLflow file store at `{uri}`")


_HINT = (
    "SOURCE is a tracking URI such as `http://127.0.0.1:5000`, `sqlite:///mlflow.db` or "
    "`file:///path/to/mlruns`, optionally with `?experiment=NAME`"
)


def _with_scheme(uri: str) -> str:
    match = _SCHEME.match(uri)
    if match and len(match.group(1)) > 1:  # not a Windows drive letter
        scheme = match.group(1).lower()
        base = scheme.split("+", 1)[0]
        if base not in _SCHEMES:
            raise AdapterError(f"unsupported tracking URI scheme `{scheme}` in `{uri}`", hint=_HINT)
        return uri
    path = Path(uri)
    if path.is_dir():
        return path.resolve().as_uri()
    if path.is_file() and path.suffix in {".db", ".sqlite", ".sqlite3"}:
        return f"sqlite:///{path.resolve()}"
    raise AdapterError(
        f"`{uri}` is not a tracking URI, a `.db` file or an `mlruns` folder", hint=_HINT
    )


def _options(query: str) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise AdapterError(f"cannot read the options `?{query}`", hint=_option_hint()) from None
    for key, value in pairs:
        if key not in OPTIONS:
            raise AdapterError(f"unknown option `{key}`", hint=_option_hint())
        if not value.strip():
            raise AdapterError(f"option `{key}` needs a value", hint=f"{key}: {OPTIONS[key]}")
        options.setdefault(key, []).append(value)
    return options


def _one(options: dict[str, list[str]], key: str) -> str:
    values = options[key]
    if len(values) > 1:
        raise AdapterError(f"option `{key}` is given {len(values)} times", hint=OPTIONS[key])
    return values[0]


def _split(values: list[str]) -> list[str]:
    return [v for v in dict.fromkeys(values) if v]


def _option_hint() -> str:
    return "options: " + "; ".join(f"`{k}`: {v}" for k, v in OPTIONS.items())
