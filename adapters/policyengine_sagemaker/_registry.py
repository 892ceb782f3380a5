"""Polling the SageMaker model registry with boto3 (`sagemaker-registry:GROUP` sources).

The registry is read with `ListModelPackages` (paginated, oldest first) and one
`DescribeModelPackage` per package. A `SageMaker Model Package State Change` event's `detail`
*is* the `DescribeModelPackage` response, so each package is wrapped in that EventBridge
envelope and translated by the same `Translator` as event files: both paths give the same
events, with the same ids, for the same package state.

boto3 is an optional dependency (`policyengine[sagemaker]`), imported only when a registry
source is read; credentials and region come from boto3's usual chain. A poll sees each
package's *current* state only: an approval overwritten before the next poll is not seen
(EventBridge events are the complete record).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from policyengine.adapter import AdapterError, Located
from policyengine.adapter_kit import BadField, normalise_time

from ._config import CONFIG_ENV, SageMakerConfig
from ._eventbridge import MODEL_PACKAGE, Translator

__all__ = [
    "REGISTRY_SCHEME",
    "RegistrySource",
    "as_eventbridge",
    "is_registry_source",
    "poll_registry",
    "registry_events",
    "sagemaker_client",
]

REGISTRY_SCHEME = "sagemaker-registry:"
INSTALL_HINT = "install policyengine[sagemaker] (`pip install 'policyengine[sagemaker]'`)"

# ModelPackageGroupName: a name, or the group's ARN (both accepted by ListModelPackages).
_GROUP = re.compile(
    r"^(?:[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62}"
    r"|arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:model-package-group/[\S]{1,2048})$"
)
_ARN = re.compile(r"^arn:(?P<partition>[^:]+):sagemaker:(?P<region>[^:]*):(?P<account>[^:]*):")
_OPTIONS = ("region", "endpoint_url", "profile", "since", "created_after", "config")


@dataclass(frozen=True)
class RegistrySource:
    """A parsed `sagemaker-registry:GROUP[?key=value&…]` source.

    Values are percent-decoded (`%2B` for a `+` in a time offset; a bare `+` is kept as is)."""

    group: str
    region: str | None = None
    """AWS region; default: boto3's chain (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile)."""
    endpoint_url: str | None = None
    """Another SageMaker API endpoint (a VPC endpoint, a local test server)."""
    profile: str | None = None
    """Named profile from the AWS config files; default: boto3's chain."""
    since: str | None = None
    """Only packages changed at or after this time (`LastModifiedTime`, else `CreationTime`)."""
    created_after: str | None = None
    """Only packages created after this time (`ListModelPackages`' `CreationTimeAfter`)."""
    config: str | None = None
    """Path of a policyengine-sagemaker.json; default: `$POLICYENGINE_SAGEMAKER_CONFIG`."""

    @classmethod
    def parse(cls, source: str) -> RegistrySource:
        if not is_registry_source(source):
            raise AdapterError(
                f"`{source}` is not a model registry source",
                hint=f"write `{REGISTRY_SCHEME}GROUP[?region=…&since=…]`",
            )
        rest = source[len(REGISTRY_SCHEME) :]
        group, _, query = rest.partition("?")
        group = unquote(group)
        if not _GROUP.match(group):
            raise AdapterError(
                f"`{group}` is not a model package group name or ARN",
                location=source,
                hint=f"write `{REGISTRY_SCHEME}GROUP`, e.g. `{REGISTRY_SCHEME}hepatox-screen`",
            )
        options: dict[str, str] = {}
        for part in query.split("&") if query else []:
            key, eq, value = part.partition("=")
            key = unquote(key)
            if key not in _OPTIONS:
                raise AdapterError(
                    f"unknown registry source option `{key}`",
                    location=source,
                    hint="known options: " + ", ".join(f"`{o}`" for o in _OPTIONS),
                )
            if key in options:
                raise AdapterError(f"option `{key}` is given twice", location=source)
            if not eq or not value:
                raise AdapterError(f"option `{key}` needs a value", location=source)
            options[key] = unquote(value)
        for key in ("since", "created_after"):
            if key in options:
                try:
                    options[key] = normalise_time(options[key], key)
                except BadField as err:
                    raise AdapterError(
                        err.message, location=source, field=err.field, hint=err.hint
                    ) from None
        return cls(group=group, **options)

    def __str__(self) -> str:
        values = [(k, getattr(self, k)) for k in _OPTIONS]
        query = "&".join(f"{k}={v}" for k, v in values if v is not None)
        return f"{REGISTRY_SCHEME}{self.group}" + (f"?{query}" if query else "")


