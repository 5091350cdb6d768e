"""Status and reason labels in Vietnamese and English: one table for the lists and the portal."""

from __future__ import annotations

from popsync.reasons import RULES

# code -> (Vietnamese, English)
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "synchronized": ("Đã đồng bộ", "Synchronized"),
    "needs_correction": ("Cần điều chỉnh", "Needs correction"),
    "needs_review": ("Cần xác minh", "Needs review"),
    "unmatched": ("Không tìm thấy", "Unmatched"),
}
# each reason's label lives in its rule (popsync.reasons), beside its condition and action
REASON_LABELS: dict[str, tuple[str, str]] = {reason.code: reason.label for reason in RULES}


def vietnamese(table: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {code: pair[0] for code, pair in table.items()}
# what the office does about each reason, (Vietnamese, English): the lists' action column, and
# the portal's
ACTION_LABELS: dict[str, tuple[str, str]] = {reason.code: reason.action for reason in RULES}
