"""Privacy checks on datasets for the privacy layer: k-anonymity, l-diversity, direct
identifiers and minimum cell size, computed with polars.

The checks are pure functions over polars DataFrames/LazyFrames (`k_anonymity`,
`l_diversity`, `detect_identifiers`, `min_cell_size`); `assess` runs them together and
`PrivacyAssessment.to_event` turns the result into a `dataset.privacy_assessed` event, whose
state effect makes the figures available to rules as `subject.privacy`. File reading and
digests stay at the edge (`scan_data`, `file_digest`, `assess_file`). Definitions:
`spec/privacy.md`.
"""

from policyengine.privacy.assess import EVENT_TYPE, PrivacyAssessment, assess, assess_file
from policyengine.privacy.checks import (
    CellSizeResult,
    EquivalenceClass,
    KAnonymityResult,
    LDiversityResult,
    SmallCell,
    k_anonymity,
    l_diversity,
    min_cell_size,
)
from policyengine.privacy.errors import PrivacyError
from policyengine.privacy.identifiers import (
    IDENTIFIER_KINDS,
    NAME_PATTERNS,
    VALUE_PATTERNS,
    IdentifierFinding,
    IdentifierKind,
    column_words,
    detect_identifiers,
    kinds_by_name,
)
from policyengine.privacy.io import file_digest, scan_data

__all__ = [
    "EVENT_TYPE",
    "IDENTIFIER_KINDS",
    "NAME_PATTERNS",
    "VALUE_PATTERNS",
    "CellSizeResult",
    "EquivalenceClass",
    "IdentifierFinding",
    "IdentifierKind",
    "KAnonymityResult",
    "LDiversityResult",
    "PrivacyAssessment",
    "PrivacyError",
    "SmallCell",
    "assess",
    "assess_file",
    "column_words",
    "detect_identifiers",
    "file_digest",
    "k_anonymity",
    "kinds_by_name",
    "l_diversity",
    "min_cell_size",
    "scan_data",
]
