"""Prometheus metrics of one decision service, in a registry of its own (so several apps in
one process, as in tests, never share counters).

Names follow the Prometheus conventions: `policyengine_` prefix, base units (`_seconds`),
`_total` on counters, route templates rather than raw paths as labels so that cardinality
stays bounded by the API and the bundle's rule count, never by request data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from policyengine.compiler.bundle import Bundle
from policyengine.runtime.decision import Decision, Outcome

__all__ = ["CONTENT_TYPE", "REVIEW_ACTIONS", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_EVAL_BUCKETS = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2)
_IO_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0)
_HTTP_BUCKETS = (2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0, 2.5)


class _CheckpointAge(Collector):
    """`policyengine_log_checkpoint_age_seconds`, computed when scraped."""

    def __init__(self, signed_at: Callable[[], float | None]) -> None:
        self._signed_at = signed_at

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "policyengine_log_checkpoint_age_seconds",
            "Seconds since the latest signed checkpoint of the decision log.",
        )
        at = self._signed_at()
        if at is not None:
            family.add_metric([], max(0.0, time.time() - at))
        yield family

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "policyengine_log_checkpoint_age_seconds",
            "Seconds since the latest signed checkpoint of the decision log.",
        )


#: `policyengine_review_actions_total{action}`: items opened, signatures accepted (`signed`)
#: or refused by the policies (`refused`, drift responses included), items closed
#: (`approved`, `rejected`, `overridden`), escalations and accepted drift responses.
REVIEW_ACTIONS = (
    "opened",
    "signed",
    "refused",
    "approved",
    "rejected",
    "overridden",
    "escalated",
    "drift_response",
)

_REVIEW_GAUGES = (
    ("policyengine_reviews_open", "Review items waiting for signatures.", "open"),
    (
        "policyengine_reviews_overdue",
        "Open review items past their deadline (escalated or not).",
        "overdue",
    ),
)


class _ReviewBacklog(Collector):
    """`policyengine_reviews_open` and `_overdue`, read from the review store when scraped
    (overdue is a matter of time, not of any change the service sees)."""

    def __init__(self, counts: Callable[[], dict[str, int] | None]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        try:
            counts = self._counts()
        except Exception:  # a scrape must not fail because the store is busy or gone
            counts = None
        for name, doc, key in _REVIEW_GAUGES:
            family = GaugeMetricFamily(name, doc)
            if counts is not None:
                family.add_metric([], counts[key])
            yield family

    def describe(self) -> Iterator[Metric]:
        for name, doc, _key in _REVIEW_GAUGES:
            yield GaugeMetricFamily(name, doc)


class Metrics:
    """Every metric the service exports; `observe_decision` is called once per new decision.

    Drift gauges are labelled by model version and feature: bounded by what the monitors
    name and the model versions a deployment serves, never by request payloads."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.decisions = Counter(
            "policyengine_decisions", "Decisions made, by outcome.", ["outcome"], registry=r
        )
        for outcome in Outcome:
            self.decisions.labels(outcome.value)
        self.rule_results = Counter(
            "policyengine_rule_results",
            "Rule results in decisions, by rule, layer, enforcement and status.",
            ["rule", "layer", "enforcement", "status"],
            registry=r,
        )
        self.denials = Counter(
            "policyengine_denials",
            "Deny decisions, counted once for each hard rule that failed or errored in them.",
            ["rule", "layer"],
            registry=r,
        )
        self.already_recorded = Counter(
            "policyengine_events_already_recorded",
            "Events whose id was already decided in the log; the recorded decision was returned.",
            registry=r,
        )
        self.evaluation_seconds = Histogram(
            "policyengine_evaluation_duration_seconds",
            "Time to judge one event (state reduction and every triggered rule), log excluded.",
            buckets=_EVAL_BUCKETS,
            registry=r,
        )
        self.log_append_seconds = Histogram(
            "policyengine_log_append_duration_seconds",
            "Durable log appends (commit, fsync and checkpoint signature), one per group commit.",
            buckets=_IO_BUCKETS,
            registry=r,
        )
        self.group_events = Histogram(
            "policyengine_group_commit_events",
            "Events decided together in one group commit.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.log_append_failures = Counter(
            "policyengine_log_append_failures",
            "Log appends that failed; their decisions were not acknowledged.",
            registry=r,
        )
        self.drift_value = Gauge(
            "policyengine_drift_value",
            "Latest value of each monitored drift statistic (NaN when it could not be computed).",
            ["monitor", "model_version", "feature", "metric"],
            registry=r,
        )
        self.drift_breaches = Counter(
            "policyengine_drift_breaches",
            "Drift checks that breached their monitor's condition.",
            ["monitor", "feature", "metric"],
            registry=r,
        )
        self.drift_runs = Counter(
            "policyengine_drift_runs",
            "Monitor runs, by monitor and verdict (breach or ok).",
            ["monitor", "verdict"],
            registry=r,
        )
        self.log_leaves = Gauge(
            "policyengine_log_leaves", "Leaves in the decision log.", registry=r
        )
        self.checkpoint_timestamp = Gauge(
            "policyengine_log_checkpoint_timestamp_seconds",
            "Unix time of the latest signed checkpoint (at start-up: the log file's mtime).",
            registry=r,
        )
        self._signed_at: float | None = None
        r.register(_CheckpointAge(lambda: self._signed_at))
        self.reloads = Counter(
            "policyengine_bundle_reloads",
            "Policy bundle reload attempts, by result (success or failure).",
            ["result"],
            registry=r,
        )
        self.reloads.labels("success")
        self.reloads.labels("failure")
        self.last_reload_success = Gauge(
            "policyengine_bundle_last_reload_success",
            "1 when the last reload attempt compiled (or none was made), 0 when it was rejected.",
            registry=r,
        )
        self.last_reload_success.set(1)
        self.last_reload_timestamp = Gauge(
            "policyengine_bundle_last_reload_timestamp_seconds",
            "Unix time of the last bundle reload attempt.",
            registry=r,
        )
        self.bundle_info = Gauge(
            "policyengine_bundle_info",
            "The policy bundle serving now (value 1), by digest.",
            ["digest"],
            registry=r,
        )
        self.bundle_rules = Gauge(
            "policyengine_bundle_rules", "Rules in the policy bundle serving now.", registry=r
        )
        self.pending_events = Gauge(
            "policyengine_pending_events",
            "Events waiting for the group commit.",
            registry=r,
        )
        self._review_counts: Callable[[], dict[str, int] | None] | None = None
        r.register(_ReviewBacklog(self._reviews))
        self.review_actions = Counter(
            "policyengine_review_actions",
            "Review actions: items opened, signatures signed or refused, items approved,"
            " rejected or overridden, escalations.",
            ["action"],
            registry=r,
        )
        self._review_actions = {a: self.review_actions.labels(a) for a in REVIEW_ACTIONS}
        self.http_requests = Counter(
            "policyengine_http_requests",
            "HTTP requests, by method, route template and status code.",
            ["method", "route", "code"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "policyengine_http_request_duration_seconds",
            "HTTP request latency, by method and route template.",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self._outcomes = {o: self.decisions.labels(o.value) for o in Outcome}
        # Label lookups cost more than the increments; children are cached per label tuple.
        self._rules: dict[tuple[str, str, str, str], Any] = {}
        self._denied: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    # ------------------------------------------------------------------ updates

    def observe_decision(self, decision: Decision) -> None:
        self._outcomes[decision.outcome].inc()
        deny = decision.outcome is Outcome.DENY
        rules = self._rules
        for r in decision.results:
            key = (r.rule, r.layer, r.enforcement, r.status)
            child = rules.get(key)
            if child is None:
                child = rules[key] = self.rule_results.labels(*key)
            child.inc()
            if deny and r.enforcement == "hard" and r.failed:
                denied = self._denied.get((r.rule, r.layer))
                if denied is None:
                    denied = self._denied[(r.rule, r.layer)] = self.denials.labels(r.rule, r.layer)
                denied.inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        pair = self._requests.get(key)
        if pair is None:
            pair = self._requests[key] = (
                self.http_requests.labels(method, route, str(status)),
                self.http_seconds.labels(method, route),
            )
        pair[0].inc()
        pair[1].observe(seconds)

    def checkpoint_signed(self, at: float) -> None:
        self._signed_at = at
        self.checkpoint_timestamp.set(at)

    def serving(self, bundle: Bundle) -> None:
        self.bundle_info.clear()
        self.bundle_info.labels(bundle.digest).set(1)
        self.bundle_rules.set(len(bundle.rules))

    def reload_attempt(self, ok: bool) -> None:
        self.reloads.labels("success" if ok else "failure").inc()
        self.last_reload_success.set(1 if ok else 0)
        self.last_reload_timestamp.set(time.time())

    def count_reviews(self, counts: Callable[[], dict[str, int] | None]) -> None:
        """Where the review gauges read `{"open": n, "overdue": m}` (None: no review store)."""
        self._review_counts = counts

    def _reviews(self) -> dict[str, int] | None:
        return None if self._review_counts is None else self._review_counts()

    def review_action(self, action: str, n: int = 1) -> None:
        if n:
            self._review_actions[action].inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)
