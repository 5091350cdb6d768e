"""Every reason code a result can carry, one rule each: when it applies (over the engine's
evidence on each registry row), its label, and what the office does about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Evidence:
    """What the decision stage knows of each registry row, as boolean arrays over the rows."""

    shown: np.ndarray  # linked or sent to review: the row names a person
    review: np.ndarray  # sent to review
    ambiguous: np.ndarray  # its runner-up is within the ambiguity gap of its best candidate
    # the registry's ID: none, an old 9-digit number, not a 12-digit personal ID
    id_missing: np.ndarray
    id_old: np.ndarray
    id_invalid: np.ndarray
    # the named person's value is the registry's (after canonical normalization); False when
    # no person is named
    id_equal: np.ndarray
    name_equal: np.ndarray
    birth_date_equal: np.ndarray
    gender_equal: np.ndarray
    # the registry's birth date is partial (year, or month and year) and fits the person's
    birth_date_fits_partially: np.ndarray
    # input the engine could not read
    name_empty: np.ndarray
    birth_date_unparsable: np.ndarray
    gender_unknown: np.ndarray
    province_unknown: np.ndarray  # a province code was given but is not a province
    deceased: np.ndarray  # the named person is deceased
    # reviewers' decisions (matching.decisions.Outcome): kept unmatched as decided not in the
    # population; a confirmation not applied (person now deceased, or now claimed by another
    # registration's exact personal ID); a decision the data moved away from
    decided_absent: np.ndarray
    confirmed_deceased: np.ndarray
    confirmed_claimed: np.ndarray
    decision_outdated: np.ndarray


@dataclass(frozen=True)
class Reason:
    code: str
    label: tuple[str, str]  # Vietnamese, English
    action: tuple[str, str]  # what the office does, Vietnamese and English
    # the rows it applies to (never synchronized ones); None: set by the one-person-one-
    # registration rule over whole results (matching.decide.resolve_duplicates)
    condition: Callable[[Evidence], np.ndarray] | None


def _id_not_found(e: Evidence) -> np.ndarray:
    """A 12-digit personal ID that is not the named person's (or names no one)."""
    return ~e.id_missing & ~e.id_old & ~e.id_invalid & ~e.id_equal


