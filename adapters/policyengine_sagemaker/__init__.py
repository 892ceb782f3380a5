"""policyengine adapter for Amazon SageMaker (see README.md in this folder).

Reads SageMaker's EventBridge events — Model Package State Change, Endpoint (Deployment) State
Change, pipeline training steps, Training Job State Change — and CloudWatch Alarm State Change
events for Model Monitor metrics, from their documented JSON shapes, plus Model Monitor's
`statistics.json` / `constraints.json` / `constraint_violations.json`. Only the optional model
registry poller (`sagemaker-registry:GROUP` sources, boto3 from `policyengine[sagemaker]`,
imported lazily) calls AWS.
"""

from policyengine.adapter_kit import normalise_time

from ._adapter import SageMakerAdapter
from ._config import CONFIG_ENV, CONFIG_FILE, EndpointInfo, Identity, SageMakerConfig
from ._eventbridge import SKIPPED_DETAIL_TYPES, SUPPORTED_DETAIL_TYPES, Translator
from ._monitor import (
    Baseline,
    BaselineFeature,
    DriftResult,
    MonitorReport,
    Violation,
    drift_results,
    read_baseline,
    read_report,
)
from ._registry import (
    REGISTRY_SCHEME,
    RegistrySource,
    as_eventbridge,
    is_registry_source,
    poll_registry,
    registry_events,
    sagemaker_client,
)

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILE",
    "REGISTRY_SCHEME",
    "SKIPPED_DETAIL_TYPES",
    "SUPPORTED_DETAIL_TYPES",
    "Baseline",
    "BaselineFeature",
    "DriftResult",
    "EndpointInfo",
    "Identity",
    "MonitorReport",
    "RegistrySource",
    "SageMakerAdapter",
    "SageMakerConfig",
    "Translator",
    "Violation",
    "as_eventbridge",
    "drift_results",
    "is_registry_source",
    "normalise_time",
    "poll_registry",
    "read_baseline",
    "read_report",
    "registry_events",
    "sagemaker_client",
]
