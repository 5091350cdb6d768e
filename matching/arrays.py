"""Hash-based distinct/count helpers over integer arrays (numpy's unique sorts or hashes slowly
on millions of 64-bit keys; pandas' factorize is one hash pass)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes (in order of first appearance) and the distinct values."""
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def counts_per_row(values: np.ndarray) -> np.ndarray:
    """For each row, how many rows hold the same value."""
    codes, _ = factorize(values)
    return np.bincount(codes)[codes] if len(codes) else np.zeros(0, np.int64)


def repeated(values: np.ndarray) -> np.ndarray:
    """For each row, whether another row holds the same value. One sort finds the few repeated
    values; a hash table over a million distinct ones (factorize) takes several times longer."""
    ordered = np.sort(values)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    return pd.Index(np.unique(twice)).get_indexer(values) >= 0


def first_rows(codes: np.ndarray, n_distinct: int) -> np.ndarray:
    """Row of the first occurrence of each code."""
    first = np.zeros(n_distinct, np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return first


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    values = np.sort(values)
    keep = np.ones(len(values), bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def argsort_keys(keys: np.ndarray) -> np.ndarray:
    """The order sorting 64-bit keys (rows of equal keys in any order). Sorting the keys with
    their row packed into the low bits is three times faster than an argsort (numpy sorts plain
    integers with SIMD, an argsort it does not); keys that differ only in those low bits come
    out in row order and are put right by a stable sort of the nearly sorted result."""
    n = len(keys)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    bits = np.uint64(int(n - 1).bit_length())
    low = (np.uint64(1) << bits) - np.uint64(1)
    packed = (keys.view(np.uint64) & ~low) | np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & low).astype(np.int64)
    ordered = keys[order]
    if (ordered[1:] < ordered[:-1]).any():
        order = order[np.argsort(ordered, kind="stable")]
    return order
