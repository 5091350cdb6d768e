"""Where registry rows belong: each participant's ward and address, and the employer (đơn vị)
that pays for them; voluntary and household participants under their ward's collection agent.

Drawn from a random stream of their own (``generate_chunks`` derives it from the seed and the
chunk), after every other column: the names, dates and identifiers of a seed stay what they
were, and the matching fields never depend on these.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from popsync.reference.provinces import wards
from popsync.synthetic.strings import digits

# Employer sizes: a Pareto tail (shape 1.1) from 3 employees, capped: most units have a handful
# of employees, a few have thousands; about 20 on average (some 900,000 units for the nation's
# 18 million compulsory participants; the last unit of a province's chunk may be smaller).
SIZE_SHAPE, SIZE_FLOOR = 1.1, 3
MAX_EMPLOYEES = 20_000
# Collection agents' codes are the ward's, behind this prefix; employers' are province, chunk,
# serial behind theirs.
AGENT_PREFIX, EMPLOYER_PREFIX = "DL", "DV"
_EMPLOYER_KINDS = np.array(["Công ty TNHH", "Công ty cổ phần", "Doanh nghiệp tư nhân",
                            "Hợp tác xã", "Trường", "Bệnh viện", "Ủy ban nhân dân"])
_KIND_WEIGHTS = np.cumsum([0.55, 0.20, 0.10, 0.05, 0.05, 0.02, 0.03])
_HAMLETS = np.array(["Tổ", "Thôn", "Khu phố", "Ấp"])


@functools.cache
def _ward_table() -> tuple[np.ndarray, np.ndarray, pa.Array, pa.Array]:
    """Each province's first ward and ward count (indexed by province code), and the wards'
    codes and names."""
    table = wards()
    province = np.array(table.province_code, dtype=np.int64)
    first = np.zeros(100, dtype=np.int64)
    count = np.zeros(100, dtype=np.int64)
    codes, starts, counts = np.unique(province, return_index=True, return_counts=True)
    first[codes], count[codes] = starts, counts
    return first, count, pa.array(table.ward_code, pa.string()), pa.array(table.ward_name,
                                                                           pa.string())


@functools.cache
def _agents() -> tuple[pa.Array, pa.Array]:
    """Each ward's collection agent: code and name, in the ward table's order."""
    _, _, ward_codes, ward_names = _ward_table()
    return (pc.binary_join_element_wise(AGENT_PREFIX, ward_codes, ""),
            pc.binary_join_element_wise("Đại lý thu", ward_names, " "))


def draw_wards(rng: np.random.Generator, province: np.ndarray) -> np.ndarray:
    """A ward (row of the ward table) in each row's province, uniformly."""
    first, count, _, _ = _ward_table()
    if (count[province] == 0).any():
        raise ValueError("a province code with no ward in wards_63.csv")
    return first[province] + (rng.random(len(province)) * count[province]).astype(np.int64)


def employer_sizes(rng: np.random.Generator, employees: int) -> np.ndarray:
    """Sizes of the employers that ``employees`` people work for (summing to it exactly)."""
    sizes = []
    left = employees
    while left > 0:  # a few rounds: the mean size is about 20
        draw = np.minimum(np.floor(SIZE_FLOOR * rng.random(max(16, left // 20))
                                   ** (-1 / SIZE_SHAPE)), MAX_EMPLOYEES).astype(np.int64)
        ends = np.cumsum(draw)
        kept = draw[: np.searchsorted(ends, left) + 1]
        kept[-1] -= max(0, int(kept.sum()) - left)
        sizes.append(kept[kept > 0])
        left -= int(kept.sum())
    return np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int64)


def place(rng: np.random.Generator, province_code: pa.Array, compulsory: np.ndarray,
          chunk: int) -> dict[str, pa.Array]:
    """Ward, address and employer of each registry row of a chunk.

    Compulsory participants work for employers of their registering province (employers are
    drawn per chunk, so one never spans chunks: sizes up to ``MAX_EMPLOYEES`` within a chunk of
    500,000 people); everyone else is under the collection agent of their ward.
    """
    province = pc.cast(province_code, pa.int64()).to_numpy(zero_copy_only=False)
    ward = draw_wards(rng, province)
    _, _, ward_codes, ward_names = _ward_table()
    ward_code = ward_codes.take(pa.array(ward))
    ward_name = ward_names.take(pa.array(ward))
    rows = len(province)
    house = pa.array(digits(rng.integers(1, 300, rows), 3), pa.string())
    hamlet = pa.array(_HAMLETS[rng.integers(0, len(_HAMLETS), rows)], pa.string())
    hamlet_number = pa.array(digits(rng.integers(1, 30, rows), 2), pa.string())
    address = pc.binary_join_element_wise(
        pc.utf8_ltrim(house, "0"), pc.binary_join_element_wise(hamlet, pc.utf8_ltrim(
            hamlet_number, "0"), " "), ward_name, ", ")

    # Each row's unit: its ward's collection agent (units 0 .. wards - 1), or an employer.
    agent_codes, agent_names = _agents()
    unit = ward.copy()
    codes, names = [agent_codes], [agent_names]
    employers = len(agent_codes)
    workers = np.flatnonzero(compulsory)
    order = workers[np.argsort(province[workers], kind="stable")]
    order_province = province[order]
    for code in np.unique(order_province):  # a loop over provinces, not rows
        members = order[order_province == code]
        sizes = employer_sizes(rng, len(members))
        serial = digits(np.arange(len(sizes)), 5)
        prefix = f"{code:02d}{chunk:04d}"
        kinds = _EMPLOYER_KINDS[np.searchsorted(_KIND_WEIGHTS, rng.random(len(sizes)))]
        codes.append(pa.array(np.char.add(f"{EMPLOYER_PREFIX}{prefix}", serial), pa.string()))
        names.append(pa.array(np.char.add(np.char.add(kinds, f" số {prefix}"), serial),
                              pa.string()))
        unit[members[rng.permutation(len(members))]] = employers + np.repeat(
            np.arange(len(sizes)), sizes)
        employers += len(sizes)
    taken = pa.array(unit)
    return {
        "ward_code": ward_code,
        "address": address,
        "employer_code": pa.concat_arrays(codes).take(taken),
        "employer_name": pa.concat_arrays(names).take(taken),
    }
