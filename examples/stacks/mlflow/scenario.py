"""Record the release scenario of ../README.md in an MLflow model registry.

    python examples/stacks/mlflow/scenario.py http://127.0.0.1:5000

writes what the people of the scenario do in MLflow: Priya Raman registers version 3 of
`hepatox-screen` (versions 1 and 2 were retired earlier), Elena Varga and Grace Liu record
their QA sign-offs as approval tags on the version (written by the team's signing tool; MLflow
itself has no signatures), and the version is promoted by setting the `production` alias.
`--without-second-approval` leaves Grace Liu's sign-off out (the counter-check). Any tracking
URI works, e.g. `sqlite:///mlflow.db` without a server.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from mlflow import MlflowClient

MODEL = "hepatox-screen"
AUTHOR = "priya.raman@helix.example"
DIGEST = "sha256:c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
APPROVALS = [
    (
        "elena-varga",
        "elena.varga@helix.example",
        "Elena Varga",
        "validation report VR-0311 reviewed",
    ),
    ("grace-liu", "grace.liu@helix.example", "Grace Liu", "second QA sign-off"),
]


def record(uri: str, *, second_approval: bool = True) -> str:
    """Record the scenario; returns the version number (`3`)."""
    client = MlflowClient(tracking_uri=uri)
    client.create_registered_model(MODEL, description="XGBoost hepatotoxicity screen")
    for _ in range(2):  # earlier versions, since retired
        old = client.create_model_version(MODEL, source="s3://helix-ml-artifacts/retired")
        client.delete_model_version(MODEL, old.version)
    version = client.create_model_version(
        MODEL,
        source="s3://helix-ml-artifacts/hepatox-screen/3/model",
        description="XGBoost hepatotoxicity screen",
        tags={
            "policyengine.created_by": AUTHOR,
            "policyengine.artifact_digest": DIGEST,
            "policyengine.intended_use": "hepatotoxicity screening of candidate compounds",
        },
    ).version
    for slug, signer, name, comment in APPROVALS[: 2 if second_approval else 1]:
        approval = {
            "signer": signer,
            "signer_name": name,
            "role": "qa",
            "meaning": "approved",
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "comment": comment,
        }
        client.set_model_version_tag(
            MODEL, version, f"policyengine.approval.{slug}", json.dumps(approval)
        )
    client.set_registered_model_alias(MODEL, "production", version)
    return str(version)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tracking_uri", help="e.g. http://127.0.0.1:5000 or sqlite:///mlflow.db")
    parser.add_argument("--without-second-approval", action="store_true")
    args = parser.parse_args()
    version = record(args.tracking_uri, second_approval=not args.without_second_approval)
    print(f"recorded {MODEL} version {version} in {args.tracking_uri}")


if __name__ == "__main__":
    main()
