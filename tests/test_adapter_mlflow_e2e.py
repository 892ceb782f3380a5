"""End to end against a real MLflow tracking server (SQLite backend, started once here):
runs, dataset inputs, model versions, approval tags and aliases written with the real
client → `policyengine ingest --adapter mlflow URI` → decisions, a signed log, lineage traced
from the model version back to its datasets; incremental sync; webhooks delivered by the
server itself and verified; the MLflow half of `examples/stacks/`; bad sources."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

mlflow = pytest.importorskip("mlflow")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from click.testing import CliRunner, Result  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from policyengine_mlflow import (  # noqa: E402
    MLflowAdapter,
    WebhookError,
    verify_webhook,
    webhook_events,
)

from policyengine.adapter import AdapterError, Located  # noqa: E402
from policyengine.cli.main import cli  # noqa: E402
from policyengine.lineage import SQLiteLineageStore, affected_by, trace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The rule files (not their `*_test.policy` files, which the policy tests run).
LIBRARY = [
    f"--policies={ROOT / 'policies' / f}.policy"
    for f in ("common", "privacy", "audit", "monitoring", "oversight")
]
OVERSIGHT = [
    "-p",
    str(ROOT / "policies" / "common.policy"),
    "-p",
    str(ROOT / "policies" / "oversight.policy"),
]
sys.path.insert(0, str(ROOT / "examples" / "stacks" / "mlflow"))
import scenario as stack  # noqa: E402

SECRET = "whsec-policyengine-test"
EXPERIMENT = "cardio-risk-train"
MODEL = "cardio-risk"
PURPOSE = "cardiac-risk-research"
AUTHOR = "priya.raman@helix.example"
COMMIT = "4be1d07c9a3e5f8b2d6a1c0e7f9b3d5a8c2e4f60"
IMAGE = "registry.example.com/train@sha256:" + "77aa01" * 10 + "77aa"
EHR_DIGEST = "sha256:" + "9f2c4e" * 10 + "9f2c"
HOLDOUT_DIGEST = "sha256:" + "ab12cd" * 10 + "ab12"
ARTIFACT = "sha256:" + "c0ffee" * 10 + "c0ff"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deliveries(http.server.BaseHTTPRequestHandler):
    """Records what MLflow POSTs: (headers, raw body)."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Deliveries.received.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Deliveries)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mlflow"
    server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: str) -> Iterator[str]:
    """ONE real `mlflow server` for this module; webhooks may call the local receiver."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = dict(
        os.environ,
        MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
        MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true",
        MLFLOW_WEBHOOK_CACHE_TTL="1",
    )
    log = (root / "server.log").open("w")
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        "mlflow server did not start:\n" + (root / "server.log").read_text()
                    )
                time.sleep(0.2)
        MlflowClient(url).create_webhook(
            "policyengine",
            receiver,
            events=[
                "model_version.created",
                "model_version_tag.set",
                "model_version_alias.created",
            ],
            secret=SECRET,
        )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def approval(signer: str, name: str, comment: str, meaning: str = "approved") -> str:
    return json.dumps(
        {
            "signer": signer,
            "signer_name": name,
            "role": "qa",
            "meaning": meaning,
            "time": datetime.now(UTC).isoformat(),
            "comment": comment,
        }
    )


@pytest.fixture(scope="module")
def scenario(server: str) -> dict[str, str]:
    """A governed training run on de-identified PHI, a misuse run, a registered version
    with two QA approvals, promoted with the `production` alias."""
    mlflow.set_tracking_uri(server)
    client = MlflowClient(server)
    exp = client.create_experiment(EXPERIMENT, tags={"policyengine.purpose": PURPOSE})
    rng = np.random.default_rng(7)
    ehr = pd.DataFrame({"age": rng.integers(30, 80, 40), "ldl": rng.normal(3.1, 0.6, 40)})
    ehr_ds = mlflow.data.from_pandas(
        ehr, source="s3://clinical-lake/ehr/cardio/2026q1.parquet", name="ehr-cardiology"
    )
    holdout = mlflow.data.from_numpy(
        rng.normal(size=(10, 3)),
        name="cardio-holdout",
        source="s3://clinical-lake/holdout/2026q1.npy",
    )
    governance = {
        "policyengine.classification": "PHI",
        "policyengine.deidentified": "true",
        "policyengine.deidentification_method": "hipaa-safe-harbor",
        "policyengine.allowed_purposes": PURPOSE,
        "policyengine.region": "eu-west-1",
        "policyengine.owner": "alice@example.com",
        "policyengine.digest": EHR_DIGEST,
    }
    tags = {
        "mlflow.user": AUTHOR,
        "mlflow.source.git.commit": COMMIT,
        "policyengine.image": IMAGE,
        "team": "cardio",
    }
    with mlflow.start_run(experiment_id=exp, run_name="train-gbm", tags=tags) as train:
        mlflow.log_input(ehr_ds, context="training", tags=governance)
        mlflow.log_input(
            holdout,
            context="evaluation",
            tags={
                "policyengine.classification": "internal",
                "policyengine.allowed_purposes": PURPOSE,
                "policyengine.digest": HOLDOUT_DIGEST,
            },
        )
        mlflow.log_params({"max_depth": 6, "learning_rate": 0.05})
        mlflow.log_metric("auroc", 0.87)
    bad_tags = {"mlflow.user": "mallory@example.com", "policyengine.purpose": "marketing"}
    with mlflow.start_run(experiment_id=exp, run_name="upsell", tags=bad_tags) as bad:
        mlflow.log_input(ehr_ds, context="training")  # untagged re-use keeps the governance
    client.create_registered_model(MODEL)
    mv = client.create_model_version(
        MODEL,
        source=f"runs:/{train.info.run_id}/model",
        run_id=train.info.run_id,
        tags={
            "policyengine.artifact_digest": ARTIFACT,
            "policyengine.intended_use": "decision support for cardiology triage; not diagnosis",
        },
    )
    for slug, signer, name in (
        ("elena", "elena.varga@helix.example", "Elena Varga"),
        ("grace", "grace.liu@helix.example", "Grace Liu"),
    ):
        client.set_model_version_tag(
            MODEL,
            mv.version,
            f"policyengine.approval.{slug}",
            approval(signer, name, "validation report VR-0311 reviewed"),
        )
    client.set_registered_model_alias(MODEL, "production", mv.version)
    return {
        "train": train.info.run_id,
        "bad": bad.info.run_id,
        "version": str(mv.version),
        "ehr": f"ehr-cardiology@{ehr_ds.digest}",
        "holdout": f"cardio-holdout@{holdout.digest}",
    }


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def decisions(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def failed_rules(decision: dict[str, Any]) -> set[str]:
    return {r["rule"] for r in decision["results"] if r["status"] in ("fail", "error")}


def test_registry_is_decided_logged_and_traced(
    server: str, scenario: dict[str, str], tmp_path: Path
) -> None:
    key = tmp_path / "log.key"
    assert run("keys", "generate", "--out", str(key), "--name", "example.com/mlflow").exit_code == 0
    store, log, state = tmp_path / "lineage.db", tmp_path / "decisions.db", tmp_path / "sync.json"
    source = f"{server}?experiment={EXPERIMENT}&state={state}"
    args = [
        "ingest",
        "--adapter",
        "mlflow",
        source,
        *LIBRARY,
        "--store",
        str(store),
        "--format",
        "json",
    ]
    result = run(*args, "--log", str(log), "--key", str(key))
    assert result.exit_code == 1, result.stderr  # the misuse run is denied
    assert "could not be ingested" not in result.stderr
    decided = decisions(result)
    version = f"models:/{MODEL}/{scenario['version']}"
    summary = [(d["event"]["type"], d["event"]["subject"]["id"], d["outcome"]) for d in decided]
    assert summary == [
        ("dataset.registered", scenario["ehr"], "allow"),
        ("dataset.registered", scenario["holdout"], "allow"),
        ("run.started", scenario["train"], "allow"),
        ("run.completed", scenario["train"], "allow"),
        ("run.started", scenario["bad"], "deny"),
        ("run.completed", scenario["bad"], "allow"),
        ("model.registered", version, "allow"),
        ("approval.recorded", version, "allow"),
        ("approval.recorded", version, "allow"),
        ("model.promotion_requested", version, "allow"),
    ], [(d["event"]["time"], failed_rules(d)) for d in decided]
    assert "gxp.privacy.training_purpose_allowed" in failed_rules(decided[4])
    assert run("log", "verify", "--log", str(log)).exit_code == 0

    with SQLiteLineageStore(store) as lineage:
        keys = {str(n.key) for n in trace(lineage, version, "upstream").nodes}
        assert {
            f"model_version:{version}",
            f"training_run:{scenario['train']}",
            f"dataset:{scenario['ehr']}",
            f"dataset:{scenario['holdout']}",
            f"code_commit:{COMMIT}",
        } <= keys
        hit = affected_by(lineage, f"dataset:{scenario['ehr']}")
        assert {n.key.id for n in hit.training_runs} == {scenario["train"], scenario["bad"]}
        assert {n.key.id for n in hit.model_versions} == {version}
    text = run("lineage", "trace", version, "--store", str(store))
    assert text.exit_code == 0 and f"dataset:{scenario['ehr']}" in text.stdout

    # Incremental: nothing new → nothing yielded; a new approval → only that event.
    again = run(*args)
    assert again.exit_code == 0, again.stderr
    assert again.stdout == ""
    MlflowClient(server).set_model_version_tag(
        MODEL,
        scenario["version"],
        "policyengine.approval.omar",
        approval("omar.haddad@helix.example", "Omar Haddad", "not fit for triage", "rejected"),
    )
    newer = run(*args)
    # Governance tags are not labels, so the registration itself is unchanged.
    assert [d["event"]["type"] for d in decisions(newer)] == ["approval.recorded"]
    assert json.loads(state.read_text())["tracking_uri"] == server


def test_same_registry_gives_same_event_ids(server: str, scenario: dict[str, str]) -> None:
    fixed = datetime(2026, 12, 1, tzinfo=UTC)
    source = f"{server}?experiment={EXPERIMENT}"
    first = [i.event for i in MLflowAdapter(lambda: fixed).events(source) if isinstance(i, Located)]
    second = [
        i.event for i in MLflowAdapter(lambda: fixed).events(source) if isinstance(i, Located)
    ]
    assert first == second and len(first) >= 10
    assert len({e["id"] for e in first}) == len(first)
    start = next(
        e for e in first if e["type"] == "run.started" and e["subject"]["id"] == scenario["train"]
    )
    assert start["actor"] == {"id": AUTHOR}
    attrs = start["attributes"]
    assert attrs["purpose"] == PURPOSE  # from the experiment's tag
    assert attrs["code_commit"] == COMMIT and attrs["image"] == IMAGE
    assert attrs["parameters"] == {"max_depth": "6", "learning_rate": "0.05"}
    assert attrs["inputs"] == [scenario["ehr"], scenario["holdout"]]
    assert attrs["labels"]["team"] == "cardio"
    assert attrs["labels"][f"mlflow.context.{scenario['ehr']}"] == "training"
    ehr = next(e for e in first if e["subject"]["id"] == scenario["ehr"])["attributes"]
    assert ehr["digest"] == EHR_DIGEST and ehr["classification"] == "PHI"
    assert ehr["row_count"] == 40 and ehr["uri"].startswith("s3://clinical-lake/ehr/")
    assert ehr["labels"]["mlflow.digest"] == scenario["ehr"].split("@")[1]
    holdout = next(e for e in first if e["subject"]["id"] == scenario["holdout"])["attributes"]
    assert holdout["digest"] == HOLDOUT_DIGEST  # MLflow's own is kept as a label only
    assert holdout["labels"]["mlflow.digest"] == scenario["holdout"].split("@")[1]
    registered = next(e for e in first if e["type"] == "model.registered")
    assert registered["actor"] == {"id": AUTHOR}  # the training run's user
    assert registered["attributes"]["training_run"] == scenario["train"]
    assert registered["attributes"]["artifact_digest"] == ARTIFACT
    promotion = first[-1]
    assert promotion["type"] == "model.promotion_requested"
    assert promotion["attributes"] == {
        "to_stage": "production",
        "labels": {"mlflow.alias": "production"},
    }
    assert promotion["time"] == "2026-12-01T00:00:00Z"


def test_webhooks_from_the_real_server_verify_and_translate(
    server: str, scenario: dict[str, str]
) -> None:
    deadline = time.monotonic() + 20
    while len(Deliveries.received) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    kinds: list[str] = []
    events: list[dict[str, Any]] = []
    for headers, body in Deliveries.received:
        payload = verify_webhook(body, headers, SECRET)
        kinds.append(f"{payload['entity']}.{payload['action']}")
        events.extend(webhook_events(payload))
    assert kinds[:4] == [
        "model_version.created",
        "model_version_tag.set",
        "model_version_tag.set",
        "model_version_alias.created",
    ]
    assert [e["type"] for e in events[:4]] == [
        "model.registered",
        "approval.recorded",
        "approval.recorded",
        "model.promotion_requested",
    ]
    polled = [
        i.event for i in MLflowAdapter().events(f"{server}?model={MODEL}") if isinstance(i, Located)
    ]
    polled_ids = {e["id"] for e in polled}
    # Approvals and the alias translate to the same ids whichever way they arrive.
    assert events[1]["id"] in polled_ids and events[2]["id"] in polled_ids
    assert events[3]["id"] in polled_ids
    headers, body = Deliveries.received[0]
    with pytest.raises(WebhookError, match="signature does not match"):
        verify_webhook(body.replace(b"cardio", b"CARDIO"), headers, SECRET)
    with pytest.raises(WebhookError, match="signature does not match"):
        verify_webhook(body, headers, "another-secret")
    with pytest.raises(WebhookError, match="more than 300 s"):
        verify_webhook(body, headers, SECRET, now=time.time() + 3600)


def test_stack_example_promotes_with_two_approvals_only(server: str) -> None:
    version = stack.record(server)
    assert version == "3"
    source = f"{server}?model={stack.MODEL}"
    result = run("ingest", "-a", "mlflow", source, *OVERSIGHT, "--format", "json")
    assert result.exit_code == 0, result.stderr
    decided = decisions(result)
    assert [(d["event"]["type"], d["outcome"]) for d in decided] == [
        ("model.registered", "allow"),
        ("approval.recorded", "allow"),
        ("approval.recorded", "allow"),
        ("model.promotion_requested", "allow"),
    ]
    assert decided[0]["event"]["subject"]["id"] == "models:/hepatox-screen/3"
    # Counter-check: without Grace Liu's sign-off the promotion waits for review, as the
    # SageMaker deployment does (examples/stacks/README.md).
    MlflowClient(server).delete_model_version_tag(
        stack.MODEL, version, "policyengine.approval.grace-liu"
    )
    counter = run("ingest", "-a", "mlflow", source, *OVERSIGHT, "--format", "json")
    assert counter.exit_code == 1
    waiting = decisions(counter)[-1]
    assert waiting["outcome"] == "review_required"
    assert "gxp.oversight.production_promotion_two_person" in failed_rules(waiting)


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        ("?experiment=no-such-experiment", "unknown experiment `no-such-experiment`"),
        ("?model=no-such-model", "unknown registered model `no-such-model`"),
        ("?experimnt=x", "unknown option `experimnt`"),
    ],
)
def test_bad_sources_fail_clearly(server: str, suffix: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["ingest", "-a", "mlflow", server + suffix, *LIBRARY])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_bad_approval_tags_are_reported_and_the_rest_read(server: str) -> None:
    client = MlflowClient(server)
    client.create_registered_model("broken-approvals")
    mv = client.create_model_version("broken-approvals", source="s3://bucket/model")
    client.set_model_version_tag(
        "broken-approvals",
        mv.version,
        "policyengine.approval.x",
        json.dumps({"signer": "a@example.com", "role": "qa"}),
    )
    items = list(MLflowAdapter().events(f"{server}?model=broken-approvals"))
    errors = [i for i in items if isinstance(i, AdapterError)]
    assert [e.render() for e in errors] == [
        "model version broken-approvals/1: `tags.policyengine.approval.x.time`: "
        "required field is missing"
    ]
    assert [i.event["type"] for i in items if isinstance(i, Located)] == ["model.registered"]
