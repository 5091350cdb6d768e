"""Identifier rules: 12-digit personal ID (CCCD), old 9-digit ID (CMND), social-insurance code,
health-insurance card number. Scalar functions here; vectorized forms live in ``matching``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from popsync.reference.provinces import PROVINCES_63

_PERSONAL_ID = re.compile(r"^\d{12}$")
_OLD_ID = re.compile(r"^\d{9}$")
_VSS_CODE = re.compile(r"^\d{10}$")
_HEALTH_CARD = re.compile(r"^[A-Z]{2}[1-5]\d{2}\d{10}$")

# Century-and-gender digit G of a personal ID: G -> (century start, gender).
_CENTURY_GENDER = {0: (1900, "M"), 1: (1900, "F"), 2: (2000, "M"), 3: (2000, "F"),
                   4: (2100, "M"), 5: (2100, "F"), 6: (2200, "M"), 7: (2200, "F")}


@dataclass(frozen=True)
class DecodedPersonalId:
    birth_province_code: str
    gender: str
    century: int
    birth_year_2d: int

    @property
    def birth_year(self) -> int:
        return self.century + self.birth_year_2d


def is_personal_id(value: str | None) -> bool:
    """A well-formed 12-digit personal ID whose province prefix and century digit are known."""
    return value is not None and decode_personal_id(value) is not None


def decode_personal_id(value: str) -> DecodedPersonalId | None:
    """Decode ``PPP G YY RRRRRR``; None when the value is not a valid personal ID."""
    if not isinstance(value, str) or not _PERSONAL_ID.match(value):
        return None
    if value[0] != "0" or value[1:3] not in PROVINCES_63:
        return None
    century_gender = _CENTURY_GENDER.get(int(value[3]))
    if century_gender is None:
        return None
    century, gender = century_gender
    return DecodedPersonalId(value[1:3], gender, century, int(value[4:6]))


def personal_id_consistent(value: str, gender: str | None, birth_year: int | None) -> bool:
    """Digits 4-6 agree with the stated gender and birth year (either may be unknown)."""
    decoded = decode_personal_id(value)
    if decoded is None:
        return False
    if gender is not None and decoded.gender != gender:
        return False
    return birth_year is None or decoded.birth_year == birth_year


def encode_personal_id_prefix(birth_province_code: str, gender: str, birth_year: int) -> str:
    """The first six digits of a personal ID for a person: ``0PP`` + G + YY."""
    century = (birth_year // 100) * 100
    digit = {1900: 0, 2000: 2, 2100: 4, 2200: 6}[century] + (1 if gender == "F" else 0)
    return f"0{birth_province_code}{digit}{birth_year % 100:02d}"


def is_old_id_number(value: str | None) -> bool:
    return isinstance(value, str) and bool(_OLD_ID.match(value))


def is_vss_code(value: str | None) -> bool:
    """10 digits whose first two are a 63-scheme province code."""
    return isinstance(value, str) and bool(_VSS_CODE.match(value)) and value[:2] in PROVINCES_63


def is_health_card_number(value: str | None) -> bool:
    return isinstance(value, str) and bool(_HEALTH_CARD.match(value))


def classify_id(value: str | None) -> str:
    """``personal_id``, ``old_id_number``, ``missing`` or ``invalid``."""
    if value is None or (isinstance(value, float)) or str(value).strip() == "":
        return "missing"
    text = str(value).strip()
    if is_personal_id(text):
        return "personal_id"
    if is_old_id_number(text):
        return "old_id_number"
    return "invalid"


def mask(value: str | None, keep: int = 3) -> str:
    """Mask personal data for logs and error messages: keep the last ``keep`` characters."""
    if value is None:
        return "<none>"
    text = str(value)
    if len(text) <= keep:
        return "*" * len(text)
    return "*" * (len(text) - keep) + text[-keep:]
