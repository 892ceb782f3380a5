"""C2SP tlog checkpoints: canonical text, strict parsing and signed verification."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.log.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from policyengine.log.errors import VerificationError
from policyengine.log.note import Signer, open_note

ORIGIN = "example.com/policyengine/log"
LOG = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"log key").digest()))
WITNESS = Signer.generate("witness.example/w1")
ROOT = hashlib.sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()
# RFC 6962: the root of the empty tree is SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def test_text_format_matches_spec() -> None:
    cp = Checkpoint(ORIGIN, 20852163, ROOT)
    assert cp.to_text() == f"{ORIGIN}\n20852163\n{ROOT_B64}\n"
    with_ext = Checkpoint(ORIGIN, 0, EMPTY_ROOT, ("ext one", "ext two"))
    assert with_ext.to_text() == (
        f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\next two\n"
    )
    assert Checkpoint.parse(with_ext.to_text()) == with_ext


def test_spec_example_text_parses() -> None:
    # From https://c2sp.org/tlog-checkpoint (signature omitted: its key is not published).
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = Checkpoint.parse(text)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.to_text() == text


_line = st.text(
    st.characters(blacklist_categories=("Cs",), min_codepoint=0x20), min_size=1, max_size=30
)


@settings(max_examples=80, deadline=None)
@given(
    origin=_line,
    size=st.integers(min_value=0, max_value=2**63 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_line, max_size=3).map(tuple),
)
def test_round_trip(origin: str, size: int, root: bytes, extensions: tuple[str, ...]) -> None:
    cp = Checkpoint(origin, size, root, extensions)
    assert Checkpoint.parse(cp.to_text()) == cp
    signed = sign_checkpoint(cp, LOG)
    assert verify_checkpoint(signed, LOG.verifier, origin=origin) == cp


def test_sign_and_verify_with_witness_cosignature() -> None:
    cp = Checkpoint(ORIGIN, 3, ROOT)
    signed = sign_checkpoint(cp, LOG, WITNESS)
    # the log's key alone, the witness alone, or both: all accept
    assert verify_checkpoint(signed, LOG.verifier, origin=ORIGIN) == cp
    assert verify_checkpoint(signed, [WITNESS.verifier]) == cp
    assert verify_checkpoint(signed, [LOG.verifier, WITNESS.verifier]) == cp
    assert len(open_note(signed, [LOG.verifier, WITNESS.verifier])[1]) == 2
    # the verifier key string is what an inspector is given
    assert LOG.verifier_key.startswith(f"{ORIGIN}+{LOG.key_id:08x}+")


def test_wrong_key_and_wrong_origin_are_rejected() -> None:
    cp = Checkpoint(ORIGIN, 3, ROOT)
    signed = sign_checkpoint(cp, LOG)
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        verify_checkpoint(signed, WITNESS.verifier)
    with pytest.raises(VerificationError, match=r"expected `example\.com/other`"):
        verify_checkpoint(signed, LOG.verifier, origin="example.com/other")


def test_tampered_checkpoint_is_rejected() -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG)
    for tampered in [
        signed.replace("\n3\n", "\n4\n", 1),
        signed.replace(ROOT_B64, base64.b64encode(EMPTY_ROOT).decode(), 1),
        signed.replace(ORIGIN, ORIGIN + "2", 1),
    ]:
        assert tampered != signed
        with pytest.raises(VerificationError, match="invalid signature"):
            verify_checkpoint(tampered, LOG.verifier)


def test_signed_malformed_checkpoint_is_rejected_after_signature_check() -> None:
    # A validly signed note whose text is not a checkpoint must still fail.
    from policyengine.log.note import sign_note

    signed = sign_note(f"{ORIGIN}\n007\n{ROOT_B64}\n", LOG)
    with pytest.raises(VerificationError, match="leading zeros"):
        verify_checkpoint(signed, LOG.verifier)


MALFORMED = {
    "empty": ("", "does not end with a newline"),
    "no final newline": (f"{ORIGIN}\n1\n{ROOT_B64}", "does not end with a newline"),
    "origin only": (f"{ORIGIN}\n", "needs origin"),
    "no root": (f"{ORIGIN}\n1\n", "needs origin"),
    "empty origin": (f"\n1\n{ROOT_B64}\n", "line 1 is empty"),
    "empty extension": (f"{ORIGIN}\n1\n{ROOT_B64}\n\n", "line 4 is empty"),
    "empty middle extension": (f"{ORIGIN}\n1\n{ROOT_B64}\n\nx\n", "line 4 is empty"),
    "leading zero": (f"{ORIGIN}\n01\n{ROOT_B64}\n", "leading zeros"),
    "double zero": (f"{ORIGIN}\n00\n{ROOT_B64}\n", "leading zeros"),
    "negative size": (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "leading zeros"),
    "plus size": (f"{ORIGIN}\n+1\n{ROOT_B64}\n", "leading zeros"),
    "hex size": (f"{ORIGIN}\n0x10\n{ROOT_B64}\n", "leading zeros"),
    "spaced size": (f"{ORIGIN}\n 1\n{ROOT_B64}\n", "leading zeros"),
    "underscore size": (f"{ORIGIN}\n1_000\n{ROOT_B64}\n", "leading zeros"),
    "unicode digit size": (f"{ORIGIN}\n\u0661\n{ROOT_B64}\n", "leading zeros"),
    "size over int64": (f"{ORIGIN}\n{2**63}\n{ROOT_B64}\n", "too large"),
    "root not base64": (f"{ORIGIN}\n1\nnot*base64\n", "not valid base64"),
    "root unpadded": (f"{ORIGIN}\n1\n{ROOT_B64.rstrip('=')}\n", "not valid base64"),
    "root url-safe alphabet": (f"{ORIGIN}\n1\n{'_' * 43}=\n", "not valid base64"),
    "root non-canonical": (
        f"{ORIGIN}\n1\n{ROOT_B64[:-2]}{chr(ord(ROOT_B64[-2]) + 1)}=\n",
        "canonical",
    ),
    "root 31 bytes": (f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n", "31 bytes"),
    "root 33 bytes": (f"{ORIGIN}\n1\n{base64.b64encode(ROOT + b'x').decode()}\n", "33 bytes"),
    "hex root": (f"{ORIGIN}\n1\n{ROOT.hex()}\n", "48 bytes"),
    "CR in origin": (f"{ORIGIN}\r\n1\n{ROOT_B64}\n", "control character"),
    "tab in extension": (f"{ORIGIN}\n1\n{ROOT_B64}\na\tb\n", "control character"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_checkpoint_text_is_rejected(name: str) -> None:
    text, reason = MALFORMED[name]
    with pytest.raises(VerificationError, match=reason):
        Checkpoint.parse(text)


def test_constructor_refuses_what_parse_would_reject() -> None:
    for kwargs in [
        {"origin": "", "size": 1, "root": ROOT},
        {"origin": "a\nb", "size": 1, "root": ROOT},
        {"origin": ORIGIN, "size": -1, "root": ROOT},
        {"origin": ORIGIN, "size": 2**63, "root": ROOT},
        {"origin": ORIGIN, "size": True, "root": ROOT},
        {"origin": ORIGIN, "size": 1, "root": ROOT[:31]},
        {"origin": ORIGIN, "size": 1, "root": ROOT, "extensions": ("",)},
        {"origin": ORIGIN, "size": 1, "root": ROOT, "extensions": ("a\nb",)},
    ]:
        with pytest.raises(ValueError):
            Checkpoint(**kwargs)  # type: ignore[arg-type]


def test_checkpoint_is_frozen_and_hashable() -> None:
    cp = Checkpoint(ORIGIN, 1, ROOT, ["ext"])  # type: ignore[arg-type]
    assert cp.extensions == ("ext",)
    assert hash(cp) == hash(Checkpoint(ORIGIN, 1, ROOT, ("ext",)))
    with pytest.raises(AttributeError):
        cp.size = 2  # type: ignore[misc]