def is_registry_source(source: str) -> bool:
    return source.startswith(REGISTRY_SCHEME)


def registry_events(
    source: str | RegistrySource,
    config: SageMakerConfig | None = None,
    client: Any = None,
) -> Iterator[dict[str, Any] | Located | AdapterError]:
    """Canonical events for every package of the group, located by package ARN.

    `config` defaults to the source's `config=` file, else `$POLICYENGINE_SAGEMAKER_CONFIG`,
    else the defaults (nothing is looked up beside a registry source: it has no folder).
    Errors in one package's translation name the `DescribeModelPackage` field at fault."""
    src = source if isinstance(source, RegistrySource) else RegistrySource.parse(source)
    if config is None:
        path = src.config or os.environ.get(CONFIG_ENV)
        config = SageMakerConfig.from_file(path) if path else SageMakerConfig()
    translator = Translator(config)
    for item in poll_registry(src, client):
        if isinstance(item, AdapterError):
            yield item
            continue
        location, event = item
        for out in translator.record(event, location):
            if isinstance(out, AdapterError):
                yield _describe_field(out)
            else:
                yield Located(out, location)


def poll_registry(
    source: RegistrySource, client: Any = None
) -> Iterator[tuple[str, dict[str, Any]] | AdapterError]:
    """(package ARN, EventBridge `Model Package State Change` event) for each package of the
    group, oldest first; an `AdapterError` for a package that cannot be described (deleted
    while listing, access denied), and a raised one when the registry cannot be read at all.

    `client` is a boto3 SageMaker client; default: `sagemaker_client(source)`."""
    exceptions = _botocore_exceptions()
    if client is None:
        client = sagemaker_client(source)
    group = source.group
    where = f"{REGISTRY_SCHEME}{group}"
    describe_group = partial(client.describe_model_package_group, ModelPackageGroupName=group)
    _call(exceptions, source, "DescribeModelPackageGroup", where, describe_group)
    params: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "SortBy": "CreationTime",
        "SortOrder": "Ascending",
    }
    if source.created_after is not None:
        params["CreationTimeAfter"] = _datetime(source.created_after)
    since = _datetime(source.since) if source.since is not None else None
    pages = client.get_paginator("list_model_packages").paginate(**params)
    for page in _pages(exceptions, source, where, pages):
        for summary in page.get("ModelPackageSummaryList", []):
            arn = summary.get("ModelPackageArn")
            if not isinstance(arn, str):
                yield AdapterError(
                    "the listed package has no ARN", location=where, field="ModelPackageArn"
                )
                continue
            try:
                describe = partial(client.describe_model_package, ModelPackageName=arn)
                response = _call(exceptions, source, "DescribeModelPackage", arn, describe)
            except _PackageError as err:
                yield err.error
                continue
            package = {k: v for k, v in response.items() if k != "ResponseMetadata"}
            if since is not None and _changed(package) < since:
                continue
            yield arn, as_eventbridge(package, source.region)


def as_eventbridge(package: Mapping[str, Any], region: str | None = None) -> dict[str, Any]:
    """The EventBridge `SageMaker Model Package State Change` event whose `detail` is this
    `DescribeModelPackage` response (boto3 `datetime`s become RFC 3339 text, as in events).
    Its `time` is the package's last change (`LastModifiedTime`, else `CreationTime`)."""
    detail = _jsonable(dict(package))
    arn = detail.get("ModelPackageArn")
    match = _ARN.match(arn) if isinstance(arn, str) else None
    event: dict[str, Any] = {
        "version": "0",
        "detail-type": MODEL_PACKAGE,
        "source": "aws.sagemaker",
        "time": detail.get("LastModifiedTime") or detail.get("CreationTime"),
        "resources": [arn] if isinstance(arn, str) else [],
        "detail": detail,
    }
    if match is not None:
        event["account"] = match["account"]
    if region or match is not None:
        event["region"] = region or (match["region"] if match else None)
    return event


def sagemaker_client(source: RegistrySource) -> Any:
    """A boto3 SageMaker client for the source's region, endpoint and profile (boto3's usual
    chain for whatever the source leaves out)."""
    boto3 = _import("boto3")
    exceptions = _botocore_exceptions()
    try:
        session = boto3.session.Session(profile_name=source.profile, region_name=source.region)
        return session.client("sagemaker", endpoint_url=source.endpoint_url)
    except exceptions.BotoCoreError as exc:
        raise _aws_error(exceptions, source, exc, str(source)) from None
    except ValueError as exc:  # an endpoint_url boto3 cannot use
        raise AdapterError(f"cannot use this source: {exc}", location=str(source)) from None


