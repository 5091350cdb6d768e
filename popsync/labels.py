"""Status and reason labels in Vietnamese and English: one table for the lists and the portal."""

from __future__ import annotations

# code -> (Vietnamese, English)
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "synchronized": ("Đã đồng bộ", "Synchronized"),
    "needs_correction": ("Cần điều chỉnh", "Needs correction"),
    "needs_review": ("Cần xác minh", "Needs review"),
    "unmatched": ("Không tìm thấy", "Unmatched"),
}
REASON_LABELS: dict[str, tuple[str, str]] = {
    "missing_id": ("Thiếu số định danh cá nhân", "Missing personal ID"),
    "old_id_number": ("Dùng số CMND cũ", "Old 9-digit ID number"),
    "id_invalid": ("Số định danh không hợp lệ", "Invalid personal ID"),
    "id_not_found": ("Số định danh không có trong CSDL dân cư",
                     "Personal ID not in the population database"),
    "name_mismatch": ("Họ tên không khớp", "Name differs"),
    "birth_date_mismatch": ("Ngày sinh không khớp", "Birth date differs"),
    "birth_date_partial": ("Ngày sinh không đầy đủ", "Birth date incomplete"),
    "gender_mismatch": ("Giới tính không khớp", "Gender differs"),
    "duplicate_registration": ("Một người có nhiều mã số BHXH", "Same person registered twice"),
    "deceased": ("Đã qua đời theo CSDL dân cư", "Deceased in the population database"),
    "ambiguous": ("Nhiều người gần giống, cần xác minh", "Several close candidates"),
    "no_candidate": ("Không tìm thấy trong CSDL dân cư", "Not found in the population database"),
}


def vietnamese(table: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {code: pair[0] for code, pair in table.items()}
