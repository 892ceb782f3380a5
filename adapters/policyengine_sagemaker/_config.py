"""Site configuration: what SageMaker events cannot say by themselves.

EventBridge events name a Studio user profile or an IAM identity but not the person's printed
name or the role they sign in; an endpoint event names the endpoint but not the model package
it serves or whether it is production. A site states those facts once, in a JSON file
(`policyengine-sagemaker.json` beside the events, or the file named by the environment
variable `POLICYENGINE_SAGEMAKER_CONFIG`), or passes a `SageMakerConfig` to the adapter.
Unknown keys are errors, so a typo cannot silently disable a mapping.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policyengine.adapter import AdapterError

__all__ = ["CONFIG_ENV", "CONFIG_FILE", "EndpointInfo", "Identity", "SageMakerConfig"]

CONFIG_FILE = "policyengine-sagemaker.json"
CONFIG_ENV = "POLICYENGINE_SAGEMAKER_CONFIG"


@dataclass(frozen=True)
class Identity:
    """Who a SageMaker user profile or IAM identity is, for signatures and actors."""

    id: str
    """Stable identity recorded as the signer / actor id (e.g. an e-mail address)."""
    name: str | None = None
    """Printed name shown on the signature manifestation."""
    role: str | None = None
    """Role in which this person signs model approvals (e.g. `qa`)."""
    roles: tuple[str, ...] = ()
    """Roles the person holds, recorded on the actor; defaults to `(role,)`."""


@dataclass(frozen=True)
class EndpointInfo:
    """Static facts about an endpoint, used when its tags do not state them."""

    environment: str | None = None
    model_package: str | None = None
    """Model package ARN (or `group/version`) the endpoint serves."""


@dataclass(frozen=True)
class SageMakerConfig:
    """Mappings the adapter applies; every field has a safe default (nothing is invented:
    without a mapping, a signature has no printed name and an unassigned role, so it never
    counts towards a release, and an endpoint without an environment is an error)."""

    identities: Mapping[str, Identity] = field(default_factory=dict)
    """Keyed by user profile name, user profile ARN, IAM ARN, source identity or principal id."""
    default_role: str = "unassigned"
    """Signing role of an identity that is not in `identities` (not a release role)."""
    endpoints: Mapping[str, EndpointInfo] = field(default_factory=dict)
    """Keyed by endpoint name."""
    endpoint_configs: Mapping[str, str] = field(default_factory=dict)
    """Endpoint config name → model package it deploys (each deployment has its own config)."""
    environment_tag: str = "policyengine:environment"
    model_package_tag: str = "policyengine:model-package"
    purpose_tag: str = "policyengine:purpose"
    code_commit_tag: str = "policyengine:code-commit"
    purposes: Mapping[str, str] = field(default_factory=dict)
    """Pipeline name → declared purpose of its training runs."""
    default_purpose: str | None = None
    baselines: Mapping[str, str] = field(default_factory=dict)
    """Monitoring schedule or alarm name → baseline reference (e.g. the constraints S3 URI)."""
    training_run_key: str = "policyengine:training-run"
    artifact_digest_key: str = "policyengine:artifact-digest"
    intended_use_key: str = "policyengine:intended-use"
    """Keys looked up in a model package's `CustomerMetadataProperties`."""

    @classmethod
    def from_dict(cls, data: Any, origin: str = "config") -> SageMakerConfig:
        if not isinstance(data, dict):
            raise AdapterError("the configuration must be a JSON object", location=origin)
        known = set(cls.__dataclass_fields__)
        for key in data:
            if key not in known:
                raise AdapterError(
                    f"unknown configuration key `{key}`",
                    location=origin,
                    hint=f"known keys: {', '.join(sorted(known))}",
                )
        kwargs: dict[str, Any] = {}
        for key in (
            "default_role",
            "environment_tag",
            "model_package_tag",
            "purpose_tag",
            "code_commit_tag",
            "training_run_key",
            "artifact_digest_key",
            "intended_use_key",
        ):
            if key in data:
                kwargs[key] = _str(data[key], key, origin)
        if data.get("default_purpose") is not None:
            kwargs["default_purpose"] = _str(data["default_purpose"], "default_purpose", origin)
        for key in ("endpoint_configs", "purposes", "baselines"):
            if key in data:
                kwargs[key] = _str_map(data[key], key, origin)
        if "identities" in data:
            kwargs["identities"] = {
                k: _identity(v, f"identities.{k}", origin)
                for k, v in _obj(data["identities"], "identities", origin).items()
            }
        if "endpoints" in data:
            endpoints = {}
            for name, value in _obj(data["endpoints"], "endpoints", origin).items():
                where = f"endpoints.{name}"
                entry = _obj(value, where, origin)
                _only(entry, {"environment", "model_package"}, where, origin)
                endpoints[name] = EndpointInfo(
                    environment=_opt_str(entry.get("environment"), f"{where}.environment", origin),
                    model_package=_opt_str(
                        entry.get("model_package"), f"{where}.model_package", origin
                    ),
                )
            kwargs["endpoints"] = endpoints
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> SageMakerConfig:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AdapterError(f"no such configuration file `{path}`") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AdapterError(f"cannot read configuration `{path}`: {exc}") from None
        except json.JSONDecodeError as exc:
            raise AdapterError(
                f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                location=str(path),
            ) from None
        return cls.from_dict(data, str(path))

    @classmethod
    def discover(cls, source: str) -> SageMakerConfig:
        """The configuration for `source`: `$POLICYENGINE_SAGEMAKER_CONFIG` if set, else
        `policyengine-sagemaker.json` in the source folder (or beside the source file), else
        the defaults."""
        env = os.environ.get(CONFIG_ENV)
        if env:
            return cls.from_file(env)
        if source != "-":
            where = Path(source)
            candidate = (where if where.is_dir() else where.parent) / CONFIG_FILE
            if candidate.is_file():
                return cls.from_file(candidate)
        return cls()


def _str(value: Any, key: str, origin: str) -> str:
    if not isinstance(value, str) or not value:
        raise AdapterError("expected a non-empty string", location=origin, field=key)
    return value


def _opt_str(value: Any, key: str, origin: str) -> str | None:
    return None if value is None else _str(value, key, origin)


def _obj(value: Any, key: str, origin: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AdapterError("expected an object", location=origin, field=key)
    return value


def _only(value: dict[str, Any], allowed: set[str], key: str, origin: str) -> None:
    for k in value:
        if k not in allowed:
            raise AdapterError(
                f"unknown key `{k}`",
                location=origin,
                field=key,
                hint=f"known keys: {', '.join(sorted(allowed))}",
            )


def _str_map(value: Any, key: str, origin: str) -> dict[str, str]:
    return {k: _str(v, f"{key}.{k}", origin) for k, v in _obj(value, key, origin).items()}


def _identity(value: Any, key: str, origin: str) -> Identity:
    entry = _obj(value, key, origin)
    _only(entry, {"id", "name", "role", "roles"}, key, origin)
    role = _opt_str(entry.get("role"), f"{key}.role", origin)
    roles_raw = entry.get("roles")
    if roles_raw is None:
        roles: tuple[str, ...] = (role,) if role else ()
    elif isinstance(roles_raw, list):
        roles = tuple(_str(r, f"{key}.roles[{i}]", origin) for i, r in enumerate(roles_raw))
    else:
        raise AdapterError("expected an array of strings", location=origin, field=f"{key}.roles")
    return Identity(
        id=_str(entry.get("id"), f"{key}.id", origin),
        name=_opt_str(entry.get("name"), f"{key}.name", origin),
        role=role,
        roles=roles,
    )