# In this order in every result's list (new codes go last: lists already written keep theirs).
RULES: tuple[Reason, ...] = (
    Reason("missing_id",
           ("Thiếu số định danh cá nhân", "Missing personal ID"),
           ("Thu thập số CCCD (số định danh cá nhân 12 chữ số) của người tham gia, đối chiếu "
            "với CSDL dân cư và cập nhật vào hồ sơ",
            "Collect the CCCD (12-digit personal ID) from the participant, check it against the "
            "population database and enter it"),
           lambda e: e.id_missing),
    Reason("old_id_number",
           ("Dùng số CMND cũ", "Old 9-digit ID number"),
           ("Thay số CMND cũ bằng số định danh cá nhân 12 chữ số",
            "Replace the old ID number with the 12-digit personal ID"),
           lambda e: e.id_old),
    Reason("id_invalid",
           ("Số định danh không hợp lệ", "Invalid personal ID"),
           ("Kiểm tra giấy tờ của người tham gia và nhập lại số định danh 12 chữ số",
            "Check the participant's papers and enter the 12-digit personal ID again"),
           lambda e: e.id_invalid),
    Reason("id_not_found",
           ("Số định danh không có trong CSDL dân cư",
            "Personal ID not in the population database"),
           ("Sửa số định danh theo CSDL dân cư, hoặc xác minh với người tham gia",
            "Correct the personal ID to the population database's, or check with the "
            "participant"),
           _id_not_found),
    Reason("name_mismatch",
           ("Họ tên không khớp", "Name differs"),
           ("Cập nhật họ tên theo đúng cách viết trong CSDL dân cư (đủ dấu)",
            "Update the name to the population database's spelling (with diacritics)"),
           lambda e: (e.shown & ~e.name_equal) | (~e.shown & e.name_empty)),
    Reason("birth_date_mismatch",
           ("Ngày sinh không khớp", "Birth date differs"),
           ("Sửa ngày sinh theo CSDL dân cư",
            "Correct the birth date to the population database's"),
           lambda e: (e.shown & ~e.birth_date_equal & ~e.birth_date_fits_partially)
           | (~e.shown & e.birth_date_unparsable)),
    Reason("birth_date_partial",
           ("Ngày sinh không đầy đủ", "Birth date incomplete"),
           ("Bổ sung ngày, tháng sinh theo CSDL dân cư",
            "Complete the birth date from the population database"),
           lambda e: e.shown & ~e.birth_date_equal & e.birth_date_fits_partially),
    Reason("gender_mismatch",
           ("Giới tính không khớp", "Gender differs"),
           ("Sửa giới tính theo CSDL dân cư",
            "Correct the gender to the population database's"),
           lambda e: (e.shown & ~e.gender_equal) | (~e.shown & e.gender_unknown)),
    Reason("duplicate_registration",
           ("Một người có nhiều mã số BHXH", "Same person registered twice"),
           ("Gộp các mã số BHXH của cùng một người thành một mã (các mã khác của người này "
            "được ghi kèm)",
            "Merge the person's social-insurance codes into one (the person's other codes are "
            "named with it)"),
           None),
    Reason("deceased",
           ("Đã qua đời theo CSDL dân cư", "Deceased in the population database"),
           ("Xác minh việc qua đời, báo giảm, dừng chi trả các chế độ và kiểm tra trợ cấp mai "
            "táng",
            "Verify the death, end the registration, stop the benefits and check the funeral "
            "allowance"),
           lambda e: e.deceased),
    Reason("ambiguous",
           ("Nhiều người gần giống, cần xác minh", "Several close candidates"),
           ("Xác minh với người tham gia để chọn đúng người",
            "Check with the participant which of the candidates they are"),
           lambda e: e.review & e.ambiguous),
    Reason("no_candidate",
           ("Không tìm thấy trong CSDL dân cư", "Not found in the population database"),
           ("Xác minh giấy tờ tùy thân của người tham gia (có thể là người nước ngoài)",
            "Check the participant's identity papers (they may be a foreigner)"),
           lambda e: ~e.shown & ~e.decided_absent),
    Reason("province_unknown",
           ("Mã tỉnh không hợp lệ", "Unknown province code"),
           ("Sửa mã tỉnh theo danh mục 63 tỉnh, thành phố",
            "Correct the province code to one of the 63-province list"),
           lambda e: e.province_unknown),
    Reason("not_in_population",
           ("Đã xác minh: không có trong CSDL dân cư",
            "Reviewed: not in the population database"),
           ("Không cần đối chiếu lại; cập nhật khi người tham gia có số định danh cá nhân",
            "Nothing to match again; update when the participant gets a personal ID"),
           lambda e: e.decided_absent),
    Reason("confirmed_person_deceased",
           ("Người đã được xác nhận nay đã qua đời theo CSDL dân cư",
            "The person a reviewer confirmed is now deceased"),
           ("Xác minh lại: báo giảm nếu đúng người, hoặc hủy xác nhận",
            "Review again: end the registration if it is the right person, or revoke the "
            "confirmation"),
           lambda e: e.confirmed_deceased),
    Reason("confirmed_person_claimed",
           ("Số định danh của người đã được xác nhận nay do mã số BHXH khác kê khai",
            "Another registration now gives the confirmed person's personal ID"),
           ("Xác minh lại xem hai mã số BHXH có phải của cùng một người",
            "Review again whether the two registrations are the same person"),
           lambda e: e.confirmed_claimed),
    Reason("decision_outdated",
           ("Dữ liệu dân cư đã thay đổi sau lần xác minh trước",
            "Population data changed since a reviewer's decision"),
           ("Xác minh lại với các ứng viên hiện có",
            "Review again against the present candidates"),
           lambda e: e.decision_outdated),
)

CODES: tuple[str, ...] = tuple(reason.code for reason in RULES)
BY_CODE: dict[str, Reason] = {reason.code: reason for reason in RULES}


def flags(evidence: Evidence) -> dict[str, np.ndarray]:
    """Per reason with a condition, the rows it applies to (before synchronized rows are
    cleared of every reason)."""
    return {reason.code: np.asarray(reason.condition(evidence), bool)
            for reason in RULES if reason.condition is not None}
