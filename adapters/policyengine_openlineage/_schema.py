"""OpenLineage JSON Schema validation (spec 2-0-2, its standard facets and ours), with every
problem reported as a JSON path into the event.

The core schema only requires each facet to be an object with `_producer` and `_schemaURL`;
what a facet must contain is in its own schema under `schemas/facets/`. So after the core
check every facet whose name is known *for its position* (run, job, dataset, input dataset,
output dataset — `dataQualityMetrics` means different facets on a dataset and on an input)
is checked against its schema too; facets nobody published a schema for (other producers'
custom facets) need only the base-facet shape, as the spec says.

JSON Schema `format` keywords are annotations by default (Draft 2020-12), and the spec's own
examples rely on that (a `nominalTime` of `2020-01-01` is not an RFC 3339 date-time). The
adapter asserts `uuid` (run ids become entity ids) and checks `eventTime` itself, where it
matters; see `_time.py`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

__all__ = [
    "CORE_ID",
    "CUSTOM_ID",
    "GOVERNANCE",
    "INTERPRETED",
    "MODEL",
    "SCHEMA_DIR",
    "TRAINING",
    "EventKind",
    "FacetMode",
    "Position",
    "Problem",
    "Schemas",
    "event_kind",
    "facet_at",
    "schemas",
]

SCHEMA_DIR = Path(__file__).with_name("schemas")
CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
CUSTOM_ID = "urn:policyengine:openlineage-facets:1-0-0"

#: The custom facets this adapter defines (`schemas/policyengine-facets.json`).
GOVERNANCE = "policyengine_governance"
MODEL = "policyengine_model"
TRAINING = "policyengine_training"

EventKind = Literal["RunEvent", "JobEvent", "DatasetEvent"]
Position = Literal["run", "job", "dataset", "input", "output"]
FacetMode = Literal["all", "interpreted"]

_BASES: dict[str, Position] = {
    "RunFacet": "run",
    "JobFacet": "job",
    "DatasetFacet": "dataset",
    "InputDatasetFacet": "input",
    "OutputDatasetFacet": "output",
}

#: Facets the translation reads; with `facets="interpreted"` only these are checked against
#: their schemas (the others need only the base-facet shape of the core schema).
INTERPRETED: frozenset[tuple[Position, str]] = frozenset(
    {
        ("dataset", "version"),
        ("dataset", "dataSource"),
        ("dataset", "ownership"),
        ("dataset", "schema"),
        ("dataset", "columnLineage"),
        ("dataset", GOVERNANCE),
        ("dataset", MODEL),
        ("output", "outputStatistics"),
        ("job", "sourceCodeLocation"),
        ("job", TRAINING),
        ("run", "parent"),
        ("run", "errorMessage"),
        ("run", "executionParameters"),
        ("run", TRAINING),
    }
)

_CUSTOM: dict[tuple[Position, str], str] = {
    ("dataset", GOVERNANCE): "GovernanceDatasetFacet",
    ("dataset", MODEL): "ModelDatasetFacet",
    ("run", TRAINING): "TrainingRunFacet",
    ("job", TRAINING): "TrainingJobFacet",
}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Problem:
    """One schema problem: where in the event (`parts`, keys and indexes) and what."""

    parts: tuple[str | int, ...]
    message: str

    @property
    def path(self) -> str:
        """Dotted JSON path, `outputs[0].facets.ownership.owners[0].name`; `""` = the event."""
        return json_path(self.parts)

    @property
    def pointer(self) -> str:
        """RFC 6901 JSON Pointer in URI-fragment form, `#/outputs/0/facets/ownership`."""
        escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in self.parts)
        return "#/" + "/".join(escaped) if self.parts else "#"

    def prefixed(self, prefix: Sequence[str | int]) -> Problem:
        return Problem((*prefix, *self.parts), self.message)


def json_path(parts: Sequence[str | int]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part, ensure_ascii=False)}]"
    return path


def facet_at(parts: Sequence[str | int]) -> tuple[Position, str] | None:
    """The facet (position, name) a path points into, e.g. `inputs[0].inputFacets.x.y` →
    `("input", "x")`; None outside facets."""
    match tuple(parts):
        case ("run" | "job" | "dataset" as owner, "facets", str(name), *_):
            return owner, name
        case ("inputs" | "outputs", int(), "facets", str(name), *_):
            return "dataset", name
        case ("inputs", int(), "inputFacets", str(name), *_):
            return "input", name
        case ("outputs", int(), "outputFacets", str(name), *_):
            return "output", name
    return None


def event_kind(event: Mapping[str, Any]) -> EventKind | None:
    """Which of the three event types `event` means to be (the spec's `oneOf` branch).

    `run` makes a RunEvent, else `job` a JobEvent, else `dataset` a DatasetEvent; deciding
    first lets errors name the field of that type instead of "valid under none of three"."""
    if "run" in event:
        return "RunEvent"
    if "job" in event:
        return "JobEvent"
    if "dataset" in event:
        return "DatasetEvent"
    return None


class Schemas:
    """The schemas under `directory` (core, standard facets, custom facets), compiled once."""

    def __init__(self, directory: Path = SCHEMA_DIR) -> None:
        resources: list[tuple[str, Resource[Any]]] = []
        self._facets: dict[tuple[Position, str], str] = {}
        core = _load(directory / "OpenLineage.json")
        if core.get("$id") != CORE_ID:
            raise ValueError(f"`{directory / 'OpenLineage.json'}` is not OpenLineage spec 2-0-2")
        resources.append((CORE_ID, Resource.from_contents(core)))
        for file in sorted((directory / "facets").glob("*.json")):
            schema = _load(file)
            resources.append((schema["$id"], Resource.from_contents(schema)))
            for name, prop in schema.get("properties", {}).items():
                # Usually one `$ref`; `lineage` is an `anyOf` of a dataset and a job facet.
                for ref in [prop, *prop.get("anyOf", [])]:
                    def_name = ref.get("$ref", "").removeprefix("#/$defs/")
                    position = _position(schema["$defs"].get(def_name, {}))
                    if position is not None:
                        self._facets[(position, name)] = f"{schema['$id']}#/$defs/{def_name}"
        custom = _load(directory / "policyengine-facets.json")
        resources.append((CUSTOM_ID, Resource.from_contents(custom)))
        for key, def_name in _CUSTOM.items():
            self._facets[key] = f"{CUSTOM_ID}#/$defs/{def_name}"
        self._registry: Registry[Any] = Registry().with_resources(resources)
        self._validators: dict[str, Draft202012Validator] = {}
        self._any_event = self._validator(CORE_ID)

    def facet_ref(self, position: Position, name: str) -> str | None:
        """The schema (`$id#/$defs/Name`) of facet `name` at `position`, if one is known."""
        return self._facets.get((position, name))

    def known_facets(self) -> dict[tuple[Position, str], str]:
        return dict(self._facets)

    def validate(self, event: Any, mode: FacetMode = "all") -> list[Problem]:
        """Every problem with `event`, sorted by path; `[]` when it is a valid 2-0-2 event."""
        if not isinstance(event, Mapping):
            return [Problem((), "an OpenLineage event must be a JSON object")]
        kind = event_kind(event)
        if kind is None:
            return [
                Problem(
                    (),
                    "not an OpenLineage event: expected `run` and `job` (RunEvent), `job`"
                    " (JobEvent) or `dataset` (DatasetEvent)",
                )
            ]
        problems = self._problems(self._validator(f"{CORE_ID}#/$defs/{kind}"), event)
        if not problems and not self._any_event.is_valid(event):
            problems = [
                Problem((), "the event matches more than one of RunEvent, JobEvent, DatasetEvent")
            ]
        if problems:
            return problems
        for position, parts, facets in _facet_maps(event, kind):
            for name, facet in facets.items():
                if isinstance(facet, Mapping) and facet.get("_deleted") is True:
                    continue  # a deletion marker carries no content to check
                if mode == "interpreted" and (position, name) not in INTERPRETED:
                    continue
                ref = self.facet_ref(position, name)
                if ref is None:
                    continue
                found = self._problems(self._validator(ref), facet)
                problems += [p.prefixed((*parts, name)) for p in found]
        return sorted(problems, key=_order)

    def _validator(self, ref: str) -> Draft202012Validator:
        validator = self._validators.get(ref)
        if validator is None:
            validator = Draft202012Validator(
                {"$ref": ref}, registry=self._registry, format_checker=_FORMATS
            )
            self._validators[ref] = validator
        return validator

    @staticmethod
    def _problems(validator: Draft202012Validator, instance: Any) -> list[Problem]:
        found: dict[tuple[tuple[str | int, ...], str], Problem] = {}
        for error in validator.iter_errors(instance):
            for leaf in _leaves(error):
                for problem in _render(leaf):
                    found.setdefault((problem.parts, problem.message), problem)
        return sorted(found.values(), key=_order)


_FORMATS = FormatChecker(formats=["uuid"])


@cache
def schemas() -> Schemas:
    """The shared, lazily compiled schemas shipped with the adapter."""
    return Schemas()


def _load(file: Path) -> dict[str, Any]:
    data = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"`{file}` is not a JSON Schema")
    return data


def _position(definition: Mapping[str, Any]) -> Position | None:
    for part in definition.get("allOf", []):
        ref = part.get("$ref", "")
        if ref.startswith(CORE_ID + "#/$defs/"):
            return _BASES.get(ref.rsplit("/", 1)[-1])
    return None


def _facet_maps(
    event: Mapping[str, Any], kind: EventKind
) -> Iterator[tuple[Position, tuple[str | int, ...], Mapping[str, Any]]]:
    """Every facet map in an event that passed the core schema, with its position and path."""

    def facets(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = obj.get(key)
        return value if isinstance(value, Mapping) else {}

    if kind == "DatasetEvent":
        yield "dataset", ("dataset", "facets"), facets(event["dataset"], "facets")
        return
    if kind == "RunEvent":
        yield "run", ("run", "facets"), facets(event["run"], "facets")
    yield "job", ("job", "facets"), facets(event["job"], "facets")
    sides: tuple[tuple[str, str, Position], ...] = (
        ("inputs", "inputFacets", "input"),
        ("outputs", "outputFacets", "output"),
    )
    for side, extra, position in sides:
        for index, dataset in enumerate(event.get(side) or []):
            yield "dataset", (side, index, "facets"), facets(dataset, "facets")
            yield position, (side, index, extra), facets(dataset, extra)


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors that say what is wrong, below `anyOf`/`oneOf` wrappers.

    The spec wraps every facet map in a one-branch `anyOf`; its errors are the real ones. With
    several branches the most relevant one is followed."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches = {e.relative_schema_path[0] for e in error.context}
        chosen = list(error.context) if len(branches) == 1 else [best_match(error.context)]
        for sub in chosen:
            yield from _leaves(sub)
        return
    yield error


def _render(error: ValidationError) -> Iterator[Problem]:
    parts = tuple(error.absolute_path)
    # The stubs type these as possibly `Unset`; a reported error always has them.
    kind: Any = error.validator
    value: Any = error.validator_value
    schema: Any = error.schema
    instance: Any = error.instance
    if kind == "required":
        present = instance if isinstance(instance, Mapping) else {}
        for name in value:
            if name not in present:
                yield Problem((*parts, name), "field required")
        return
    if kind == "additionalProperties" and value is False and isinstance(instance, Mapping):
        known = schema.get("properties", {})
        allowed = [k for k in known if not k.startswith("_")]
        for name in instance:
            if name not in known:
                close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.6)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                yield Problem((*parts, name), f"unknown field{hint}")
        return
    if kind == "type":
        expected: list[str] = value if isinstance(value, list) else [value]
        names = " or ".join(_TYPE_NAMES.get(t) or t for t in expected)
        yield Problem(parts, f"expected {names}, got {_shown(instance)}")
        return
    if kind == "enum":
        choices = ", ".join(f"`{c}`" for c in value)
        yield Problem(parts, f"must be one of {choices}{_echo(instance)}")
        return
    if kind == "format":
        yield Problem(parts, f"expected a {value.upper()}{_echo(instance)}")
        return
    if kind == "minLength" and value == 1:
        yield Problem(parts, "must not be empty")
        return
    message = error.message
    yield Problem(parts, message[:1].lower() + message[1:])


_TYPE_NAMES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _shown(value: Any) -> str:
    echo = _echo(value)
    return echo.removeprefix(" (got ").removesuffix(")") if echo else _json_type(value)


def _echo(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f" (got `{json.dumps(shown, ensure_ascii=False)}`)"
    if value is None or isinstance(value, bool | int | float):
        return f" (got `{json.dumps(value)}`)"
    return ""


def _order(problem: Problem) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in problem.parts)
