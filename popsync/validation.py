"""Pydantic's validation errors as popsync's one-line messages: the key, what it must be, and the
value given ("workers must be an integer of at least 1, not 'two'")."""

from __future__ import annotations


def key_of(error: dict, prefix: str = "") -> str:
    """The dotted key an error is about (``partition.max_rows``; list items are not keys)."""
    parts = [str(p) for p in error["loc"] if not isinstance(p, int)]
    return ".".join(p for p in (prefix, *parts) if p)


def requirement(error: dict) -> str:
    """What the value must be, from the error (``must be a valid integer``)."""
    text = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if text.startswith("Input should be "):
        return "must be " + text.removeprefix("Input should be ")
    return text
