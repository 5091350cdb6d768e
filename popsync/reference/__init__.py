"""Vietnam's provinces in the 63- and 34-unit schemes, and the identifier rules (public face)."""

from popsync.reference.identifiers import (
    DecodedPersonalId,
    classify_id,
    decode_personal_id,
    is_health_card_number,
    is_old_id_number,
    is_personal_id,
    is_vss_code,
    personal_id_consistent,
)
from popsync.reference.provinces import (
    PROVINCES_34,
    PROVINCES_63,
    UnknownProvinceError,
    codes_63_of,
    province_name,
    to_34,
)

__all__ = [
    "DecodedPersonalId",
    "PROVINCES_34",
    "PROVINCES_63",
    "UnknownProvinceError",
    "classify_id",
    "codes_63_of",
    "decode_personal_id",
    "is_health_card_number",
    "is_old_id_number",
    "is_personal_id",
    "is_vss_code",
    "personal_id_consistent",
    "province_name",
    "to_34",
]
