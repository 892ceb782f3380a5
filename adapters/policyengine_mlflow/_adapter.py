"""`MLflowAdapter`: reads a tracking server or store through `MlflowClient`.

mlflow is imported only when a source is read, so `policyengine adapters` lists this adapter
(and other adapters work) where the `mlflow` extra is not installed.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policyengine.adapter import AdapterError, Located
from policyengine.adapter_kit import normalise_time
from policyengine.events import EventError, parse_event

from ._source import Source
from ._translate import Translated, Translator, instant

__all__ = ["STATE_VERSION", "MLflowAdapter", "SyncState"]

STATE_VERSION = 1
_PAGE = 1000
_QUIET = ("alembic", "mlflow.store.db.utils", "mlflow.store.model_registry.abstract_store")


class MLflowAdapter:
    """Reads runs (with their dataset inputs), registered model versions, approval tags,
    aliases and legacy stages from MLflow and translates them into canonical events, oldest
    first. SOURCE is a tracking URI (`http://127.0.0.1:5000`, `sqlite:///mlflow.db`,
    `file:///srv/mlruns`) with optional `?experiment=NAME&model=NAME&state=FILE&since=TIME
    &alias=champion:production` (README.md in this folder)."""

    name = "mlflow"
    summary = "MLflow tracking server or store: runs, dataset inputs, model versions, aliases"

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))

    def events(self, source: str) -> Iterator[dict[str, Any] | Located | AdapterError]:
        src = Source.parse(source)
        state = SyncState.load(src.state, src.tracking_uri) if src.state else None
        client = _client(src)
        observed = normalise_time(self._now().isoformat(), "now")
        reader = _Reader(client, src, Translator(aliases=src.aliases), state, observed)
        with _quiet():
            items = reader.read()
        translated = sorted((i for i in items if isinstance(i, Translated)), key=_order)
        yield from (i for i in items if isinstance(i, AdapterError))
        accepted: list[str] = []
        for item in translated:
            event = item.event
            if src.since is not None and instant(event["time"]) < instant(src.since):
                continue
            if state is not None and event["id"] in state.emitted:
                continue
            if _valid(event):
                accepted.append(event["id"])
            yield Located(event, f"{src.tracking_uri}: {item.location}")
        if state is not None and src.state is not None:
            state.emitted.update(accepted)
            state.aliases = reader.aliases_seen
            state.synced_at = observed
            state.save(src.state)


def _order(item: Translated) -> tuple[datetime, int]:
    return item.order


def _valid(event: dict[str, Any]) -> bool:
    """Only events the engine accepts count as synced: a rejected one is offered again."""
    try:
        parse_event(event)
    except EventError:
        return False
    return True


@dataclass
class SyncState:
    """The incremental-sync cursor: ids already yielded and when each alias was first seen.

    Kept in a small JSON file (`?state=FILE`); ids are content hashes, so a record MLflow
    changed yields a new event, and one it did not is not yielded again."""

    tracking_uri: str
    emitted: set[str] = field(default_factory=set)
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    synced_at: str | None = None

    @classmethod
    def load(cls, path: Path, tracking_uri: str) -> SyncState:
        if not path.exists():
            return cls(tracking_uri)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AdapterError(
                f"cannot read the sync state `{path}`: {exc}",
                hint="delete it to sync everything again",
            ) from None
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise AdapterError(
                f"`{path}` is not an MLflow sync state (version {STATE_VERSION})",
                hint="delete it to sync everything again",
            )
        if raw.get("tracking_uri") != tracking_uri:
            raise AdapterError(
                f"the sync state `{path}` belongs to `{raw.get('tracking_uri')}`, "
                f"not `{tracking_uri}`",
                hint="use one state file per tracking server",
            )
        emitted = raw.get("emitted", [])
        aliases = raw.get("aliases", {})
        if not isinstance(emitted, list) or not isinstance(aliases, dict):
            raise AdapterError(
                f"`{path}`: malformed sync state",
                field="emitted",
                hint="delete it to sync everything again",
            )
        return cls(tracking_uri, set(map(str, emitted)), aliases, raw.get("synced_at"))

    def save(self, path: Path) -> None:
        """Atomically (temporary file, fsync, rename): a crash leaves the old cursor."""
        body = {
            "version": STATE_VERSION,
            "tracking_uri": self.tracking_uri,
            "synced_at": self.synced_at,
            "aliases": self.aliases,
            "emitted": sorted(self.emitted),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(body, fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def _client(src: Source) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise AdapterError(
            "the MLflow adapter needs the `mlflow` package",
            hint="install policyengine[mlflow] (pip install 'policyengine[mlflow]')",
        ) from None
    if src.is_http:
        _check_reachable(src.tracking_uri)
    else:
        src.check_local()
    return MlflowClient(tracking_uri=src.tracking_uri, registry_uri=src.registry_uri)


def _check_reachable(uri: str) -> None:
    """Fail in seconds, with the URI named, rather than after MLflow's minutes of retries."""
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read(64)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # not every proxy forwards /health; the API calls will tell
            return
        raise AdapterError(
            f"the MLflow server at `{uri}` answered {exc.code} on /health",
            hint="check the URI and that the server is healthy",
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AdapterError(
            f"cannot reach the MLflow tracking server at `{uri}`: {reason}",
            hint="start it (`mlflow server --backend-store-uri sqlite:///mlflow.db`) "
            "or check the host and port",
        ) from None


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow logs schema migrations and waits at INFO; the CLI's stderr is for findings."""
    loggers = [logging.getLogger(n) for n in _QUIET]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


class _Reader:
    def __init__(
        self,
        client: Any,
        src: Source,
        translator: Translator,
        state: SyncState | None,
        observed: str,
    ) -> None:
        self.client = client
        self.src = src
        self.tr = translator
        self.state = state
        self.observed = observed
        self.aliases_seen: dict[str, dict[str, str]] = {}

    def read(self) -> list[Translated | AdapterError]:
        try:
            return self._read()
        except AdapterError:
            raise
        except Exception as exc:  # MlflowException, requests / SQLAlchemy errors
            raise AdapterError(
                f"reading `{self.src.tracking_uri}` failed: {_reason(exc)}",
                hint="check the tracking URI, credentials (MLFLOW_TRACKING_USERNAME/"
                "MLFLOW_TRACKING_PASSWORD) and that the server is an MLflow tracking server",
            ) from None

    def _read(self) -> list[Translated | AdapterError]:
        out: list[Translated | AdapterError] = []
        models = [(m, self._versions(m["name"])) for m in self._models()]
        if self.src.models and not self.src.experiments:
            # Only the named models: read just the runs that trained their versions.
            wanted = dict.fromkeys(v["run_id"] for _m, vs in models for v in vs if v.get("run_id"))
            runs, experiments = self._runs_by_id(list(wanted))
        else:
            experiments = self._experiments()
            runs = self._runs(list(experiments))
        run_ids: set[str] = set()
        for run in runs:
            record = run.to_dictionary()
            run_ids.add(record["info"]["run_id"])
            exp = experiments.get(record["info"]["experiment_id"])
            out.extend(self.tr.run(record, exp))
        for model, versions in models:
            if self.src.experiments:  # only the models trained by the runs read
                versions = [v for v in versions if v.get("run_id") in run_ids]
            for version in versions:
                if version.get("status") not in (None, "", "READY"):
                    continue  # still uploading, or failed: not a model version yet
                out.extend(self.tr.model_version(version, model))
            present = {str(v["version"]) for v in versions}
            for alias, target in sorted(model["aliases"].items()):
                if str(target) in present:
                    out.append(self._alias(model["name"], alias, str(target)))
        return out

    def _runs_by_id(self, run_ids: list[str]) -> tuple[list[Any], dict[str, dict[str, Any]]]:
        runs: list[Any] = []
        experiments: dict[str, dict[str, Any]] = {}
        for run_id in run_ids:
            try:
                run = self.client.get_run(run_id)
            except Exception as exc:
                if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")):
                    continue  # deleted: the version's `training_run` stays a dangling ref
                raise
            if run.info.lifecycle_stage != "active":
                continue
            runs.append(run)
            exp_id = run.info.experiment_id
            if exp_id not in experiments:
                experiments[exp_id] = _experiment(self.client.get_experiment(exp_id))
        runs.sort(key=lambda r: r.info.start_time or 0)
        return runs, experiments

    def _alias(self, name: str, alias: str, version: str) -> Translated:
        key = f"{name}\t{alias}"
        seen = self.state.aliases.get(key) if self.state else None
        at = seen["seen"] if seen and seen.get("version") == version else self.observed
        self.aliases_seen[key] = {"version": version, "seen": at}
        return self.tr.alias(name, alias, version, at, f"registered model {name}")

    def _experiments(self) -> dict[str, dict[str, Any]]:
        from mlflow.entities import ViewType

        found: dict[str, dict[str, Any]] = {}
        if self.src.experiments:
            for name in self.src.experiments:
                exp = self.client.get_experiment_by_name(name)
                if exp is None or exp.lifecycle_stage != "active":
                    names = [e.name for e in self._all_experiments(ViewType)]
                    shown = ", ".join(f"`{n}`" for n in names[:20]) or "none"
                    raise AdapterError(
                        f"unknown experiment `{name}`", hint=f"experiments on this server: {shown}"
                    )
                found[exp.experiment_id] = _experiment(exp)
            return found
        for exp in self._all_experiments(ViewType):
            found[exp.experiment_id] = _experiment(exp)
        return found

    def _all_experiments(self, view_type: Any) -> list[Any]:
        out: list[Any] = []
        token = None
        while True:
            page = self.client.search_experiments(
                view_type=view_type.ACTIVE_ONLY, max_results=_PAGE, page_token=token
            )
            out.extend(page)
            token = page.token
            if not token:
                return out

    def _runs(self, experiment_ids: list[str]) -> list[Any]:
        from mlflow.entities import ViewType

        runs: list[Any] = []
        if not experiment_ids:
            return runs
        token = None
        while True:
            page = self.client.search_runs(
                experiment_ids,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=_PAGE,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _models(self) -> list[dict[str, Any]]:
        models: list[dict[str, Any]] = []
        if self.src.models:
            for name in self.src.models:
                try:
                    model = self.client.get_registered_model(name)
                except Exception as exc:
                    if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")):
                        raise AdapterError(f"unknown registered model `{name}`") from None
                    raise
                models.append(_registered_model(model))
            return models
        token = None
        while True:
            page = self.client.search_registered_models(max_results=_PAGE, page_token=token)
            models.extend(_registered_model(m) for m in page)
            token = page.token
            if not token:
                return models

    def _versions(self, name: str) -> list[dict[str, Any]]:
        escaped = name.replace("'", "\\'")
        versions: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.client.search_model_versions(
                f"name = '{escaped}'", max_results=_PAGE, page_token=token
            )
            versions.extend(_model_version(v) for v in page)
            token = page.token
            if not token:
                break
        return sorted(versions, key=lambda v: int(v["version"]) if v["version"].isdigit() else 0)


def _experiment(exp: Any) -> dict[str, Any]:
    return {"experiment_id": exp.experiment_id, "name": exp.name, "tags": dict(exp.tags or {})}


def _registered_model(model: Any) -> dict[str, Any]:
    aliases = model.aliases or {}
    if isinstance(aliases, list):  # RegisteredModelAlias entities in some versions
        aliases = {a.alias: a.version for a in aliases}
    return {
        "name": model.name,
        "tags": dict(model.tags or {}),
        "aliases": {str(k): str(v) for k, v in aliases.items()},
        "description": model.description,
    }


def _model_version(mv: Any) -> dict[str, Any]:
    """A `ModelVersion` as MLflow's REST API serialises it, with tags as a map."""
    return {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "user_id": mv.user_id,
        "current_stage": mv.current_stage,
        "description": mv.description,
        "source": mv.source,
        "run_id": mv.run_id,
        "status": mv.status,
        "tags": dict(mv.tags or {}),
        "model_id": getattr(mv, "model_id", None),
    }


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    first = str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__
    return first[:300]
