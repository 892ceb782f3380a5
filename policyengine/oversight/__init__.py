"""Oversight: Part 11 electronic signatures, the registry of people who may sign, signature
checks at intake, review items and the actions on them (spec/oversight.md).

The review machinery (`Oversight`, `ReviewStore`, …) is loaded on first use: it builds on the
engine, which itself imports the signature checks from this package.
"""

from typing import Any

from policyengine.oversight.attest import SIGNED_EVENT_TYPES, attest, reviewed_record, signed_digest
from policyengine.oversight.esign import (
    MANIFEST_TYPE,
    PASSPHRASE_ENV,
    PASSPHRASE_MIN_LENGTH,
    ESignature,
    SignatureError,
    SignatureLike,
    SigningKeyError,
    check_passphrase,
    generate_signing_key,
    load_public_key_file,
    load_signing_key,
    manifest,
    public_key_raw,
    record_digest,
    sign,
    verify,
)
from policyengine.oversight.registry import (
    RegistryError,
    RoleChange,
    Signer,
    SignerKey,
    SignerRegistry,
    check_append_only,
    key_id,
    load_registry,
    parse_registry,
    save_registry,
    update_registry,
)

__all__ = [
    "MANIFEST_TYPE",
    "PASSPHRASE_ENV",
    "PASSPHRASE_MIN_LENGTH",
    "SIGNED_EVENT_TYPES",
    "ActionResult",
    "ESignature",
    "Oversight",
    "RegistryError",
    "ReverifyReport",
    "ReviewError",
    "ReviewItem",
    "ReviewStore",
    "RoleChange",
    "SignatureError",
    "SignatureLike",
    "Signer",
    "SignerIdentity",
    "SignerKey",
    "SignerRegistry",
    "SigningKeyError",
    "attest",
    "check_append_only",
    "check_passphrase",
    "generate_signing_key",
    "key_id",
    "load_public_key_file",
    "load_registry",
    "load_signing_key",
    "manifest",
    "parse_registry",
    "public_key_raw",
    "record_digest",
    "reverify",
    "reviewed_record",
    "save_registry",
    "sign",
    "signed_digest",
    "update_registry",
    "verify",
]

_LAZY = {
    "ActionResult": "policyengine.oversight.flow",
    "Oversight": "policyengine.oversight.flow",
    "SignerIdentity": "policyengine.oversight.flow",
    "ReviewError": "policyengine.oversight.reviews",
    "ReviewItem": "policyengine.oversight.reviews",
    "ReviewStore": "policyengine.oversight.reviews",
    "ReverifyReport": "policyengine.oversight.reverify",
    "reverify": "policyengine.oversight.reverify",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
