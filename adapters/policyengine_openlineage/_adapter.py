"""`OpenLineageAdapter`: OpenLineage event files (JSON, JSON Lines, folders) → canonical events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policyengine.adapter import AdapterError, Located
from policyengine.adapter_kit import read_records

from ._translate import OpenLineageError, Options, Translator

__all__ = ["OpenLineageAdapter"]


class OpenLineageAdapter:
    """Reads OpenLineage RunEvents, JobEvents and DatasetEvents (spec 2-0-2), validates each
    against the spec's JSON Schema and its facet schemas, and translates it.

    SOURCE is a JSON file (one event or an array), a JSON Lines file (`.jsonl`, or a `.json`
    file with one event per line, as the client's file transport appends them), `-` for
    standard input, or a folder: every `*.json`/`*.jsonl` below it in path order. Options come
    from `options`, else from the environment (`Options.from_env`)."""

    name = "openlineage"
    summary = "OpenLineage RunEvent / JobEvent / DatasetEvent (spec 2-0-2) files"

    def __init__(self, options: Options | None = None) -> None:
        self.options = options

    def events(self, source: str) -> Iterator[dict[str, Any] | Located | AdapterError]:
        translator = Translator(self.options if self.options is not None else Options.from_env())
        for record in read_records(source):
            if isinstance(record, AdapterError):
                yield record
                continue
            try:
                translated = translator.translate(record.value)
            except OpenLineageError as err:
                yield err.at(record.location)
                continue
            for event in translated:
                yield Located(event, record.location)