# ---------------------------------------------------------------------------------- helpers


class _PackageError(Exception):
    """A `DescribeModelPackage` refusal for one package: reported, the poll goes on."""

    def __init__(self, error: AdapterError) -> None:
        self.error = error


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise AdapterError(
            "reading the SageMaker model registry needs boto3, which is not installed",
            hint=INSTALL_HINT,
        ) from None


def _botocore_exceptions() -> ModuleType:
    return _import("botocore.exceptions")


def _call(
    exceptions: ModuleType, source: RegistrySource, op: str, where: str, fn: Callable[[], Any]
) -> Any:
    """`fn()`, with botocore's errors as `AdapterError`s that say what to do."""
    try:
        return fn()
    except exceptions.ClientError as exc:
        error = _client_error(exc, source, op, where)
        if op == "DescribeModelPackage":
            raise _PackageError(error) from None
        raise error from None
    except exceptions.BotoCoreError as exc:
        raise _aws_error(exceptions, source, exc, where) from None


def _pages(
    exceptions: ModuleType, source: RegistrySource, where: str, pages: Any
) -> Iterator[dict[str, Any]]:
    iterator = iter(pages)
    while True:
        try:
            page = _call(exceptions, source, "ListModelPackages", where, partial(next, iterator))
        except StopIteration:
            return
        yield page


def _client_error(exc: Any, source: RegistrySource, op: str, where: str) -> AdapterError:
    error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
    code = str(error.get("Code") or "error")
    message = str(error.get("Message") or exc)
    if op == "DescribeModelPackageGroup" and (
        code == "ResourceNotFound" or "does not exist" in message
    ):
        region = f" in region `{source.region}`" if source.region else ""
        return AdapterError(
            f"model package group `{source.group}` does not exist{region}",
            location=where,
            hint="check the group name and the region (`?region=…`)",
        )
    hint = None
    if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
        hint = (
            "the identity needs sagemaker:DescribeModelPackageGroup, sagemaker:ListModelPackages"
            " and sagemaker:DescribeModelPackage"
        )
    elif code in ("UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException"):
        hint = "refresh the AWS credentials (boto3's usual chain: environment, profile, role)"
    return AdapterError(f"SageMaker {op} failed: {code}: {message}", location=where, hint=hint)


def _aws_error(
    exceptions: ModuleType, source: RegistrySource, exc: Exception, where: str
) -> AdapterError:
    if isinstance(exc, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return AdapterError(
            "no AWS credentials found to read the model registry",
            location=where,
            hint="configure them the usual boto3 way: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,"
            " a profile (`?profile=…`, AWS_PROFILE) or an instance/task role",
        )
    if isinstance(exc, exceptions.NoRegionError):
        return AdapterError(
            "no AWS region given for the model registry",
            location=where,
            hint="add `?region=…` to the source or set AWS_REGION",
        )
    if isinstance(exc, exceptions.ProfileNotFound):
        return AdapterError(
            f"AWS profile `{source.profile}` not found",
            location=where,
            hint="name a profile from ~/.aws/config (or leave `profile=` out)",
        )
    if isinstance(exc, exceptions.EndpointConnectionError | exceptions.ConnectionClosedError):
        url = source.endpoint_url or getattr(exc, "kwargs", {}).get("endpoint_url") or "AWS"
        return AdapterError(
            f"cannot reach the SageMaker API at `{url}`",
            location=where,
            hint="check the network, the region and `endpoint_url=`",
        )
    return AdapterError(f"AWS error: {exc}", location=where)


def _describe_field(err: AdapterError) -> AdapterError:
    """Name the `DescribeModelPackage` field rather than the EventBridge `detail.` one."""
    if err.field and err.field.startswith("detail."):
        return AdapterError(
            err.message,
            location=err.location,
            field=err.field.removeprefix("detail."),
            hint=err.hint,
        )
    return err


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()  # botocore's are timezone-aware; a naive one is refused
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _changed(package: Mapping[str, Any]) -> datetime:
    """When the package last changed: `LastModifiedTime`, else `CreationTime`."""
    value = package.get("LastModifiedTime") or package.get("CreationTime")
    try:
        return _datetime(normalise_time(_jsonable(value), "LastModifiedTime"))
    except BadField:  # kept, so that its translation names the unreadable time
        return datetime.max.replace(tzinfo=UTC)
