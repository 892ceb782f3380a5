"""Determinism: a decision depends only on the bundle, the event, the state and the clock.

Decisions are audit evidence that is hashed and signed, so "the same inputs give the same
bytes" is checked literally: repeated replays in one process, replays in fresh processes
with different `PYTHONHASHSEED` (string hashing, hence Python set order, changes), bundles
loaded from different checkout locations and with sources discovered in different orders,
and explanations whose values come from iterating sets and maps.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from policyengine import Engine, compile_sources, load_bundle, read_jsonl
from policyengine.compiler.bundle import Bundle
from policyengine.events import MemoryStateStore, parse_event

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
BIOTECH = ROOT / "examples" / "biotech.jsonl"

# Rules whose results and explanations come from iterating sets and maps: with Python's
# own (hash) order the witnesses, messages and values would change with PYTHONHASHSEED.
SET_POLICY = """\
package det.sets

const ROLES = {"zeta", "alpha", "mid", "qa", "beta", "gamma", "omega"}
const REGIONS = {"eu-west-1", "us-east-1", "ap-south-1", "eu-central-1"}

rule every_role_held {
  layer oversight
  enforce advisory
  on *
  require all(r in ROLES: r in event.actor.roles)
  require none(r in ROLES where r in event.actor.roles: starts_with(r, "q"))
  message "missing {[r for r in ROLES where r not in event.actor.roles]}; all {ROLES}"
}

rule labels_checked {
  layer audit
  enforce advisory
  on *
  require any(k in event.labels: k == "zzz") else "no zzz label"
  require count(distinct v for v in values(event.labels)) < 2
  message "keys {keys(event.labels)} values {values(event.labels)} r{distinct(event.actor.roles)}"
}

