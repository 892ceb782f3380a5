"""JSON Schema (Draft 2020-12) and Markdown reference generated from the catalogue.

Emitting systems validate against the schema without running Python; the committed copies in
`spec/` are regenerated with

    python -m policyengine.events.schema spec/events.schema.json \\
        --entities spec/entities.schema.json --markdown spec/events.md

and a test fails when they drift from the code.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from .catalog import ENTITY_KINDS, EVENT_TYPES, EventSpec, parse_event
from .models import (
    Actor,
    Approval,
    DatasetPrivacy,
    Deployment,
    DirectIdentifier,
    DriftBreach,
    Event,
    Override,
    SubjectRef,
    Target,
)
from .reducers import MemoryStateStore, apply_event
from .refs import Ref

__all__ = [
    "entity_json_schema",
    "event_json_schema",
    "events_markdown",
    "main",
    "render_json",
    "spec_files",
]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# The runtime rejects naive timestamps; a pattern makes schema-only validators agree.
_TIMESTAMP_PATTERN = r"(?:[Zz]|[+-]\d{2}:?\d{2})$"
_RECORDS: tuple[type[BaseModel], ...] = (
    Approval,
    Override,
    DriftBreach,
    Deployment,
    Target,
    DatasetPrivacy,
    DirectIdentifier,
)


class _Generator(GenerateJsonSchema):
    """Drops pydantic's auto-generated per-field titles ("Row Count"): noise in a spec."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _defs(models: Sequence[type[BaseModel]]) -> dict[str, Any]:
    _, schema = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/$defs/{model}",
        schema_generator=_Generator,
    )
    defs: dict[str, Any] = schema.get("$defs", {})
    return defs


