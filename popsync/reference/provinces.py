"""The 63 provinces, the 34 units in force since 1 July 2025, and the mapping between them.

The tables are data files shipped with the package (not the GPL ``vietnam-provinces`` package).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    region: str = ""
    population_thousands: int = 0


class UnknownProvinceError(ValueError):
    """A province code that is in neither scheme's table."""


def _read(name: str) -> list[dict[str, str]]:
    with resources.files("popsync.reference").joinpath("data", name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


PROVINCES_63: dict[str, Province] = {
    row["code"]: Province(
        row["code"], row["name"], row["region"], int(row["population_thousands"])
    )
    for row in _read("provinces_63.csv")
}
PROVINCES_34: dict[str, Province] = {
    row["code"]: Province(row["code"], row["name"]) for row in _read("provinces_34.csv")
}
SCHEME_63_TO_34: dict[str, str] = {
    row["code_63"]: row["code_34"] for row in _read("scheme_63_to_34.csv")
}


def _table(scheme: str) -> dict[str, Province]:
    if scheme == "63":
        return PROVINCES_63
    if scheme == "34":
        return PROVINCES_34
    raise ValueError(f"unknown province scheme {scheme!r}: use '63' or '34'")


def to_34(code_63: str) -> str:
    """The 34-scheme unit that a 63-scheme province belongs to since 1 July 2025."""
    try:
        return SCHEME_63_TO_34[code_63]
    except KeyError:
        raise UnknownProvinceError(f"unknown 63-scheme province code {code_63!r}") from None


def codes_63_of(code_34: str) -> list[str]:
    """The 63-scheme provinces merged into a 34-scheme unit."""
    if code_34 not in PROVINCES_34:
        raise UnknownProvinceError(f"unknown 34-scheme province code {code_34!r}")
    return sorted(old for old, new in SCHEME_63_TO_34.items() if new == code_34)


def province_name(code: str, scheme: str = "63") -> str:
    """The Vietnamese name of a province code in the given scheme."""
    try:
        return _table(scheme)[code].name
    except KeyError:
        raise UnknownProvinceError(f"unknown {scheme}-scheme province code {code!r}") from None


def convert(code: str, from_scheme: str, to_scheme: str) -> list[str]:
    """Convert a code between schemes; 34 -> 63 gives every merged province."""
    _table(from_scheme)
    _table(to_scheme)
    if from_scheme == to_scheme:
        province_name(code, from_scheme)
        return [code]
    if from_scheme == "63":
        return [to_34(code)]
    return codes_63_of(code)


def tile_positions(scheme: str) -> dict[str, tuple[int, int]]:
    """Each province's square on the tile map of a scheme: (row, column), north at row 0, west
    at column 0; approximate positions drawn by hand so that neighbours stay neighbours."""
    _table(scheme)
    return {row["code"]: (int(row["row"]), int(row["col"]))
            for row in _read(f"tiles_{scheme}.csv")}


@dataclass(frozen=True)
class Wards:
    """The wards and communes of the 63 provinces (``data/wards_63.csv``), in table order.

    Synthetic: 10,602 codes, about the 10,599 communes Vietnam had before the 2025 merger, dealt
    to each province in proportion to the square root of its population (which puts Hà Nội near
    its real 579 and Bắc Kạn near its 108); names are "Phường N" / "Xã N". Real codes of the
    national statistics office can replace the file: the generator reads only these columns.
    """

    province_code: tuple[str, ...]
    ward_code: tuple[str, ...]
    ward_name: tuple[str, ...]


def wards() -> Wards:
    rows = _read("wards_63.csv")
    return Wards(*(tuple(row[c] for row in rows) for c in ("province_code", "ward_code",
                                                           "ward_name")))
