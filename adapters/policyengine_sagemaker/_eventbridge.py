"""EventBridge events from SageMaker and CloudWatch → canonical policyengine events.

One `Translator` reads one source in order. It is stateful on purpose: a model version is
registered the first time it is seen, a training run is started once, an endpoint remembers the
model version it serves (so a later drift alarm on the endpoint lands on that version), and a
re-delivered approval is not a second signature. README.md documents every mapping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from policyengine.adapter import AdapterError
from policyengine.adapter_kit import BadField, Fields, event_id

from ._config import Identity, SageMakerConfig
from ._monitor import MonitorReport, drift_results

__all__ = ["SAGEMAKER_ACTOR", "SKIPPED_DETAIL_TYPES", "SUPPORTED_DETAIL_TYPES", "Translator"]

MODEL_PACKAGE = "SageMaker Model Package State Change"
ENDPOINT = "SageMaker Endpoint State Change"
ENDPOINT_DEPLOYMENT = "SageMaker Endpoint Deployment State Change"
PIPELINE_STEP = "SageMaker Model Building Pipeline Execution Step Status Change"
PIPELINE_EXECUTION = "SageMaker Model Building Pipeline Execution Status Change"
TRAINING_JOB = "SageMaker Training Job State Change"
ALARM = "CloudWatch Alarm State Change"

SUPPORTED_DETAIL_TYPES = (
    MODEL_PACKAGE,
    ENDPOINT,
    ENDPOINT_DEPLOYMENT,
    PIPELINE_STEP,
    PIPELINE_EXECUTION,
    TRAINING_JOB,
    ALARM,
)
# Documented SageMaker events with no governance meaning here: read and ignored, so an archive
# of every SageMaker event can be ingested without noise.
SKIPPED_DETAIL_TYPES = frozenset(
    {
        "SageMaker Model State Change",
        "SageMaker HyperParameter Tuning Job State Change",
        "SageMaker Transform Job State Change",
        "SageMaker Feature Group State Change",
        "SageMaker Processing Job State Change",
        "SageMaker Image State Change",
        "SageMaker Image Version State Change",
        "SageMaker Model Card State Change",
    }
)

SAGEMAKER_ACTOR = {"id": "aws.sagemaker", "name": "Amazon SageMaker"}
CLOUDWATCH_ACTOR = {"id": "aws.cloudwatch", "name": "Amazon CloudWatch"}

# Model packages still being created, or failed/being deleted, are not (yet) model versions.
_NOT_A_VERSION = {"Pending", "InProgress", "Failed", "Deleting"}
# SageMaker writes a training job's model to <S3OutputPath>/<TrainingJobName>/output/model.tar.gz.
_MODEL_DATA = re.compile(r"/(?P<job>[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})/output/model\.tar\.gz$")
_ARN = re.compile(r"^arn:(?P<partition>[^:]+):sagemaker:(?P<region>[^:]*):(?P<account>[^:]*):")
# Model Monitor publishes to these CloudWatch namespaces (endpoint and batch variants).
_MONITOR_NAMESPACE = re.compile(
    r"^/?aws/sagemaker/(endpoints?|modelmonitoring)/"
    r"(data-metrics?|model-metrics|bias-metrics|explainability-metrics)$",
    re.IGNORECASE,
)
_RUN_STARTING = {"Starting", "Executing", "InProgress"}
_RUN_OUTCOME = {
    "Succeeded": "completed",
    "Completed": "completed",
    "Failed": "failed",
    "Stopped": "failed",
}


class Translator:
    """Translate one source's records, in order; see the module docstring."""

    def __init__(self, config: SageMakerConfig) -> None:
        self.config = config
        self._emitted: set[str] = set()
        self._registered: set[str] = set()
        self._signed: dict[str, tuple[str, set[str]]] = {}
        self._started: set[tuple[str, str]] = set()
        self._deployed: dict[str, tuple[str | None, str]] = {}
        self._execution_runs: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ entry points

    def record(self, value: Any, location: str) -> Iterator[dict[str, Any] | AdapterError]:
        """Events for one EventBridge event; an `AdapterError` for what cannot be translated
        (events already produced from the same record stand: a registration is not lost
        because the approval in the same record has no signer)."""
        try:
            if not isinstance(value, dict):
                raise BadField("", "an EventBridge event must be a JSON object")
            for item in self._event(Fields(value, "")):
                if isinstance(item, BadField):
                    yield _error(item, location)
                elif item["id"] not in self._emitted:
                    # EventBridge delivers at least once and SageMaker may send one change
                    # twice: an id already produced in this source is the same fact again.
                    self._emitted.add(item["id"])
                    yield item
        except BadField as err:
            yield _error(err, location)

    def report(self, report: MonitorReport) -> Iterator[dict[str, Any] | AdapterError]:
        """`drift.evaluated` events for one Model Monitor execution folder."""
        location = str(report.folder)
        try:
            if report.endpoint is None:
                raise BadField(
                    "EndpointName",
                    "the monitoring execution names no endpoint, so no model version",
                    "batch-transform monitoring is not mapped; monitor an endpoint",
                )
            model = self._model_for_endpoint(report.endpoint, None, "EndpointName")
            results = drift_results(report)
        except BadField as err:
            yield AdapterError(
                err.message,
                location=f"{location}/monitoring_execution.json",
                field=err.field,
                hint=err.hint,
            )
            return
        except AdapterError as err:
            yield err
            return
        baseline = self.config.baselines.get(report.schedule) or (
            report.baseline.reference if report.baseline else None
        )
        actor = {"id": report.processing_job or SAGEMAKER_ACTOR["id"], "name": report.schedule}
        events = []
        for r in results:
            labels = dict(r.labels)
            labels["sagemaker.monitoring_schedule"] = report.schedule
            labels["sagemaker.endpoint"] = report.endpoint
            if report.item_count is not None:
                labels["sagemaker.item_count"] = str(report.item_count)
            if report.processing_job:
                labels["sagemaker.processing_job"] = report.processing_job
            check = r.labels["sagemaker.constraint_check_type"]
            events.append(
                _event(
                    event_id(
                        "sagemaker-monitor",
                        report.processing_job or report.schedule,
                        report.time,
                        r.feature,
                        check,
                    ),
                    "drift.evaluated",
                    report.time,
                    actor,
                    ("model_version", model),
                    {
                        "monitor": report.schedule,
                        "feature": r.feature,
                        "metric": r.metric,
                        "value": r.value,
                        "threshold": r.threshold,
                        "breached": r.breached,
                        "baseline": baseline,
                        "labels": labels,
                    },
                )
            )
        for event in events:
            if event["id"] not in self._emitted:
                self._emitted.add(event["id"])
                yield event

    def _event(self, e: Fields) -> Iterator[dict[str, Any] | BadField]:
        kind = e.req_text("detail-type")
        if kind in SKIPPED_DETAIL_TYPES:
            return
        if kind not in SUPPORTED_DETAIL_TYPES:
            raise BadField(
                "detail-type",
                f"unsupported event `{kind}`",
                "supported: " + ", ".join(f"`{k}`" for k in SUPPORTED_DETAIL_TYPES),
            )
        envelope_time = e.time("time")
        assert envelope_time is not None
        region = e.text("region", required=False)
        detail = e.req_obj("detail")
        if kind == MODEL_PACKAGE:
            yield from self._model_package(detail, envelope_time)
        elif kind in (ENDPOINT, ENDPOINT_DEPLOYMENT):
            yield from self._endpoint(detail, envelope_time, region)
        elif kind == PIPELINE_STEP:
            yield from self._pipeline_step(detail, envelope_time)
        elif kind == TRAINING_JOB:
            yield from self._training_job(detail, envelope_time)
        elif kind == ALARM:
            yield from self._alarm(detail)
        # PIPELINE_EXECUTION: an execution as a whole is not a training run; its training
        # steps are (see the step events), so it adds nothing.

    # ------------------------------------------------------------------ model packages

    def _model_package(self, d: Fields, envelope_time: str) -> Iterator[dict[str, Any] | BadField]:
        arn = d.req_text("ModelPackageArn")
        group = d.text("ModelPackageGroupName", required=False)
        version = d.integer("ModelPackageVersion", required=False)
        if group is None or version is None:
            missing = "ModelPackageGroupName" if group is None else "ModelPackageVersion"
            raise BadField(
                d.field(missing),
                "an unversioned model package is not a model version",
                "register models in a model package group",
            )
        status = d.text("ModelPackageStatus", required=False)
        approval = d.text("ModelApprovalStatus", required=False)
        if approval not in (None, "Approved", "Rejected", "PendingManualApproval"):
            raise BadField(
                d.field("ModelApprovalStatus"),
                f"unknown approval status `{approval}`",
                "expected `Approved`, `Rejected` or `PendingManualApproval`",
            )
        if arn not in self._registered:
            if status in _NOT_A_VERSION:
                return
            yield self._registered_event(d, arn, group, version)
            self._registered.add(arn)
        if approval in ("Approved", "Rejected"):
            yield from self._approval(d, arn, approval, envelope_time)

    def _registered_event(self, d: Fields, arn: str, group: str, version: int) -> dict[str, Any]:
        created = d.time("CreationTime")
        assert created is not None
        meta = d.str_map("CustomerMetadataProperties")
        props = d.obj("MetadataProperties", required=False)
        labels = {"sagemaker.model_package_arn": arn}
        for key, label in (
            ("CommitId", "sagemaker.commit_id"),
            ("Repository", "sagemaker.repository"),
            ("GeneratedBy", "sagemaker.generated_by"),
            ("ProjectId", "sagemaker.project_id"),
        ):
            value = props.text(key, required=False) if props else None
            if value:
                labels[label] = value
        description = d.text("ModelPackageDescription", required=False)
        if description:
            labels["sagemaker.description"] = description
        model_data = None
        spec = d.obj("InferenceSpecification", required=False)
        containers = spec.objects("Containers", required=False) if spec else []
        if containers:
            first = containers[0]
            model_data = first.text("ModelDataUrl", required=False)
            for key, label in (
                ("Image", "sagemaker.image"),
                ("ImageDigest", "sagemaker.image_digest"),
                ("ModelDataUrl", "sagemaker.model_data_url"),
                ("ModelDataETag", "sagemaker.model_data_etag"),
            ):
                value = first.text(key, required=False)
                if value:
                    labels[label] = value
        generated_by = props.text("GeneratedBy", required=False) if props else None
        actor: dict[str, Any]
        creator = d.obj("CreatedBy", required=False)
        if creator is not None and _has_identity(creator):
            actor = _actor(self._identity(creator))
        elif generated_by:
            actor = {"id": generated_by}
        else:
            actor = dict(SAGEMAKER_ACTOR)
        return _event(
            event_id("sagemaker-registered", arn, created),
            "model.registered",
            created,
            actor,
            ("model_version", arn),
            {
                "name": group,
                "version": str(version),
                "training_run": meta.get(self.config.training_run_key)
                or self._training_run_of(arn, model_data, generated_by),
                "artifact_digest": meta.get(self.config.artifact_digest_key),
                "intended_use": meta.get(self.config.intended_use_key) or _intended_use(d),
                "labels": labels,
            },
        )

    def _training_run_of(
        self, package_arn: str, model_data: str | None, generated_by: str | None
    ) -> str | None:
        """The training job that produced the package: named by its model artifact path when
        that has SageMaker's `<job>/output/model.tar.gz` layout, else the only training step
        seen for the pipeline execution that generated the package."""
        seen = self._execution_runs.get(generated_by or "", [])
        derived = None
        match = _MODEL_DATA.search(model_data or "")
        arn = _ARN.match(package_arn)
        if match is not None and arn is not None:
            # SageMaker ARNs carry resource names in lower case.
            derived = (
                f"arn:{arn['partition']}:sagemaker:{arn['region']}:{arn['account']}:"
                f"training-job/{match['job'].lower()}"
            )
        if derived is not None and (not seen or derived in seen):
            return derived
        if len(seen) == 1:
            return seen[0]
        return None

    def _approval(
        self, d: Fields, arn: str, status: str, envelope_time: str
    ) -> Iterator[dict[str, Any] | BadField]:
        by = d.obj("LastModifiedBy", required=False)
        if by is None or not _has_identity(by):
            raise BadField(
                d.field("LastModifiedBy"),
                f"a `{status}` status without the user who set it cannot be recorded as a"
                " signature",
                "SageMaker fills LastModifiedBy when a Studio user or IAM identity updates the"
                " approval status",
            )
        who = self._identity(by)
        current, signers = self._signed.get(arn, ("", set()))
        if current == status and who.id in signers:
            # Someone who already signed the current status updates the package again (or the
            # change is re-delivered): not a new signature.
            return
        if current != status:
            signers = set()
        signers.add(who.id)
        self._signed[arn] = (status, signers)
        when = d.time("LastModifiedTime", required=False) or envelope_time
        labels = {"sagemaker.model_approval_status": status}
        for key_name, label in (
            ("UserProfileName", "sagemaker.user_profile"),
            ("DomainId", "sagemaker.domain_id"),
        ):
            value = by.text(key_name, required=False)
            if value:
                labels[label] = value
        iam = by.obj("IamIdentity", required=False)
        if iam is not None and iam.text("Arn", required=False):
            labels["sagemaker.iam_arn"] = iam.req_text("Arn")
        yield _event(
            event_id("sagemaker-approval", arn, status, who.id, when),
            "approval.recorded",
            when,
            _actor(who),
            ("model_version", arn),
            {
                "signer": who.id,
                "signer_name": who.name,
                "role": who.role or self.config.default_role,
                "meaning": "approved" if status == "Approved" else "rejected",
                "comment": d.text("ApprovalDescription", required=False) or None,
                "labels": labels,
            },
        )

    def _identity(self, user: Fields) -> Identity:
        """The configured identity for a `UserContext`, else one named by (in this order) the
        Studio user profile, the IAM source identity, IAM ARN, principal id or profile ARN."""
        iam = user.obj("IamIdentity", required=False)
        keys = [
            user.text("UserProfileName", required=False),
            iam.text("SourceIdentity", required=False) if iam else None,
            iam.text("Arn", required=False) if iam else None,
            iam.text("PrincipalId", required=False) if iam else None,
            user.text("UserProfileArn", required=False),
        ]
        for key in keys:
            if key and key in self.config.identities:
                return self.config.identities[key]
        first = next(k for k in keys if k)  # _has_identity checked there is one
        return Identity(id=first)

    # ------------------------------------------------------------------ endpoints

    def _endpoint(
        self, d: Fields, envelope_time: str, region: str | None
    ) -> Iterator[dict[str, Any] | BadField]:
        name = d.req_text("EndpointName")
        status = d.req_text("EndpointStatus")
        if status.replace("_", "").upper() != "INSERVICE":
            return  # creating, updating, rolling back…: nothing is serving the new model yet
        endpoint_arn = d.text("EndpointArn", required=False)
        config_name = d.text("EndpointConfigName", required=False)
        tags = d.str_map("Tags")
        info = self.config.endpoints.get(name)
        environment = tags.get(self.config.environment_tag) or (info.environment if info else None)
        if not environment:
            raise BadField(
                d.field("Tags"),
                f"endpoint `{name}` has no `{self.config.environment_tag}` tag and no configured"
                " environment",
                f'tag the endpoint, or add `"endpoints": {{"{name}": {{"environment": "..."}}}}`'
                " to policyengine-sagemaker.json",
            )
        model = self._model_for_endpoint(
            name, endpoint_arn, d.field("Tags"), tags, config_name, endpoint_event=True
        )
        arn = _ARN.match(endpoint_arn or "")
        target = {
            "environment": environment,
            "endpoint": name,
            "region": region or (arn["region"] if arn else None),
        }
        when = d.time("LastModifiedTime", required=False) or envelope_time
        labels = {}
        if endpoint_arn:
            labels["sagemaker.endpoint_arn"] = endpoint_arn
        if config_name:
            labels["sagemaker.endpoint_config"] = config_name
        self._deployed[name] = (config_name, model)
        yield _event(
            event_id("sagemaker-deployed", endpoint_arn or name, config_name, model, when),
            "model.deployed",
            when,
            dict(SAGEMAKER_ACTOR),
            ("model_version", model),
            {"target": target, "labels": labels},
        )

    def _model_for_endpoint(
        self,
        name: str,
        endpoint_arn: str | None,
        field: str,
        tags: dict[str, str] | None = None,
        config_name: str | None = None,
        *,
        endpoint_event: bool = False,
    ) -> str:
        """The model package an endpoint serves: its tag, then its endpoint config's mapping,
        then the endpoint's mapping, then what this source saw deployed there (for an endpoint
        event, only under the same endpoint config: a new config is a new deployment)."""
        info = self.config.endpoints.get(name)
        value = (
            (tags or {}).get(self.config.model_package_tag)
            or (self.config.endpoint_configs.get(config_name) if config_name else None)
            or (info.model_package if info else None)
        )
        if value:
            return _package_arn(value, endpoint_arn, field)
        if name in self._deployed:
            seen_config, model = self._deployed[name]
            if not endpoint_event or seen_config == config_name:
                return model
        raise BadField(
            field,
            f"cannot tell which model package endpoint `{name}` serves",
            f"tag the endpoint with `{self.config.model_package_tag}`, or map it under"
            " `endpoint_configs` or `endpoints` in policyengine-sagemaker.json",
        )

    # ------------------------------------------------------------------ training runs

    def _purpose(self, pipeline: str | None, tags: dict[str, str]) -> str | None:
        return (
            tags.get(self.config.purpose_tag)
            or (self.config.purposes.get(pipeline) if pipeline else None)
            or self.config.default_purpose
        )

    def _pipeline_step(self, d: Fields, envelope_time: str) -> Iterator[dict[str, Any] | BadField]:
        if d.text("stepType", required=False) != "Training":
            return
        status = d.req_text("currentStepStatus")
        metadata = d.req_obj("metadata")
        job = metadata.req_obj("trainingJob")
        run = job.req_text("arn")
        pipeline_arn = d.text("pipelineArn", required=False)
        execution = d.text("pipelineExecutionArn", required=False)
        pipeline = pipeline_arn.rsplit("/", 1)[-1] if pipeline_arn else None
        if execution:
            runs = self._execution_runs.setdefault(execution, [])
            if run not in runs:
                runs.append(run)
        labels = {"sagemaker.step_name": d.req_text("stepName")}
        if pipeline_arn:
            labels["sagemaker.pipeline_arn"] = pipeline_arn
        if execution:
            labels["sagemaker.pipeline_execution_arn"] = execution
        if d.has("cacheHitResult"):
            labels["sagemaker.cache_hit"] = "true"
        actor = {"id": pipeline_arn or SAGEMAKER_ACTOR["id"]}
        if pipeline:
            actor["name"] = pipeline
        if status in _RUN_STARTING or status in _RUN_OUTCOME:
            started = d.time("stepStartTime", required=False) or envelope_time
            if ("step", run) not in self._started:
                purpose = self._purpose(pipeline, {})
                self._started.add(("step", run))
                if purpose is None:
                    yield BadField(
                        d.field("pipelineArn"),
                        f"no declared purpose for the training runs of pipeline `{pipeline}`,"
                        " so the run's start cannot be recorded",
                        f'add `"purposes": {{"{pipeline}": "..."}}` (or `default_purpose`) to'
                        " policyengine-sagemaker.json",
                    )
                else:
                    yield _event(
                        event_id("sagemaker-step-started", run, started),
                        "run.started",
                        started,
                        actor,
                        ("training_run", run),
                        {
                            "name": labels["sagemaker.step_name"],
                            "purpose": purpose,
                            "labels": labels,
                        },
                    )
        if status in _RUN_OUTCOME:
            ended = d.time("stepEndTime", required=False) or envelope_time
            outcome = dict(labels)
            reason = d.text("failureReason", required=False)
            if reason:
                outcome["sagemaker.failure_reason"] = reason
            outcome["sagemaker.step_status"] = status
            yield _event(
                event_id("sagemaker-step-completed", run, status, ended),
                "run.completed",
                ended,
                actor,
                ("training_run", run),
                {"status": _RUN_OUTCOME[status], "labels": outcome},
            )

    def _training_job(self, d: Fields, envelope_time: str) -> Iterator[dict[str, Any] | BadField]:
        run = d.req_text("TrainingJobArn")
        status = d.req_text("TrainingJobStatus")
        tags = d.str_map("Tags")
        actor = {"id": d.text("RoleArn", required=False) or SAGEMAKER_ACTOR["id"]}
        algorithm = d.obj("AlgorithmSpecification", required=False)
        image = algorithm.text("TrainingImage", required=False) if algorithm else None
        params = d.str_map("HyperParameters")
        labels = {"sagemaker.training_job_name": d.text("TrainingJobName", required=False) or run}
        if status in _RUN_STARTING or status in _RUN_OUTCOME:
            started = (
                d.time("TrainingStartTime", required=False)
                or d.time("CreationTime", required=False)
                or envelope_time
            )
            if ("job", run) not in self._started:
                purpose = self._purpose(None, tags)
                self._started.add(("job", run))
                if purpose is None:
                    yield BadField(
                        d.field("Tags"),
                        f"training job `{labels['sagemaker.training_job_name']}` declares no"
                        " purpose, so its start cannot be recorded",
                        f"tag the job with `{self.config.purpose_tag}` or set `default_purpose`"
                        " in policyengine-sagemaker.json",
                    )
                else:
                    yield _event(
                        event_id("sagemaker-job-started", run, started),
                        "run.started",
                        started,
                        actor,
                        ("training_run", run),
                        {
                            "name": labels["sagemaker.training_job_name"],
                            "purpose": purpose,
                            "code_commit": tags.get(self.config.code_commit_tag),
                            "image": image,
                            "parameters": params,
                            "labels": labels,
                        },
                    )
        if status in _RUN_OUTCOME:
            ended = (
                d.time("TrainingEndTime", required=False)
                or d.time("LastModifiedTime", required=False)
                or envelope_time
            )
            metrics: dict[str, float] = {}
            for m in d.objects("FinalMetricDataList", required=False):
                value = m.number("Value")
                assert value is not None
                metrics[m.req_text("MetricName")] = value
            outcome = dict(labels)
            reason = d.text("FailureReason", required=False)
            if reason:
                outcome["sagemaker.failure_reason"] = reason
            yield _event(
                event_id("sagemaker-job-completed", run, status, ended),
                "run.completed",
                ended,
                actor,
                ("training_run", run),
                {"status": _RUN_OUTCOME[status], "metrics": metrics, "labels": outcome},
            )

    # ------------------------------------------------------------------ CloudWatch alarms

    def _alarm(self, d: Fields) -> Iterator[dict[str, Any] | BadField]:
        name = d.req_text("alarmName")
        state = d.req_obj("state")
        value = state.req_text("value")
        if value not in ("ALARM", "OK"):
            return  # INSUFFICIENT_DATA: nothing was evaluated
        config = d.obj("configuration", required=False)
        found = []
        for m in config.objects("metrics", required=False) if config else []:
            stat = m.obj("metricStat", required=False)
            metric = stat.obj("metric", required=False) if stat else None
            namespace = metric.text("namespace", required=False) if metric else None
            if metric and stat and namespace and _MONITOR_NAMESPACE.match(namespace):
                found.append((metric, stat))
        if not found:
            return  # not a Model Monitor alarm
        if len(found) > 1:
            raise BadField(
                d.field("configuration.metrics"),
                "the alarm combines several Model Monitor metrics; one drift result per alarm"
                " is needed",
                "alarm on each feature's metric separately",
            )
        metric, stat = found[0]
        metric_name = metric.req_text("name")
        dims = metric.str_map("dimensions")
        statistic = stat.text("stat", required=False)
        feature, drift_metric = _monitor_metric(metric_name, statistic, dims, metric.path)
        endpoint = dims.get("Endpoint") or dims.get("EndpointName")
        schedule = dims.get("MonitoringSchedule") or dims.get("ScheduleName")
        if endpoint is None:
            raise BadField(
                metric.field("dimensions"),
                "the metric has no `Endpoint` dimension, so no model version",
                "batch-transform monitoring is not mapped; monitor an endpoint",
            )
        model = self._model_for_endpoint(endpoint, None, metric.field("dimensions.Endpoint"))
        reason_raw = state.text("reasonData", required=False)
        if reason_raw is None:
            raise BadField(state.field("reasonData"), "required to read the value and threshold")
        try:
            reason = json.loads(reason_raw)
        except json.JSONDecodeError as exc:
            raise BadField(state.field("reasonData"), f"invalid JSON: {exc.msg}") from None
        if not isinstance(reason, dict):
            raise BadField(state.field("reasonData"), "expected a JSON object")
        r = Fields(reason, state.field("reasonData"))
        points = r.array("recentDatapoints")
        assert points is not None
        if not points or isinstance(points[-1], bool) or not isinstance(points[-1], int | float):
            raise BadField(r.field("recentDatapoints"), "expected at least one number")
        observed = float(points[-1])
        labels = {"sagemaker.metric_name": metric_name, "sagemaker.endpoint": endpoint}
        if schedule:
            labels["sagemaker.monitoring_schedule"] = schedule
        threshold = r.number("threshold", required=False)
        if threshold is None:
            uppers = r.array("recentUpperThresholds", required=False)
            if not uppers or not isinstance(uppers[-1], int | float):
                raise BadField(r.field("threshold"), "required field is missing")
            threshold = float(uppers[-1])
            lowers = r.array("recentLowerThresholds", required=False)
            if lowers and isinstance(lowers[-1], int | float):
                labels["sagemaker.lower_threshold"] = repr(float(lowers[-1]))
        when = state.time("timestamp")
        assert when is not None
        baseline = self.config.baselines.get(name) or (
            self.config.baselines.get(schedule) if schedule else None
        )
        yield _event(
            event_id("sagemaker-alarm", name, value, when),
            "drift.evaluated",
            when,
            dict(CLOUDWATCH_ACTOR),
            ("model_version", model),
            {
                "monitor": name,
                "feature": feature,
                "metric": drift_metric,
                "value": observed,
                "threshold": threshold,
                "breached": value == "ALARM",
                "baseline": baseline,
                "labels": labels,
            },
        )