rule region_allowed {
  layer privacy
  enforce soft
  override by "qa_lead"
  on model.deploy_requested, model.deployed
  require all(r in REGIONS: r == (event.target.region ?? "none"))
  require event.target.region in REGIONS
}
"""

_ROLE_ORDERS = (["qa", "alpha"], ["alpha", "qa"], ["zeta", "mid", "beta", "qa", "gamma"], [])
_LABEL_ORDERS = ({"b": "1", "a": "2", "c": "1"}, {"c": "1", "a": "2", "b": "1"}, {})


def set_events() -> list[dict[str, Any]]:
    """Raw events whose list and map orders vary; iteration must not depend on them."""
    out: list[dict[str, Any]] = []
    n = 0
    for roles in _ROLE_ORDERS:
        for labels in _LABEL_ORDERS:
            n += 1
            kind, etype, attrs = (
                ("model_version", "model.deploy_requested", {"target": {"environment": "prod"}})
                if n % 2
                else ("dataset", "dataset.accessed", {"purpose": "qc"})
            )
            if n % 3 == 0 and kind == "model_version":
                attrs["target"]["region"] = "eu-west-1"
            out.append(
                {
                    "id": f"evt-{n}",
                    "type": etype,
                    "time": f"2026-03-01T{n:02d}:00:00Z",
                    "actor": {"id": "u1", "roles": roles},
                    "subject": {"kind": kind, "id": f"{kind[:2]}-1"},
                    "attributes": {**attrs, "labels": labels},
                }
            )
    return out


def replay(bundle: Bundle, events: Iterable[dict[str, Any]]) -> list[bytes]:
    engine = Engine(bundle)
    return [engine.evaluate(e, validated=True).to_json() for e in events]


def biotech_events() -> list[dict[str, Any]]:
    with BIOTECH.open(encoding="utf-8") as f:
        parsed = [e for _, e in read_jsonl(f)]
    assert all(isinstance(e, dict) for e in parsed)
    return parsed  # type: ignore[return-value]


@pytest.fixture(scope="module")
def set_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sets")
    (d / "sets.policy").write_text(SET_POLICY, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    f = tmp_path_factory.mktemp("events") / "sets.jsonl"
    f.write_text("".join(json.dumps(e) + "\n" for e in set_events()), encoding="utf-8")
    return f


# ---------------------------------------------------------------- within one process


def test_repeated_replays_are_byte_identical() -> None:
    events = biotech_events()
    bundle = load_bundle(POLICIES)
    first = replay(bundle, events)
    assert first == replay(bundle, events)  # same bundle object, fresh state
    assert first == replay(load_bundle(POLICIES), events)  # recompiled
    outcomes = {json.loads(d)["outcome"] for d in first}
    assert {"allow", "deny"} <= outcomes  # the replay exercises failing rules too


def test_set_and_map_iteration_is_by_value_not_by_input_order(set_dir: Path) -> None:
    bundle = load_bundle(set_dir)
    decisions = [json.loads(d) for d in replay(bundle, [parse_event(e) for e in set_events()])]
    by_rule = {(d["event"]["id"], r["rule"]): r for d in decisions for r in d["results"]}
    # evt-1: roles ["qa", "alpha"]; the first role of ROLES (sorted) not held is "beta".
    roles = by_rule[("evt-1", "det.sets.every_role_held")]
    assert roles["requirements"][0]["values"][-1] == {"expr": "r", "value": "beta"}
    assert roles["message"].startswith("missing [beta, gamma, mid, omega, zeta]; ")
    assert roles["message"].endswith("all [alpha, beta, gamma, mid, omega, qa, zeta]")
    # `none` reports the first held role starting with "q".
    assert roles["requirements"][1]["values"][-1] == {"expr": "r", "value": "qa"}
    # Maps iterate by key: the same labels inserted in another order give the same message.
    for a, b in (("evt-1", "evt-2"), ("evt-4", "evt-5")):
        ma = by_rule[(a, "det.sets.labels_checked")]["message"]
        mb = by_rule[(b, "det.sets.labels_checked")]["message"]
        assert ma.split(" r[")[0] == mb.split(" r[")[0]
    assert by_rule[("evt-1", "det.sets.labels_checked")]["message"].startswith(
        "keys [a, b, c] values [2, 1, 1]"
    )
    # `distinct` keeps first occurrences, in list order (the list's order is data).
    assert by_rule[("evt-7", "det.sets.labels_checked")]["message"].endswith(
        "r[zeta, mid, beta, qa, gamma]"
    )
    # `all` over a set of regions: the witness is the smallest region that differs.
    region = by_rule[("evt-1", "det.sets.region_allowed")]
    assert region["requirements"][0]["values"][-1] == {"expr": "r", "value": "ap-south-1"}


def test_source_order_does_not_change_digest_or_decisions() -> None:
    sources = {
        p.relative_to(POLICIES).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(POLICIES.glob("*.policy"))
    }
    forward = compile_sources(sources)
    backward = compile_sources(dict(reversed(list(sources.items()))))
    assert forward.digest == backward.digest
    assert list(forward.rules) == list(backward.rules)
    for event_type in forward.index:
        assert forward.rules_for(event_type) == backward.rules_for(event_type)
    events = biotech_events()
    assert replay(forward, events) == replay(backward, events)


def test_digest_is_independent_of_checkout_location(tmp_path: Path) -> None:
    here = load_bundle(POLICIES).digest
    for where in (tmp_path / "a", tmp_path / "deeper" / "checkout" / "policies"):
        shutil.copytree(POLICIES, where)
        assert load_bundle(where).digest == here
        assert load_bundle(str(where) + os.sep).digest == here
    # The digest names the text: one changed byte changes it.
    changed = tmp_path / "changed"
    shutil.copytree(POLICIES, changed)
    common = changed / "common.policy"
    common.write_text(common.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert load_bundle(changed).digest != here


def test_digest_is_independent_of_the_order_paths_are_given() -> None:
    files = sorted(POLICIES.glob("*.policy"))
    assert load_bundle(*files).digest == load_bundle(*reversed(files)).digest


def test_digest_of_several_paths_is_independent_of_checkout_location(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "policies", tmp_path / "b" / "x" / "policies"
    shutil.copytree(POLICIES, a)
    shutil.copytree(POLICIES, b)
    assert (
        load_bundle(*sorted(a.glob("*.policy"))).digest
        == load_bundle(*sorted(b.glob("*.policy"))).digest
    )


def test_bundle_evaluate_does_not_touch_state() -> None:
    """`Bundle.evaluate` only decides; evaluating twice against one store is idempotent."""
    bundle = load_bundle(POLICIES)
    store = MemoryStateStore()
    events = biotech_events()[:10]
    first = [bundle.evaluate(e, store).to_json() for e in events]
    assert len(store) == 0
    assert first == [bundle.evaluate(e, store).to_json() for e in events]


# ---------------------------------------------------------------- across processes

_SCRIPT = textwrap.dedent(
    """
    import hashlib, sys
    from policyengine import Engine, load_bundle, read_jsonl

    digest = hashlib.sha256()
    for policies, events in zip(sys.argv[1::2], sys.argv[2::2]):
        bundle = load_bundle(policies)
        digest.update(bundle.digest.encode() + b"\\n")
        engine = Engine(bundle)
        with open(events, encoding="utf-8") as f:
            for _, event in read_jsonl(f):
                digest.update(engine.evaluate(event, validated=True).to_json() + b"\\n")
    print(digest.hexdigest())
    """
)


def _in_process_digest(pairs: list[tuple[Path, Path]]) -> str:
    digest = hashlib.sha256()
    for policies, events in pairs:
        bundle = load_bundle(policies)
        digest.update(bundle.digest.encode() + b"\n")
        with events.open(encoding="utf-8") as f:
            parsed = [e for _, e in read_jsonl(f)]
        for d in replay(bundle, parsed):  # type: ignore[arg-type]
            digest.update(d + b"\n")
    return digest.hexdigest()


def test_decisions_are_identical_across_hash_seeds(
    tmp_path: Path, set_dir: Path, events_file: Path
) -> None:
    script = tmp_path / "replay.py"
    script.write_text(_SCRIPT, encoding="utf-8")
    pairs = [(POLICIES, BIOTECH), (set_dir, events_file)]
    args = [str(x) for pair in pairs for x in pair]
    digests = {}
    for seed in ("0", "1", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,  # not the checkout: the digest must not depend on it
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        digests[seed] = run.stdout.strip()
    assert len(set(digests.values())) == 1, digests
    assert digests["0"] == _in_process_digest(pairs)
