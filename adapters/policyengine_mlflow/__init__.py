"""policyengine adapter for MLflow (see README.md in this folder).

Reads an MLflow tracking server or store through `mlflow.tracking.MlflowClient` — runs with
their dataset inputs (`mlflow.log_input`), registered model versions, approval tags, aliases
and legacy stages — and translates them into canonical events (`MLflowAdapter`,
`policyengine ingest --adapter mlflow URI`), incrementally with a sync state file. MLflow's
model-registry webhooks are verified (`verify_webhook`, HMAC-SHA256 with a timestamp
tolerance) and translated (`webhook_events`) by `policyengine_mlflow.webhooks`.

mlflow itself (the `mlflow` extra) is imported only when a source is read.
"""

from ._adapter import STATE_VERSION, MLflowAdapter, SyncState
from ._source import OPTIONS, Source
from ._translate import (
    APPROVAL_TAG_PREFIX,
    DATASET_TAGS,
    SERVICE_ACTOR,
    Translated,
    Translator,
    dataset_id,
    model_version_id,
)
from .webhooks import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookError,
    sign_webhook,
    verify_webhook,
    webhook_events,
)

__all__ = [
    "APPROVAL_TAG_PREFIX",
    "DATASET_TAGS",
    "DELIVERY_ID_HEADER",
    "OPTIONS",
    "SERVICE_ACTOR",
    "SIGNATURE_HEADER",
    "STATE_VERSION",
    "TIMESTAMP_HEADER",
    "MLflowAdapter",
    "Source",
    "SyncState",
    "Translated",
    "Translator",
    "WebhookError",
    "dataset_id",
    "model_version_id",
    "sign_webhook",
    "verify_webhook",
    "webhook_events",
]