def _error(err: BadField, location: str) -> AdapterError:
    return AdapterError(err.message, location=location, field=err.field or None, hint=err.hint)


def _monitor_metric(
    name: str, stat: str | None, dims: dict[str, str], path: str
) -> tuple[str, str]:
    """(feature, metric) from a Model Monitor metric name, as documented for the pre-built
    container: `feature_baseline_drift_<f>`, `feature_non_null_<f>`, `feature_data_<f>`;
    model-quality and bias metrics are about the prediction unless a dimension names one."""
    for prefix, metric in (
        ("feature_baseline_drift_", "baseline_drift"),
        ("feature_non_null_", "completeness"),
        ("feature_data_", f"data_{(stat or 'value').lower()}"),
    ):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :], metric
    feature = dims.get("Feature") or dims.get("Facet") or "prediction"
    if not name:
        raise BadField(f"{path}.name", "must not be empty")
    return feature, name


def _has_identity(user: Fields) -> bool:
    iam = user.raw("IamIdentity")
    iam_keys = ("Arn", "SourceIdentity", "PrincipalId")
    return bool(
        user.raw("UserProfileName")
        or user.raw("UserProfileArn")
        or (isinstance(iam, dict) and any(iam.get(k) for k in iam_keys))
    )


def _actor(who: Identity) -> dict[str, Any]:
    actor: dict[str, Any] = {"id": who.id}
    if who.name:
        actor["name"] = who.name
    if who.roles:
        actor["roles"] = list(who.roles)
    return actor


