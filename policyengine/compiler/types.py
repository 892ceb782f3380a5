"""The static type system used by the type-checking pass.

Types are small frozen values. `ANY` is the escape hatch for free-form data
(labels, parameters): anything is allowed statically and checked at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Type:
    def __str__(self) -> str:
        return "?"


@dataclass(frozen=True, slots=True)
class Prim(Type):
    name: str  # string | int | float | bool | null | timestamp | duration | any

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ListOf(Type):
    item: Type

    def __str__(self) -> str:
        return f"list<{self.item}>"


@dataclass(frozen=True, slots=True)
class SetOf(Type):
    item: Type

    def __str__(self) -> str:
        return f"set<{self.item}>"


@dataclass(frozen=True, slots=True)
class MapOf(Type):
    value: Type

    def __str__(self) -> str:
        return f"map<string, {self.value}>"


@dataclass(frozen=True, slots=True)
class Record(Type):
    """A structured value with known fields (nested attribute models, event envelope)."""

    name: str
    fields: Mapping[str, Type] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Entity(Type):
    """A reference to an entity in the state store. At run time the value is the
    entity id; reading a field looks the entity up."""

    kind: str

    def __str__(self) -> str:
        return f"entity<{self.kind}>"


@dataclass(frozen=True, slots=True)
class Optional(Type):
    """A field that may hold null. Reading it is allowed; comparing it with `==` too."""

    inner: Type

    def __str__(self) -> str:
        return f"{self.inner}?"


STRING = Prim("string")
INT = Prim("int")
FLOAT = Prim("float")
BOOL = Prim("bool")
NULL = Prim("null")
TIMESTAMP = Prim("timestamp")
DURATION = Prim("duration")
ANY = Prim("any")

NUMERIC = (INT, FLOAT)


def strip(t: Type) -> Type:
    """The type without its optional wrapper."""
    return t.inner if isinstance(t, Optional) else t


def is_any(t: Type) -> bool:
    return strip(t) == ANY


def has_any(t: Type) -> bool:
    """Whether `any` occurs anywhere in the type (`list<any>`, `map<string, any>` …):
    such values need the language's strict equality, not Python's."""
    s = strip(t)
    if s == ANY:
        return True
    if isinstance(s, ListOf | SetOf):
        return has_any(s.item)
    if isinstance(s, MapOf):
        return has_any(s.value)
    return False


def is_numeric(t: Type) -> bool:
    return strip(t) in NUMERIC or is_any(t)


def element_type(t: Type) -> Type | None:
    """What iterating a collection yields, or None when it is not iterable."""
    s = strip(t)
    if isinstance(s, ListOf | SetOf):
        return s.item
    if isinstance(s, MapOf):
        return STRING
    if s == ANY:
        return ANY
    return None


def compatible(a: Type, b: Type) -> bool:
    """Whether values of the two types may be compared for equality / ordering."""
    a, b = strip(a), strip(b)
    if a in (ANY, NULL) or b in (ANY, NULL):
        return True
    if a in NUMERIC and b in NUMERIC:
        return True
    if isinstance(a, Entity) and (b == STRING or (isinstance(b, Entity) and b.kind == a.kind)):
        return True
    if isinstance(b, Entity) and a == STRING:
        return True
    if isinstance(a, ListOf | SetOf) and isinstance(b, ListOf | SetOf):
        return type(a) is type(b) and compatible(a.item, b.item)
    if isinstance(a, Record) and isinstance(b, Record):
        return a.name == b.name
    return a == b


def join(a: Type, b: Type) -> Type:
    """The common type of two branches (list items, `??`)."""
    if a == b:
        return a
    sa, sb = strip(a), strip(b)
    if sa == NULL:
        return Optional(sb) if sb != NULL else NULL
    if sb == NULL:
        return Optional(sa)
    if sa == sb:  # before the numeric case: `int?` joined with `int` stays an int
        return Optional(sa) if isinstance(a, Optional) or isinstance(b, Optional) else sa
    if sa in NUMERIC and sb in NUMERIC:
        return FLOAT
    if (isinstance(sa, Entity) and sb == STRING) or (isinstance(sb, Entity) and sa == STRING):
        return STRING
    return ANY
