"""`policyengine signers …` through click's CliRunner: keygen, enrolment, listing,
revocation, refusals, and errors that exit 2 with the file named and no traceback."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from policyengine.cli.main import cli
from policyengine.cli.signers import read_passphrase
from policyengine.oversight import (
    PASSPHRASE_ENV,
    SignatureError,
    key_id,
    load_registry,
    load_signing_key,
    manifest,
    record_digest,
    sign,
    verify,
)
from policyengine.oversight.registry import decode_public_key

PASSPHRASE = "purple monkey dishwasher"


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["signers", *args], input=input, env=env)


def _passphrase_file(directory: Path, text: str = PASSPHRASE, mode: int = 0o600) -> Path:
    path = directory / "passphrase.txt"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, str]]:
    """Two keys made through `signers keygen`: name → (key file, public key, key id)."""
    directory = tmp_path_factory.mktemp("keys")
    secret = _passphrase_file(directory)
    made: dict[str, tuple[Path, str, str]] = {}
    for name in ("alice", "bob"):
        out = directory / f"{name}.key"
        result = run("keygen", "--out", str(out), "--passphrase-file", str(secret))
        assert result.exit_code == 0, result.output
        lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
        made[name] = (out, lines["public key"], lines["key id"])
    return made


def _add_alice(registry: Path, keys: dict[str, tuple[Path, str, str]]) -> Result:
    return run(
        "add", "alice", "--name", "Alice Example", "--role", "qa",
        "--key-file", f"{keys['alice'][0]}.pub", "--registry", str(registry),
        "--at", "2026-01-01T00:00:00Z",
    )  # fmt: skip


def _list_json(registry: Path) -> dict[str, object]:
    result = run("list", "--registry", str(registry), "--format", "json")
    assert result.exit_code == 0, result.output
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def test_keygen_writes_protected_key_and_pub(keys: dict[str, tuple[Path, str, str]]) -> None:
    path, public, kid = keys["alice"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert Path(f"{path}.pub").read_text() == public + "\n"
    assert key_id(decode_public_key(public)) == kid
    loaded = load_signing_key(path, PASSPHRASE)
    assert loaded.public_key().public_bytes_raw() == decode_public_key(public)


def test_keygen_refusals(tmp_path: Path, keys: dict[str, tuple[Path, str, str]]) -> None:
    secret = _passphrase_file(tmp_path)
    existing = keys["alice"][0]
    before = existing.read_bytes()
    result = run("keygen", "--out", str(existing), "--passphrase-file", str(secret))
    assert result.exit_code == 2
    assert f"`{existing}` already exists; refusing to overwrite" in result.stderr
    assert existing.read_bytes() == before

    short = tmp_path / "short"
    short.write_text("too short\n")
    short.chmod(0o600)
    result = run("keygen", "--out", str(tmp_path / "k"), "--passphrase-file", str(short))
    assert result.exit_code == 2 and "at least 12 are required" in result.stderr
    assert not (tmp_path / "k").exists()

    shared = tmp_path / "shared"
    shared.write_text(PASSPHRASE)
    shared.chmod(0o644)
    result = run("keygen", "--out", str(tmp_path / "k"), "--passphrase-file", str(shared))
    assert result.exit_code == 2 and f"passphrase file `{shared}` is accessible" in result.stderr
    assert "Traceback" not in result.output


def test_keygen_prompts_twice_or_reads_env(tmp_path: Path) -> None:
    out = tmp_path / "prompted.key"
    result = run("keygen", "--out", str(out), input=f"{PASSPHRASE}\n{PASSPHRASE}\n", env={})
    assert result.exit_code == 0, result.output
    assert "repeat the passphrase" in result.stderr
    assert PASSPHRASE not in result.output  # hidden input is not echoed
    load_signing_key(out, PASSPHRASE)

    env_out = tmp_path / "env.key"
    result = run("keygen", "--out", str(env_out), env={PASSPHRASE_ENV: PASSPHRASE})
    assert result.exit_code == 0, result.output
    load_signing_key(env_out, PASSPHRASE)


def test_read_passphrase_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = _passphrase_file(tmp_path, "from the file ok")
    monkeypatch.setenv(PASSPHRASE_ENV, "from the environment")
    assert read_passphrase(str(secret), confirm=False) == "from the file ok"
    assert read_passphrase(None, confirm=False) == "from the environment"
    monkeypatch.delenv(PASSPHRASE_ENV)

    @click.command()
    def prompt() -> None:
        click.echo(f"got={read_passphrase(None, confirm=False)}")

    result = CliRunner().invoke(prompt, input="typed passphrase\n")
    assert result.exit_code == 0 and "got=typed passphrase" in result.stdout


def test_add_list_revoke_end_to_end(tmp_path: Path, keys: dict[str, tuple[Path, str, str]]) -> None:
    registry = tmp_path / "signers.json"
    result = _add_alice(registry, keys)
    assert result.exit_code == 0, result.output
    assert f"enrolled signer `alice` with key `{keys['alice'][2]}`" in result.stderr

    result = run(
        "add", "bob", "--name", "Bob Example", "--role", "qa", "--role", "domain_expert",
        "--public-key", keys["bob"][1], "--registry", str(registry),
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    doc = _list_json(registry)
    assert doc["digest"] == load_registry(registry).digest()
    signers = doc["signers"]
    assert isinstance(signers, list)
    assert [(s["id"], s["name"], s["roles"]) for s in signers] == [
        ("alice", "Alice Example", ["qa"]),
        ("bob", "Bob Example", ["domain_expert", "qa"]),
    ]
    assert signers[0]["keys"][0]["key_id"] == keys["alice"][2]
    assert signers[0]["keys"][0]["added_at"] == "2026-01-01T00:00:00Z"

    # A signature made with the key file verifies against the registry the CLI wrote.
    m = manifest(
        subject_kind="model_version", subject_id="mv-1", record_digest=record_digest({"v": 1}),
        signer="alice", signer_name="Alice Example", role="qa", meaning="approved",
        time=datetime(2026, 3, 1, tzinfo=UTC), comment=None, review=None,
    )  # fmt: skip
    sig = sign(load_signing_key(keys["alice"][0], PASSPHRASE), m)
    assert verify(load_registry(registry), m, sig).id == "alice"

    result = run(
        "revoke", keys["alice"][2], "--reason", "laptop stolen", "--registry", str(registry),
        "--at", "2026-02-01T00:00:00Z",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    key = _list_json(registry)["signers"][0]["keys"][0]  # type: ignore[index]
    assert (key["revoked_at"], key["revocation_reason"]) == (
        "2026-02-01T00:00:00Z",
        "laptop stolen",
    )
    with pytest.raises(SignatureError, match="was revoked"):
        verify(load_registry(registry), m, sig)

    text = run("list", "--registry", str(registry))
    assert text.exit_code == 0
    assert f"key {keys['alice'][2]}  added 2026-01-01T00:00:00Z  revoked 2026-02-01" in text.stdout
    assert f"key {keys['bob'][2]}  added" in text.stdout and "active" in text.stdout

    again = run("revoke", keys["alice"][2], "--reason", "again", "--registry", str(registry))
    assert again.exit_code == 2 and "already revoked" in again.stderr
    unknown = run("revoke", "0123456789abcdef", "--reason", "x", "--registry", str(registry))
    assert unknown.exit_code == 2 and "no key `0123456789abcdef`" in unknown.stderr


def test_re_adding_a_key_is_refused(tmp_path: Path, keys: dict[str, tuple[Path, str, str]]) -> None:
    registry = tmp_path / "signers.json"
    assert _add_alice(registry, keys).exit_code == 0
    before = registry.read_bytes()
    result = _add_alice(registry, keys)
    assert result.exit_code == 2
    assert f"key `{keys['alice'][2]}` is already registered to signer `alice`" in result.stderr
    result = run(
        "add", "mallory", "--name", "Mallory", "--role", "qa",
        "--public-key", keys["alice"][1], "--registry", str(registry),
    )  # fmt: skip
    assert result.exit_code == 2 and "already registered to signer `alice`" in result.stderr
    assert registry.read_bytes() == before


def test_second_key_roles_and_disable(
    tmp_path: Path, keys: dict[str, tuple[Path, str, str]]
) -> None:
    registry = tmp_path / "signers.json"
    assert _add_alice(registry, keys).exit_code == 0
    # An existing signer gets another key; --name/--role may be omitted.
    result = run("add", "alice", "--public-key", keys["bob"][1], "--registry", str(registry))
    assert result.exit_code == 0 and "added key" in result.stderr
    assert [k.key_id for k in load_registry(registry).signer("alice").keys] == [  # type: ignore[union-attr]
        keys["alice"][2],
        keys["bob"][2],
    ]
    # A different printed name or role set is not silently applied.
    renamed = run(
        "add", "alice", "--name", "Alice Other", "--public-key", "x", "--registry", str(registry)
    )
    assert renamed.exit_code == 2
    wrong_role = run(
        "add", "alice", "--role", "qa_lead", "--key-file", f"{keys['alice'][0]}.pub",
        "--registry", str(registry),
    )  # fmt: skip
    assert wrong_role.exit_code == 2 and "signers roles alice" in wrong_role.stderr

    result = run("roles", "alice", "--role", "qa", "--role", "qa_lead", "--registry", str(registry))
    assert result.exit_code == 0 and "now has roles qa, qa_lead" in result.stderr
    alice = load_registry(registry).signer("alice")
    assert alice is not None and alice.roles == ["qa", "qa_lead"]
    assert [c.previous for c in alice.role_history] == [["qa"]]

    result = run("disable", "alice", "--reason", "left the company", "--registry", str(registry))
    assert result.exit_code == 0
    assert "disabled" in run("list", "--registry", str(registry)).stdout
    again = run("disable", "alice", "--reason", "again", "--registry", str(registry))
    assert again.exit_code == 2 and "already disabled" in again.stderr


def test_input_errors_exit_2(tmp_path: Path, keys: dict[str, tuple[Path, str, str]]) -> None:
    registry = tmp_path / "signers.json"
    missing = run("list", "--registry", str(registry))
    assert missing.exit_code == 2 and f"no signer registry `{registry}`" in missing.stderr

    new_without_name = run("add", "carol", "--role", "qa", "--public-key", keys["bob"][1],
                           "--registry", str(registry))  # fmt: skip
    assert new_without_name.exit_code == 2 and "--name" in new_without_name.stderr
    assert not registry.exists()

    private = run("add", "carol", "--name", "Carol", "--role", "qa",
                  "--key-file", str(keys["alice"][0]), "--registry", str(registry))  # fmt: skip
    assert private.exit_code == 2 and "holds a private key" in private.stderr
    assert f"{keys['alice'][0]}.pub" in private.stderr

    bad_b64 = run("add", "carol", "--name", "Carol", "--role", "qa", "--public-key", "abc",
                  "--registry", str(registry))  # fmt: skip
    assert bad_b64.exit_code == 2 and "invalid --public-key `abc`" in bad_b64.stderr

    both = run("add", "carol", "--name", "Carol", "--role", "qa", "--registry", str(registry))
    assert both.exit_code == 2 and "exactly one of --public-key and --key-file" in both.stderr

    bad_time = run("revoke", "0123456789abcdef", "--reason", "x", "--at", "yesterday",
                   "--registry", str(registry))  # fmt: skip
    assert bad_time.exit_code == 2 and "invalid --at `yesterday`" in bad_time.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json", "is not valid JSON"),
        (
            '{"version": 1, "signers": [{"id": "u1", "name": "U", "roles": []}]}',
            "`signers[0].roles`",
        ),
    ],
)
def test_malformed_registry_exit_2_with_file_named(
    tmp_path: Path, keys: dict[str, tuple[Path, str, str]], content: str, expected: str
) -> None:
    registry = tmp_path / "signers.json"
    registry.write_text(content)
    for result in (
        run("list", "--registry", str(registry)),
        _add_alice(registry, keys),
        run("revoke", keys["alice"][2], "--reason", "x", "--registry", str(registry)),
    ):
        assert result.exit_code == 2, result.output
        assert f"error: signer registry `{registry}` is malformed" in result.stderr or (
            f"error: signer registry `{registry}` is not valid JSON" in result.stderr
        )
        assert expected in result.stderr
        assert "Traceback" not in result.output
    assert registry.read_text() == content  # never overwritten


def test_help_lists_the_group() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "signers" in result.stdout
    sub = run("--help")
    for command in ("keygen", "add", "roles", "revoke", "disable", "list"):
        assert command in sub.stdout
