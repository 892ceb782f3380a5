"""C2SP signed notes: public test vectors, round trips, and every malformed form we reject."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.log.errors import VerificationError
from policyengine.log.note import (
    MAX_SIGNATURES,
    Signature,
    Signer,
    Verifier,
    key_id,
    open_note,
    sign_note,
)

# From the C2SP signed-note spec (https://c2sp.org/signed-note).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_TEXT = "This is an example message.\n"
SPEC_SIG = (
    "\u2014 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
SPEC_NOTE = SPEC_TEXT + "\n" + SPEC_SIG

# From the documentation of Go's golang.org/x/mod/sumdb/note (the reference implementation).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n"
    + "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
    + "dngotpRZb6KE6RyyBwJnAM=\n"
)

# One fixed key per name keeps the hypothesis tests fast and deterministic.
ALICE = Signer("alice.example/log", Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
BOB = Signer.generate("bob.example/witness")


# --- public vectors -------------------------------------------------------------------------


def test_spec_example_verifies() -> None:
    verifier = Verifier.from_key_string(SPEC_VKEY)
    assert verifier.name == "example.com/foo"
    assert verifier.key_id == 0x530D903A
    text, sigs = open_note(SPEC_NOTE, [verifier])
    assert text == SPEC_TEXT
    assert [(s.name, s.key_id) for s in sigs] == [("example.com/foo", 0x530D903A)]
    # bytes input is accepted too (inspectors often read files in binary)
    assert open_note(SPEC_NOTE.encode(), verifier)[0] == SPEC_TEXT


def test_spec_example_rejects_every_single_bit_change_of_text() -> None:
    verifier = Verifier.from_key_string(SPEC_VKEY)
    payload = SPEC_TEXT.encode()
    for index in range(len(payload)):
        for bit in range(8):
            mutated = bytearray(payload)
            mutated[index] ^= 1 << bit
            with pytest.raises(VerificationError):
                open_note(bytes(mutated) + b"\n" + SPEC_SIG.encode(), [verifier])


def test_spec_example_rejects_every_single_bit_change_of_signature() -> None:
    verifier = Verifier.from_key_string(SPEC_VKEY)
    b64 = SPEC_SIG.split(" ")[2].strip()
    blob = base64.b64decode(b64)
    for index in range(len(blob)):
        for bit in range(8):
            mutated = bytearray(blob)
            mutated[index] ^= 1 << bit
            line = f"\u2014 example.com/foo {base64.b64encode(bytes(mutated)).decode()}\n"
            # A flipped key-ID bit makes the signature "unknown" (ignored), which then leaves
            # no trusted signature; a flipped signature bit is an invalid trusted signature.
            with pytest.raises(VerificationError):
                open_note(SPEC_TEXT + "\n" + line, [verifier])


def test_go_reference_vector_signs_byte_for_byte() -> None:
    signer = Signer.from_private_key_string(GO_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == 0xC74F20A3
    assert signer.verifier_key == GO_VKEY
    assert signer.to_private_key_string() == GO_SKEY
    # Ed25519 is deterministic, so matching Go's published note proves wire compatibility.
    assert sign_note(GO_TEXT, signer) == GO_NOTE
    assert open_note(GO_NOTE, [Verifier.from_key_string(GO_VKEY)])[0] == GO_TEXT


def test_key_id_is_truncated_sha256_of_name_newline_type_key() -> None:
    verifier = Verifier.from_key_string(SPEC_VKEY)
    raw = base64.b64decode(SPEC_VKEY.split("+", 2)[2])
    assert raw[0] == 0x01 and raw[1:] == verifier.public_key
    expected = hashlib.sha256(b"example.com/foo\n\x01" + raw[1:]).digest()[:4]
    assert key_id("example.com/foo", verifier.public_key) == int.from_bytes(expected, "big")
    assert f"{verifier.key_id:08x}" == "530d903a"
    # the name is part of the ID: same key, other name, other ID
    assert key_id("example.com/bar", verifier.public_key) != verifier.key_id


def test_key_strings_round_trip() -> None:
    signer = Signer.generate("example.com/policyengine/log")
    again = Signer.from_private_key_string(signer.to_private_key_string())
    assert again.verifier == signer.verifier
    verifier = Verifier.from_key_string(signer.verifier_key)
    assert verifier == signer.verifier
    assert verifier.to_key_string() == signer.verifier_key
    assert "PRIVATE" not in repr(signer) and signer.to_private_key_string() not in repr(signer)


# --- round trips ----------------------------------------------------------------------------

_line_chars = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\n", min_codepoint=0x20
)
_texts = st.lists(st.text(_line_chars, max_size=20), min_size=1, max_size=6).map(
    lambda lines: "".join(f"{line}\n" for line in lines)
)


@settings(max_examples=60, deadline=None)
@given(text=_texts, both=st.booleans())
def test_sign_then_open_round_trips(text: str, both: bool) -> None:
    signers = (ALICE, BOB) if both else (ALICE,)
    signed = sign_note(text, *signers)
    got, sigs = open_note(signed, [ALICE.verifier, BOB.verifier])
    assert got == text
    assert [s.name for s in sigs] == [s.name for s in signers]
    # only the trusted subset is reported
    got, sigs = open_note(signed, [ALICE.verifier])
    assert got == text and [s.name for s in sigs] == [ALICE.name]


@settings(max_examples=60, deadline=None)
@given(text=_texts, index=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_bit_flip_in_text_is_rejected(text: str, index: int, bit: int) -> None:
    signed = sign_note(text, ALICE).encode()
    payload_len = len(text.encode())
    mutated = bytearray(signed)
    mutated[index % payload_len] ^= 1 << bit
    with pytest.raises(VerificationError):
        open_note(bytes(mutated), [ALICE.verifier])


def test_text_with_empty_lines_is_split_at_last_blank_line() -> None:
    # The spec's own example text contains an empty line.
    text = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
    text += "ed è subito sera.\n"
    assert open_note(sign_note(text, ALICE), ALICE.verifier)[0] == text
    assert open_note(sign_note("\n", ALICE), ALICE.verifier)[0] == "\n"


# --- trust semantics ------------------------------------------------------------------------


def test_wrong_key_is_rejected() -> None:
    signed = sign_note("hello\n", BOB)
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        open_note(signed, [ALICE.verifier])
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        open_note(signed, [])


def test_unknown_key_signatures_are_ignored() -> None:
    stranger = Signer.generate("stranger.example")
    signed = sign_note("hello\n", stranger, ALICE)
    text, sigs = open_note(signed, [ALICE.verifier])
    assert text == "hello\n" and [s.name for s in sigs] == [ALICE.name]
    # even a garbage signature from an unknown key does not matter
    junk = base64.b64encode(b"\x00\x00\x00\x01" + b"x" * 64).decode()
    assert open_note(signed + f"\u2014 stranger.example {junk}\n", ALICE.verifier)[0] == "hello\n"


def test_same_name_other_id_is_an_unknown_key() -> None:
    # Key rotation: the spec says a key matching a trusted one by name only is ignored.
    rotated = Signer.generate(ALICE.name)
    assert rotated.key_id != ALICE.key_id
    signed = sign_note("rotated\n", rotated, ALICE)
    assert open_note(signed, ALICE.verifier)[1][0].key_id == ALICE.key_id
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        open_note(sign_note("rotated\n", rotated), ALICE.verifier)


def test_bad_signature_from_trusted_key_rejects_whole_note() -> None:
    good = sign_note("hello\n", ALICE, BOB)
    other = sign_note("other\n", BOB)
    forged = good.replace(good.splitlines()[-1], other.splitlines()[-1])
    assert forged != good
    with pytest.raises(VerificationError, match="invalid signature by trusted key"):
        open_note(forged, [ALICE.verifier, BOB.verifier])
    # ...even though ALICE's signature on it is fine
    assert open_note(forged, [ALICE.verifier])[0] == "hello\n"


def test_multiple_signatures_and_duplicates() -> None:
    signed = sign_note("multi\n", ALICE, BOB)
    _, sigs = open_note(signed, [BOB.verifier, ALICE.verifier])
    assert [s.name for s in sigs] == [ALICE.name, BOB.name]
    assert all(isinstance(s, Signature) for s in sigs)
    assert signed.endswith("".join(s.to_line() for s in sigs))
    # a repeated identical line is reported once
    doubled = signed + sigs[0].to_line()
    assert [s.name for s in open_note(doubled, [ALICE.verifier])[1]] == [ALICE.name]


def test_ambiguous_verifiers_are_refused() -> None:
    signer = Signer.from_private_key_string(GO_SKEY)
    twin = Verifier(signer.name, Ed25519PrivateKey.generate().public_key())
    # A real (name, ID) collision needs ~2**32 keys; fake one by overwriting the computed ID.
    twin._key_id = signer.key_id
    with pytest.raises(ValueError, match="ambiguous"):
        open_note(GO_NOTE, [signer.verifier, twin])
    # the same key twice is fine
    assert open_note(GO_NOTE, [signer.verifier, signer.verifier])[0] == GO_TEXT


def test_signature_limit() -> None:
    line = SPEC_SIG
    at_limit = SPEC_TEXT + "\n" + line * MAX_SIGNATURES
    assert open_note(at_limit, Verifier.from_key_string(SPEC_VKEY))[0] == SPEC_TEXT
    with pytest.raises(VerificationError, match="more than"):
        open_note(at_limit + line, Verifier.from_key_string(SPEC_VKEY))


# --- malformed notes ------------------------------------------------------------------------

_B64 = SPEC_SIG.split(" ")[2].strip()

MALFORMED = {
    "empty": "",
    "no signature block": SPEC_TEXT,
    "no blank line": SPEC_TEXT + SPEC_SIG,
    "blank line but no signatures": SPEC_TEXT + "\n",
    "missing final newline": SPEC_NOTE[:-1],
    "text without final newline": "This is an example message.\n" + SPEC_SIG,
    "hyphen instead of em dash": SPEC_NOTE.replace("\u2014", "-"),
    "em dash without space": SPEC_NOTE.replace("\u2014 ", "\u2014"),
    "no signature after name": SPEC_TEXT + "\n\u2014 example.com/foo\n",
    "empty key name": SPEC_TEXT + f"\n\u2014  {_B64}\n",
    "plus in key name": SPEC_TEXT + f"\n\u2014 example.com+foo {_B64}\n",
    "empty signature": SPEC_TEXT + "\n\u2014 example.com/foo \n",
    "bad base64": SPEC_TEXT + "\n\u2014 example.com/foo not*base64\n",
    "unpadded base64": SPEC_TEXT + f"\n\u2014 example.com/foo {_B64.rstrip('=')}\n",
    "non-canonical base64": SPEC_TEXT + f"\n\u2014 example.com/foo {_B64[:-2]}N=\n",
    "too short": SPEC_TEXT + "\n\u2014 example.com/foo AAAAAA==\n",
    "extra space in line": SPEC_TEXT + f"\n\u2014 example.com/foo  {_B64}\n",
    "trailing space": SPEC_TEXT + f"\n\u2014 example.com/foo {_B64} \n",
    "blank line between signatures": SPEC_NOTE + "\n" + SPEC_SIG,
    "bare CR in text": SPEC_NOTE.replace("example message", "example\rmessage"),
    "CRLF line endings": SPEC_NOTE.replace("\n", "\r\n"),
    "tab in text": SPEC_NOTE.replace(" message", "\tmessage"),
    "NUL in text": SPEC_NOTE.replace(" message", "\x00message"),
    "lone surrogate": SPEC_NOTE.replace(" message", "\udc80message"),
    "junk after signatures": SPEC_NOTE + "junk",
}


# Why each is rejected: a check that fails for the wrong reason would hide a parsing bug.
_REASON = {
    "empty": "no blank line",
    "no signature block": "no blank line",
    "no blank line": "no blank line",
    "text without final newline": "no blank line",
    "blank line but no signatures": "no signature lines",
    "missing final newline": "no final newline",
    "junk after signatures": "no final newline",
    "hyphen instead of em dash": "does not start with",
    "em dash without space": "does not start with",
    "no signature after name": "no valid key name",
    "empty key name": "no valid key name",
    "plus in key name": "no valid key name",
    "empty signature": "too short",
    "too short": "too short",
    "bad base64": "not valid base64",
    "unpadded base64": "not valid base64",
    "extra space in line": "not valid base64",
    "trailing space": "not valid base64",
    "non-canonical base64": "not canonical base64",
    # split at the last blank line, the first signature line becomes text: signature fails
    "blank line between signatures": "invalid signature",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_notes_are_rejected(name: str) -> None:
    with pytest.raises(VerificationError, match=_REASON.get(name, "forbidden character")):
        open_note(MALFORMED[name], [Verifier.from_key_string(SPEC_VKEY)])


def test_invalid_utf8_is_rejected() -> None:
    with pytest.raises(VerificationError, match="UTF-8"):
        open_note(SPEC_NOTE.encode().replace(b"example", b"ex\xffample", 1), [])


# --- bad keys and bad inputs to signing -------------------------------------------------------

BAD_VERIFIER_KEYS = [
    "",
    "example.com/foo",
    "example.com/foo+530d903a",
    "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # empty name
    "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong ID
    "example.com/fo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # ID of other name
    "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # short ID
    "example.com/foo+530d903g+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # non-hex ID
    "example.com/foo+530d903a+AkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # bad base64
    "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # type 0x02
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2kAA==",  # too long
    "example com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # space in name
]


@pytest.mark.parametrize("key", BAD_VERIFIER_KEYS)
def test_bad_verifier_keys_are_rejected(key: str) -> None:
    with pytest.raises(ValueError):
        Verifier.from_key_string(key)


def test_go_verifier_key_manglings_are_rejected() -> None:
    # Like Go's own test: every strict substring and every single-byte increment must fail.
    for i in range(len(GO_VKEY)):
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) != (0, len(GO_VKEY)):
                with pytest.raises(ValueError):
                    Verifier.from_key_string(GO_VKEY[i:j])
    for i in range(len(GO_VKEY)):
        mangled = GO_VKEY[:i] + chr(ord(GO_VKEY[i]) + 1) + GO_VKEY[i + 1 :]
        with pytest.raises(ValueError):
            Verifier.from_key_string(mangled)


def test_bad_signer_keys_are_rejected_without_echoing_the_seed() -> None:
    seed_b64 = GO_SKEY.rsplit("+", 2)[1] + "+" + GO_SKEY.rsplit("+", 1)[1]
    for bad in [
        GO_VKEY,  # a verifier key is not a signer key
        GO_SKEY.replace("PRIVATE", "PUBLIC"),
        GO_SKEY.replace("c74f20a3", "c74f20a4"),  # wrong ID
        GO_SKEY.replace("PeterNeumann", "PeterNeumann2"),  # ID of other name
        GO_SKEY[:-1],  # truncated seed
        GO_SKEY.replace("AYEK", "AnEK"),  # signature type 0x02
    ]:
        with pytest.raises(ValueError) as info:
            Signer.from_private_key_string(bad)
        assert seed_b64 not in str(info.value)
        assert seed_b64[:-4] not in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["", "no newline", "bare\rcarriage return\n", "tab\there\n", "nul\x00\n", "lone \udc80\n"],
)
def test_sign_note_refuses_unsignable_text(text: str) -> None:
    with pytest.raises(ValueError):
        sign_note(text, ALICE)


def test_sign_note_needs_a_signer_and_valid_names() -> None:
    with pytest.raises(ValueError, match="at least one signer"):
        sign_note("x\n")
    for name in ["", "a b", "a+b", "tab\tname", "nbsp\u00a0name"]:
        with pytest.raises(ValueError):
            Signer.generate(name)
