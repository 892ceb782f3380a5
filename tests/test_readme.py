"""The README's examples stay true: its policy passes its own test, its Python runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import policyengine
from policyengine.testing import run_tests

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_policy_compiles_and_its_test_passes() -> None:
    match = re.search(r"```\n(package gxp\.oversight.*?)```", README, re.S)
    assert match, "README lost its policy example"
    sources = {
        "common.policy": (ROOT / "policies" / "common.policy").read_text(encoding="utf-8"),
        "example.policy": match.group(1).replace("package gxp.oversight", "package readme"),
    }
    report = run_tests(policyengine.compile_sources(sources))
    assert report.results and report.passed


def test_readme_python_example_runs(monkeypatch: Any) -> None:
    match = re.search(r"```python\n(.*?)```", README, re.S)
    assert match, "README lost its Python example"
    monkeypatch.chdir(ROOT)
    scope: dict[str, Any] = {}
    exec(compile(match.group(1), "README.md", "exec"), scope)
    assert scope["decision"].outcome is policyengine.Outcome.DENY


def test_readme_names_the_two_setup_commands() -> None:
    assert (
        "pip install -e . && policyengine eval --policies policies --events examples/biotech.jsonl"
        in README
    )
    assert "pip install -e '.[dev]' && pytest" in README