def _pin_timestamps(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("format") == "date-time":
            node["pattern"] = _TIMESTAMP_PATTERN
        for value in node.values():
            _pin_timestamps(value)
    elif isinstance(node, list):
        for value in node:
            _pin_timestamps(value)


def _specs() -> list[EventSpec]:
    # Catalogue order follows the ML lifecycle, which reads better than alphabetical.
    return list(EVENT_TYPES.values())


def event_json_schema() -> dict[str, Any]:
    """Schema of one event; `type` selects the attributes schema through `oneOf`."""
    specs = _specs()
    defs = _defs([Event, *(spec.attributes for spec in specs)])
    envelope = defs.pop("Event")
    subject = defs.pop("SubjectRef")
    variants = []
    for spec in specs:
        properties = copy.deepcopy(envelope["properties"])
        properties["type"] = {"const": spec.name}
        variant_subject = copy.deepcopy(subject)
        variant_subject["properties"]["kind"] = {"const": spec.subject_kind}
        properties["subject"] = variant_subject
        properties["attributes"] = {"$ref": f"#/$defs/{spec.attributes.__name__}"}
        required = list(envelope["required"])
        if any(field.is_required() for field in spec.attributes.model_fields.values()):
            required.append("attributes")
        variants.append(
            {
                "title": spec.name,
                "description": spec.doc,
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
                "examples": [spec.example],
            }
        )
    schema = {
        "$schema": _DIALECT,
        "title": "policyengine lineage event",
        "description": "One event of the lineage log (one line of an event JSONL file).",
        "oneOf": variants,
        "$defs": defs,
    }
    _pin_timestamps(schema)
    return schema


def entity_json_schema() -> dict[str, Any]:
    """Schema of a state snapshot: entity kind → entity id → entity state."""
    defs = _defs(list(ENTITY_KINDS.values()))
    schema = {
        "$schema": _DIALECT,
        "title": "policyengine entity state",
        "description": "Entity states keyed by kind, then by entity id.",
        "type": "object",
        "properties": {
            kind: {
                "type": "object",
                "additionalProperties": {"$ref": f"#/$defs/{model.__name__}"},
            }
            for kind, model in sorted(ENTITY_KINDS.items())
        },
        "additionalProperties": False,
        "$defs": defs,
    }
    _pin_timestamps(schema)
    return schema


def render_json(schema: dict[str, Any]) -> str:
    """Deterministic text (sorted keys, trailing newline) so regenerating is diff-free."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- markdown


def _type_name(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    for item in metadata:
        if isinstance(item, Ref):
            return f"ref({item.kind})"
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0], args[1:])
    if origin is Union or origin is types.UnionType:
        return " | ".join(_type_name(arg) for arg in args)
    if origin is Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin is list:
        return f"list[{_type_name(args[0])}]"
    if origin is dict:
        return f"dict[str, {_type_name(args[1])}]"
    if annotation is type(None):
        return "null"
    if annotation is Any:
        return "any"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _required(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    return f"default `{json.dumps(default)}`"


def _description(name: str, field: FieldInfo, fallbacks: Sequence[type[BaseModel]]) -> str:
    # Attribute fields mirror entity/record fields; document each meaning once, there.
    if field.description:
        return field.description
    for model in fallbacks:
        other = model.model_fields.get(name)
        if other is not None and other.description:
            return other.description
    return ""


def _field_table(model: type[BaseModel], fallbacks: Sequence[type[BaseModel]] = ()) -> list[str]:
    rows = ["| Field | Type | Required | Description |", "|---|---|---|---|"]
    # Inherited `labels` would otherwise lead every attribute table.
    fields = sorted(model.model_fields.items(), key=lambda item: item[0] == "labels")
    for name, field in fields:
        rows.append(
            f"| `{name}` | {_cell(_type_name(field.annotation, field.metadata))} "
            f"| {_required(field)} | {_cell(_description(name, field, fallbacks))} |"
        )
    return rows


def _json_block(value: Any) -> list[str]:
    return ["```json", json.dumps(value, indent=2, ensure_ascii=False), "```"]


def _effect(spec: EventSpec) -> str:
    if spec.reducer is None or not spec.reducer.__doc__:
        return "none (the event is checked by policies but does not change state)"
    return spec.reducer.__doc__.strip().splitlines()[0]


def _example_states() -> dict[str, dict[str, Any]]:
    """Replay every catalogue example so entity examples show real reducer output."""
    store = MemoryStateStore()
    for spec in sorted(EVENT_TYPES.values(), key=lambda spec: spec.example["time"]):
        apply_event(store, parse_event(spec.example))
    states: dict[str, dict[str, Any]] = {}
    for (kind, _), state in store.items():
        states[kind] = ENTITY_KINDS[kind].model_validate(state).model_dump(mode="json")
    return states


def events_markdown() -> str:
    """`spec/events.md`: every event type and entity kind with fields, effect and example."""
    specs = _specs()
    out = [
        "# Lineage event catalogue",
        "",
        "<!-- Generated by `python -m policyengine.events.schema`; do not edit by hand. -->",
        "",
        "Events are JSON objects, one per line in an event log (JSONL). Every event has the",
        "envelope below; `type` selects the attribute schema and the entity kind its `subject`",
        "must have. Unknown fields are errors at every level, timestamps must be ISO 8601",
        "strings with a timezone (normalised to UTC), and NaN/Infinity are rejected.",
        "Machine-readable schemas: [`events.schema.json`](events.schema.json) and",
        "[`entities.schema.json`](entities.schema.json).",
        "",
        "## Envelope",
        "",
        *_field_table(Event),
        "",
        "### Actor",
        "",
        (Actor.__doc__ or "").strip(),
        "",
        *_field_table(Actor),
        "",
        "### SubjectRef",
        "",
        (SubjectRef.__doc__ or "").strip(),
        "",
        *_field_table(SubjectRef),
        "",
        "## State effects",
        "",
        "Each event type with a reducer updates the state of its subject entity; an entity seen",
        "for the first time starts from its defaults. *Upsert* means every attribute that is not",
        "`null` replaces the entity field of the same name: lists, maps and booleans are",
        "restated by every upsert (omitting `allowed_purposes` clears it), while omitted",
        "optional scalars keep their previous value.",
        "",
        "| Event type | Subject | Effect |",
        "|---|---|---|",
        *(
            f"| [`{s.name}`](#{s.name.replace('.', '')}) | `{s.subject_kind}` | "
            f"{_cell(_effect(s))} |"
            for s in specs
        ),
        "",
        "## Event types",
        "",
    ]
    for spec in specs:
        out += [
            f"### `{spec.name}`",
            "",
            spec.doc,
            "",
            f"- **Subject:** `{spec.subject_kind}`",
            f"- **Effect:** {_effect(spec)}",
            "",
            *_field_table(spec.attributes, [ENTITY_KINDS[spec.subject_kind], *_RECORDS]),
            "",
            *_json_block(spec.example),
            "",
        ]
    out += [
        "## Entity kinds",
        "",
        "State is kept per `(kind, id)`; policies reach it through `subject` and through",
        "`ref(kind)` fields. Examples are the states after replaying every example above.",
        "",
    ]
    states = _example_states()
    for kind, model in ENTITY_KINDS.items():
        out += [f"### `{kind}`", "", (model.__doc__ or "").strip(), ""]
        out += [*_field_table(model), ""]
        if kind in states:
            out += [*_json_block(states[kind]), ""]
    out += ["## Records", ""]
    for record in _RECORDS:
        out += [
            f"### {record.__name__}",
            "",
            (record.__doc__ or "").strip(),
            "",
            *_field_table(record),
            "",
        ]
    return "\n".join(out).rstrip("\n") + "\n"


def spec_files() -> dict[str, str]:
    """File name (under `spec/`) → generated content, for writing and for the sync test."""
    return {
        "events.schema.json": render_json(event_json_schema()),
        "entities.schema.json": render_json(entity_json_schema()),
        "events.md": events_markdown(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policyengine.events.schema",
        description="Write the event JSON Schema (and optionally the entity schema and docs).",
    )
    parser.add_argument("outfile", type=Path, help="where to write the event JSON Schema")
    parser.add_argument("--entities", type=Path, help="also write the entity-state schema")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown reference")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any file is stale"
    )
    args = parser.parse_args(argv)
    outputs: list[tuple[Path, str]] = [(args.outfile, render_json(event_json_schema()))]
    if args.entities is not None:
        outputs.append((args.entities, render_json(entity_json_schema())))
    if args.markdown is not None:
        outputs.append((args.markdown, events_markdown()))
    stale = False
    for path, text in outputs:
        if args.check:
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current != text:
                print(f"{path}: out of date", file=sys.stderr)
                stale = True
        else:
            path.write_text(text, encoding="utf-8", newline="\n")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
