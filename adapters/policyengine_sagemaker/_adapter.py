"""`SageMakerAdapter`: EventBridge event files, Model Monitor report folders and (with boto3)
the model registry → events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from policyengine.adapter import AdapterError, Located
from policyengine.adapter_kit import Record, read_records

from ._config import CONFIG_FILE, SageMakerConfig
from ._eventbridge import Translator
from ._monitor import BASELINE_DIR, EXECUTION_FILE, MONITOR_FILES, VIOLATIONS_FILE, read_report
from ._registry import is_registry_source, registry_events

__all__ = ["SageMakerAdapter"]


class SageMakerAdapter:
    """Reads SageMaker's EventBridge events (model package, endpoint, pipeline step, training
    job) and CloudWatch alarm events for Model Monitor metrics, plus Model Monitor report
    folders, and translates them into canonical events.

    SOURCE is a JSON file (one event or an array), a JSON Lines file, `-` for standard input,
    or a folder: every `*.json`/`*.jsonl` under it in name order, where a sub-folder holding
    `monitoring_execution.json` is read as one Model Monitor report (with its `baseline/`);
    or `sagemaker-registry:GROUP[?region=…&since=…]` to poll a model package group with boto3
    (`policyengine[sagemaker]`), translated as the equivalent Model Package State Change."""

    name = "sagemaker"
    summary = (
        "SageMaker EventBridge events (registry, endpoints, pipelines, alarms), Model Monitor,"
        " sagemaker-registry: polling"
    )

    def __init__(self, config: SageMakerConfig | None = None) -> None:
        self.config = config

    def events(self, source: str) -> Iterator[dict[str, Any] | Located | AdapterError]:
        if is_registry_source(source):
            yield from registry_events(source, self.config)
            return
        config = self.config if self.config is not None else SageMakerConfig.discover(source)
        translator = Translator(config)
        root = Path(source)
        if source != "-" and root.is_dir() and _is_report(root):
            yield from self._report(translator, root)
            return
        reports = _report_folders(root) if source != "-" and root.is_dir() else []
        for item in read_records(source, skip_names=MONITOR_FILES | {CONFIG_FILE}):
            if isinstance(item, AdapterError):
                yield item
                continue
            # Report folders are read in name order among the event files around them.
            while reports and item.path is not None and reports[0] < item.path:
                yield from self._report(translator, reports.pop(0))
            if _in_report(item, root):
                continue
            for out in translator.record(item.value, item.location):
                yield out if isinstance(out, AdapterError) else Located(out, item.location)
        for folder in reports:
            yield from self._report(translator, folder)

    def _report(
        self, translator: Translator, folder: Path
    ) -> Iterator[dict[str, Any] | Located | AdapterError]:
        try:
            report = read_report(folder)
        except AdapterError as err:
            yield err
            return
        for out in translator.report(report):
            if isinstance(out, AdapterError):
                yield out
            else:
                feature = out["attributes"]["feature"]
                yield Located(out, f"{folder} ({feature})")


def _is_report(folder: Path) -> bool:
    return (folder / EXECUTION_FILE).is_file() or (folder / VIOLATIONS_FILE).is_file()


def _report_folders(root: Path) -> list[Path]:
    marked = [*root.rglob(EXECUTION_FILE), *root.rglob(VIOLATIONS_FILE)]
    found = sorted({p.parent for p in marked})
    return [f for f in found if f.name != BASELINE_DIR]


def _in_report(item: Record, root: Path) -> bool:
    """Whether a record's file lies inside a report folder (its reports are not events)."""
    if item.path is None:
        return False
    for parent in item.path.parents:
        if _is_report(parent):
            return True
        if parent == root:
            break
    return False