def _package_arn(value: str, endpoint_arn: str | None, field: str) -> str:
    """A model package ARN from a tag or mapping that holds an ARN or `group/version`."""
    if value.startswith("arn:"):
        return value
    arn = _ARN.match(endpoint_arn or "")
    if arn is None or not re.fullmatch(r"[^/]+/\d+", value):
        raise BadField(
            field,
            f"`{value}` is not a model package ARN",
            "use the model package ARN (or `group/version` on an endpoint whose ARN is known)",
        )
    return (
        f"arn:{arn['partition']}:sagemaker:{arn['region']}:{arn['account']}:"
        f"model-package/{value.lower()}"
    )


def _intended_use(d: Fields) -> str | None:
    """`intended_uses.intended_uses` of the package's model card content, when present."""
    card = d.obj("ModelCard", required=False)
    content = card.text("ModelCardContent", required=False) if card else None
    if not content:
        return None
    try:
        parsed = json.loads(content)
    except json.JSONDecodeError:
        raise BadField(card.field("ModelCardContent") if card else "", "invalid JSON") from None
    uses = parsed.get("intended_uses") if isinstance(parsed, dict) else None
    text = uses.get("intended_uses") if isinstance(uses, dict) else None
    return text if isinstance(text, str) and text.strip() else None


def _event(
    ident: str,
    kind: str,
    time: str,
    actor: dict[str, Any],
    subject: tuple[str, str],
    attributes: dict[str, Any],
) -> dict[str, Any]:
    attrs = {k: v for k, v in attributes.items() if v is not None}
    if not attrs.get("labels"):
        attrs.pop("labels", None)
    return {
        "id": ident,
        "type": kind,
        "time": time,
        "actor": actor,
        "subject": {"kind": subject[0], "id": subject[1]},
        "attributes": attrs,
    }
