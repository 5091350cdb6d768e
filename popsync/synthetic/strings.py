"""Vectorized string building: digits and codes as code-point matrices, names as Arrow arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as a (rows, width) code-point matrix."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[:, None] // powers) % 10 + ord("0")).astype(
        np.uint32
    )


def char_matrix(text: str, rows: int) -> np.ndarray:
    """A constant text repeated on every row, as a code-point matrix."""
    return np.tile(np.array([ord(c) for c in text], dtype=np.uint32), (rows, 1))


def to_unicode(matrix: np.ndarray) -> np.ndarray:
    """A (rows, width) code-point matrix as a numpy unicode array of strings of that width."""
    matrix = np.ascontiguousarray(matrix, dtype=np.uint32)
    return matrix.view(f"U{matrix.shape[1]}").ravel()


def to_matrix(strings: np.ndarray) -> np.ndarray:
    """A numpy unicode array as a writable (rows, width) code-point matrix (zero-padded)."""
    width = strings.dtype.itemsize // 4
    return strings.astype(f"U{width}").view(np.uint32).reshape(len(strings), width).copy()


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal strings of non-negative integers (numpy unicode array)."""
    return to_unicode(digit_matrix(values, width))


def date_strings(days: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD`` strings of datetime64[D] values (numpy unicode array)."""
    years, months, day_of_month = date_parts(days)
    rows = len(days)
    return to_unicode(np.hstack([
        digit_matrix(years, 4), char_matrix("-", rows), digit_matrix(months, 2),
        char_matrix("-", rows), digit_matrix(day_of_month, 2),
    ]))


def date_parts(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day of month of datetime64[D] values."""
    month_start = days.astype("datetime64[M]")
    years = days.astype("datetime64[Y]").astype(np.int64) + 1970
    months = month_start.astype(np.int64) % 12 + 1
    day_of_month = (days - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    return years, months, day_of_month


def make_dates(years: np.ndarray, months: np.ndarray, day_of_month: np.ndarray) -> np.ndarray:
    """datetime64[D] from parts; a day past the month's end becomes its last day (29 Feb)."""
    month_index = (np.asarray(years, dtype=np.int64) - 1970) * 12 + np.asarray(months) - 1
    month_start = month_index.astype("datetime64[M]").astype("datetime64[D]")
    next_start = (month_index + 1).astype("datetime64[M]").astype("datetime64[D]")
    month_length = (next_start - month_start).astype(np.int64)
    return month_start + np.minimum(np.asarray(day_of_month), month_length) - 1


def join_words(*parts: pa.Array) -> pa.Array:
    """Join name parts with single spaces, leaving out empty parts.

    Not ``binary_join_element_wise(null_handling="skip")``: in pyarrow 26 it drops the rows whose
    parts are all null, shortening the array.
    """
    joined = pc.binary_join_element_wise(*parts, " ")
    return pc.utf8_trim(pc.replace_substring_regex(joined, " {2,}", " "), " ")


def take(strings: list[str], indices: np.ndarray) -> pa.Array:
    """Strings of a table at the given indices, as an Arrow string array."""
    return pa.array(strings, pa.string()).take(pa.array(indices))


def scatter(values: pa.Array, mask: np.ndarray, change) -> pa.Array:
    """Replace the rows under ``mask`` by ``change(those rows)``, leaving the others as they are."""
    if not mask.any():
        return values
    changed = change(values.filter(pa.array(mask)))
    return pc.replace_with_mask(values, pa.array(mask), changed)
