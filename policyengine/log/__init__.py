"""Tamper-evident decision log: RFC 6962 Merkle tree, C2SP checkpoints, notes and proofs.

The public surface is re-exported here; the modules behind it are private.
"""

from policyengine.log.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from policyengine.log.cosignature import (
    CosignatureVerifier,
    CosignedCheckpoint,
    WitnessSigner,
    cosign,
    verify_cosigned,
)
from policyengine.log.errors import LogError, VerificationError
from policyengine.log.keys import DEFAULT_KEY_NAME, generate_key_file, load_signer, load_verifier
from policyengine.log.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    HashReader,
    MemoryHashReader,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    prove_consistency,
    prove_inclusion,
    range_root,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from policyengine.log.note import Signer, Verifier, open_note, sign_note
from policyengine.log.proof import TlogProof, verify_proof
from policyengine.log.records import (
    DecisionRecorder,
    bundle_blob,
    canonical,
    decision_record,
    parse_record,
)
from policyengine.log.sqlite import SQLiteStore
from policyengine.log.store import AppendTxn, LogStore, StoredCheckpoint
from policyengine.log.tlog import AuditReport, TransparencyLog

__all__ = [
    "DEFAULT_KEY_NAME",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AppendTxn",
    "AuditReport",
    "Checkpoint",
    "CosignatureVerifier",
    "CosignedCheckpoint",
    "DecisionRecorder",
    "HashReader",
    "LogError",
    "LogStore",
    "MemoryHashReader",
    "SQLiteStore",
    "Signer",
    "StoredCheckpoint",
    "TlogProof",
    "TransparencyLog",
    "VerificationError",
    "Verifier",
    "WitnessSigner",
    "bundle_blob",
    "canonical",
    "consistency_proof",
    "cosign",
    "decision_record",
    "generate_key_file",
    "inclusion_proof",
    "leaf_hash",
    "load_signer",
    "load_verifier",
    "node_hash",
    "open_note",
    "parse_record",
    "prove_consistency",
    "prove_inclusion",
    "range_root",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
    "verify_consistency",
    "verify_cosigned",
    "verify_inclusion",
    "verify_proof",
]
