"""policyengine adapter for OpenLineage (spec 2-0-2; see README.md in this folder).

Reads OpenLineage RunEvents, JobEvents and DatasetEvents — from files (`OpenLineageAdapter`,
`policyengine ingest --adapter openlineage`) or over OpenLineage's HTTP transport
(`receiver.OpenLineageReceiver`, `POST /api/v1/lineage`) — validates each against the
published JSON Schema and the schemas of its facets, and translates it into canonical
events: governed datasets → `dataset.registered`, training runs → `run.started` /
`run.completed`, model outputs → `model.registered`, ETL outputs → `dataset.registered`
derived from the job's inputs.

Strictness, decided once for both entry points:

- **`eventTime` without a UTC offset is rejected** (`naive_time="reject"`, the default),
  naming `eventTime` with a hint. The spec types it as an RFC 3339 date-time, which always has
  an offset; the instant a naive time names is unknown, and guessing would silently shift an
  audit record. `naive_time="utc"` (or `POLICYENGINE_OPENLINEAGE_NAIVE_TIME=utc`) reads such
  times as UTC for producers known to emit UTC, and records the original text in each
  translated event's `openlineage.naive_event_time` label.
- **Every facet with a published schema is checked against it** (`facets="all"`, the
  default). `facets="interpreted"` (or `POLICYENGINE_OPENLINEAGE_FACETS=interpreted`) checks
  only the facets the translation reads, for producers whose other facets do not conform.
- JSON Schema `format` is asserted for `uuid` only (run ids become entity ids); other
  formats are annotations, as Draft 2020-12 has it and the spec's examples rely on.

`jsonschema` is the only run-time dependency (the `openlineage` extra); the OpenLineage client
is used by the tests only.
"""

from ._adapter import OpenLineageAdapter
from ._schema import (
    CORE_ID,
    CUSTOM_ID,
    GOVERNANCE,
    INTERPRETED,
    MODEL,
    SCHEMA_DIR,
    TRAINING,
    Problem,
    Schemas,
    event_kind,
)
from ._time import format_utc, parse_event_time
from ._translate import (
    FACETS_ENV,
    NAIVE_TIME_ENV,
    OpenLineageError,
    Options,
    Translator,
    dataset_id,
    model_id,
)

__all__ = [
    "CORE_ID",
    "CUSTOM_ID",
    "FACETS_ENV",
    "GOVERNANCE",
    "INTERPRETED",
    "MODEL",
    "NAIVE_TIME_ENV",
    "SCHEMA_DIR",
    "TRAINING",
    "OpenLineageAdapter",
    "OpenLineageError",
    "Options",
    "Problem",
    "Schemas",
    "Translator",
    "dataset_id",
    "event_kind",
    "format_utc",
    "model_id",
    "parse_event_time",
]
