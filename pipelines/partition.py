"""Fan-out of matching: the registry cut into birth-year bands, each band matched against only the
population slice it can link to.

Why birth year, not province: a participant is often registered in another province than the
one they live in (half of Bình Dương's population are migrants), so a province slice of the
population would lose real links. Birth year travels with the person: the errors seen in
registries keep the year (partial dates, day/month swapped) or move it by one, so a band
[lo, hi] is matched against population born in [lo - 1, hi + 1], plus everyone whose personal
ID or old ID number a band row quotes (a wrong birth date with a right ID is still found).
A registry row without a readable birth year is banded by the year its 12-digit personal ID
encodes; a row with neither can only be found by its ID (no name pass blocks without a year),
so it meets persons without a year and those it quotes.

Each band holds at most ``max_rows`` registry rows. Bands whose years lie within two
consecutive years form a cohort (one matching task), which reads its population slice once and
normalizes it once for all its bands. Nothing is copied or sorted across the nation for this:
extract writes each chunk's rows in year order in small row groups, so a cohort reads its
years' registry rows and persons (the columns matching uses) from a few row groups of each
chunk, and the persons its bands quote by ID from other years from a file per band (one join
for all bands). A matching task's time and memory are bounded by its cohort, never by the
nation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from expectations.nation import files_sql
from matching.blocking import BIRTH_YEAR_MARGIN as YEAR_MARGIN
from matching.normalize import BIRTH_YEAR_MAX, BIRTH_YEAR_MIN
from popsync.contracts import CONFIRMED, POPULATION_REQUIRED, REGISTRY_REQUIRED

BIRTH_YEAR = "birth_year"  # helper columns of the work folder's source chunks
ID_YEAR = "id_year"  # the year a 12-digit personal ID encodes
BAND_YEAR = "band_year"  # registry: the birth year, else the ID's year
YEAR_RANK = "year_rank"  # registry: rank among the chunk's rows of its band year
SOURCE_ROW = "source_row"  # helper column: 1-based row in the source
CHUNK_ROW_GROUP = 32_768  # a chunk's rows by year in small row groups: a band reads few
_BOOLEAN_COLUMNS = frozenset(("scheme_si_compulsory", "scheme_si_voluntary", "scheme_hi",
                              "scheme_ui", "is_deceased"))


def birth_year(birth_date) -> pa.Array | pa.ChunkedArray:
    """Year of ``YYYY[-MM[-DD]]`` text (a pandas or Arrow column) within the engine's range, else
    null, as Arrow int16."""
    if isinstance(birth_date, pd.Series):
        birth_date = pa.array(birth_date, type=pa.string(), from_pandas=True)
    head = pc.utf8_slice_codeunits(birth_date, 0, 4)
    readable = pc.fill_null(pc.match_substring_regex(head, r"^\d{4}$"), False)
    year = pc.cast(pc.if_else(readable, head, pa.scalar(None, head.type)), pa.int16())
    known = pc.and_(pc.greater_equal(year, BIRTH_YEAR_MIN), pc.less_equal(year, BIRTH_YEAR_MAX))
    return pc.if_else(known, year, pa.scalar(None, pa.int16()))


def chunk_table(frame: pd.DataFrame, first_row: int) -> pa.Table:
    """A canonical chunk as Arrow, with its 1-based source rows and its birth years; types fixed
    (text as strings, flags as booleans) so that every chunk of a source has one schema; its rows
    in the order of their (band) year, then source row, so that written in small row groups
    (``CHUNK_ROW_GROUP``) a reader of a few years skips the rest of the chunk."""
    frame = frame.assign(**{SOURCE_ROW: np.arange(first_row, first_row + len(frame))})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name == SOURCE_ROW:
            fields.append(pa.field(name, pa.int64()))
        elif name in _BOOLEAN_COLUMNS:
            fields.append(pa.field(name, pa.bool_()))
        elif pa.types.is_null(column.type) or pa.types.is_string(column.type) or (
            pa.types.is_large_string(column.type)
        ):
            fields.append(pa.field(name, pa.string()))
        else:
            fields.append(pa.field(name, column.type))
    table = table.cast(pa.schema(fields))
    table = table.append_column(BIRTH_YEAR, birth_year(table["birth_date"]))
    if "personal_id" in table.column_names:  # the population
        return table.append_column(ID_YEAR, id_year(table["personal_id"])).sort_by(
            [(BIRTH_YEAR, "ascending"), (SOURCE_ROW, "ascending")])
    ids = id_year(table["national_id"])
    band = pc.coalesce(table[BIRTH_YEAR], ids)
    # rank among this chunk's rows of the same band year, in source order: with per-chunk
    # counts, a row's place in the nation's (year, source row) order needs no sort
    key = pd.Series(pc.fill_null(band, -1).to_numpy())
    rank = key.groupby(key.to_numpy(), sort=False).cumcount().to_numpy()
    return (table.append_column(ID_YEAR, ids).append_column(BAND_YEAR, band)
            .append_column(YEAR_RANK, pa.array(rank, pa.int64()))
            .sort_by([(BAND_YEAR, "ascending"), (SOURCE_ROW, "ascending")]))


def stated_year(registry: pd.DataFrame) -> pd.Series:
    """The registry's birth year, else the year its 12-digit ID encodes (nullable Int16)."""
    year = pc.coalesce(birth_year(pa.array(registry["birth_date"], pa.string())),
                       id_year(pa.array(registry["national_id"], pa.string())))
    return pd.Series(year.to_pandas(types_mapper=pd.ArrowDtype), index=registry.index)


def id_year(ids) -> pa.Array | pa.ChunkedArray:
    """The birth year a 12-digit personal ID encodes (digit 4: century and gender, digits 5-6:
    the year) within the engine's range, else null, as Arrow int16."""
    twelve = pc.fill_null(pc.match_substring_regex(ids, r"^[0-9]{3}[0-5][0-9]{8}$"), False)
    plain = pc.if_else(twelve, ids, pa.scalar("000000000000", pa.string()))
    century = pc.cast(pc.utf8_slice_codeunits(plain, 3, 4), pa.int16())
    digits = pc.cast(pc.utf8_slice_codeunits(plain, 4, 6), pa.int16())
    year = pc.add(pc.add(pc.multiply(pc.divide(century, 2), 100), 1900), digits)
    known = pc.and_(pc.greater_equal(year, BIRTH_YEAR_MIN), pc.less_equal(year, BIRTH_YEAR_MAX))
    return pc.if_else(pc.and_(twelve, known), pc.cast(year, pa.int16()),
                      pa.scalar(None, pa.int16()))


# A registry row's year for banding: its birth year, else the year its 12-digit personal ID
# encodes (digit 4: century and gender, digits 5-6: the year), so that a row with an unreadable
# birth date still meets only a few years of the population, not the nation.
def plan(sql, chunks: list[str], max_rows: int) -> list[dict]:
    """Cut the registry into bands of at most ``max_rows`` rows, in the order of year (the birth
    year, else the one the personal ID encodes) then source row (rows with neither last, in
    bands of their own). Nothing is copied: a band is read from the chunks.

    A row's place in that order is the rows of earlier years, plus those of its year in earlier
    chunks (the chunks are in source order), plus its rank among its year's rows in its chunk
    (``year_rank``, counted at extract); its band is that place // ``max_rows``. So a band spec
    holds, per chunk and year of the band, where the year's rows of the chunk start (``chunks``:
    [file, year, start, first band]): a count per chunk and year, no sort over the nation.
    """
    counts = sql.execute(
        f"SELECT filename, {BAND_YEAR}, count(*) FROM read_parquet({files_sql(chunks)}, "
        "filename = true) GROUP BY ALL").fetchall()
    order = {str(c): i for i, c in enumerate(chunks)}
    per_year: dict = {}
    for _, year, n in counts:
        per_year[year] = per_year.get(year, 0) + n
    year_start, before = {}, 0
    for year in sorted(y for y in per_year if y is not None):
        year_start[year], before = before, before + per_year[year]
    first_unknown_band = -(-before // max_rows)
    bands: dict[int, dict] = {}

    def cover(first: int, n: int, base: int, year) -> None:  # places first .. first + n - 1
        for band in range(first // max_rows, (first + n - 1) // max_rows + 1):
            rows = min(first + n, (band + 1) * max_rows) - max(first, band * max_rows)
            spec = bands.setdefault(base + band, {
                "index": base + band, "rows": 0, "max_rows": max_rows, "year_min": year,
                "year_max": year, "chunks": []})
            spec["rows"] += rows
            spec["year_max"] = year

    for year in sorted(y for y in per_year if y is not None):
        cover(year_start[year], per_year[year], 0, year)
    if None in per_year:
        cover(0, per_year[None], first_unknown_band, None)
    seen: dict = {}
    for filename, year, n in sorted(counts, key=lambda c: order[c[0]]):
        earlier = seen.get(year, 0)
        seen[year] = earlier + n
        base, start = (first_unknown_band, earlier) if year is None else (
            0, year_start[year] + earlier)
        for band in range(base + start // max_rows, base + (start + n - 1) // max_rows + 1):
            bands[band]["chunks"].append([filename, year, start, base])
    return [bands[b] for b in sorted(bands)]


def write_specs(specs: list[dict], folder: Path, kind: str = "cohort") -> list[str]:
    paths = []
    for spec in specs:
        path = folder / f"{kind}-{spec['index']:05d}.json"
        path.write_text(json.dumps(spec), encoding="utf-8")
        paths.append(str(path))
    return paths


def cohort_registry(cohort: dict) -> dict[int, pa.Table]:
    """The registry rows of each band of a cohort (the columns matching reads, in band-year,
    then source order), read from the chunks' row groups of the cohort's years."""
    offsets: dict[str, dict] = {}
    for band in cohort["bands"]:
        for filename, year, start, base in band["chunks"]:
            offsets.setdefault(filename, {})[year] = (start, base)
    max_rows = cohort["bands"][0]["max_rows"]
    year = ds.field(BAND_YEAR)
    wanted = year.is_null() if cohort["year_min"] is None else (
        (year >= cohort["year_min"]) & (year <= cohort["year_max"]))
    columns = [*REGISTRY_REQUIRED, BAND_YEAR, SOURCE_ROW]
    pieces = []
    for filename, starts in offsets.items():
        table = pq.read_table(filename, columns=[*columns, YEAR_RANK], filters=wanted)
        years = pc.fill_null(table[BAND_YEAR], -1).to_numpy()
        # -1: a year of this chunk whose rows all lie in other cohorts' bands
        start, base = np.zeros(len(table), np.int64), np.full(len(table), -1, np.int64)
        for y, (first, first_band) in starts.items():
            at = years == (-1 if y is None else y)
            start[at], base[at] = first, first_band
        band = np.where(base >= 0, base + (start + table[YEAR_RANK].to_numpy()) // max_rows, -1)
        pieces.append(table.select(columns).append_column("band", pa.array(band)))
    every = pa.concat_tables(pieces).sort_by(
        [("band", "ascending"), (BAND_YEAR, "ascending"), (SOURCE_ROW, "ascending")])
    bands = every["band"].to_numpy()
    frames = {}
    for band in cohort["bands"]:
        lo, hi = np.searchsorted(bands, [band["index"], band["index"] + 1])
        frames[band["index"]] = every.slice(lo, hi - lo).select(list(REGISTRY_REQUIRED))
        if len(frames[band["index"]]) != band["rows"]:
            raise RuntimeError(f"band {band['index']}: {len(frames[band['index']])} registry "
                               f"rows read, {band['rows']} planned")
    return frames


def person_partition(results: pd.DataFrame, count: int) -> np.ndarray:
    """The partition (0 .. count - 1) of each result row's person: a stable hash of its linked
    personal ID, else of its VSS code (a row linked to nobody is a person of its own)."""
    key = results["personal_id"].fillna(results["vss_code"]).astype(str).to_numpy(dtype=object)
    return (pd.util.hash_array(key) % np.uint64(count)).astype(np.int64)


def cohorts(bands: list[dict], persons_per_year: dict, max_persons: int) -> list[dict]:
    """Consecutive bands grouped into cohorts, one matching task each, which reads and prepares
    its population slice once for all its bands: bands whose years lie within two consecutive
    years, while the slice (those years plus the margin, and persons without a year) holds at
    most ``max_persons`` persons, or no more than one of its bands reads alone (a band across
    the turn of a year reads those four years anyway: the bands of either year join it at no
    cost in memory). A band of many years, or of rows without a year, is a cohort of its own;
    so is every band when ``max_persons`` is 0."""

    def persons(lo: int, hi: int) -> int:
        return persons_per_year.get(None, 0) + sum(
            persons_per_year.get(y, 0) for y in range(lo - YEAR_MARGIN, hi + YEAR_MARGIN + 1))

    groups: list[list[dict]] = []
    for band in bands:
        last = groups[-1] if groups else []
        if (max_persons and last and band["year_min"] is not None
                and last[0]["year_min"] is not None):
            lo = min(band["year_min"], last[0]["year_min"])
            hi = max(band["year_max"], last[-1]["year_max"])
            alone = max(persons(b["year_min"], b["year_max"]) for b in (*last, band))
            if hi - lo <= 1 and persons(lo, hi) <= max(max_persons, alone):
                last.append(band)
                continue
        groups.append([band])
    return [
        {
            "index": i,
            "bands": group,
            "year_min": group[0]["year_min"],
            "year_max": None if group[0]["year_min"] is None else
            max(b["year_max"] for b in group),
        }
        for i, group in enumerate(groups)
    ]


def _in_years(spec: dict) -> ds.Expression:
    """Persons a band or cohort reads by year: born in its years plus the margin, or without
    a readable year (they may be anyone's match)."""
    year = ds.field(BIRTH_YEAR)
    wanted = year.is_null()
    if spec["year_min"] is not None:
        wanted = wanted | (
            (year >= spec["year_min"] - YEAR_MARGIN) & (year <= spec["year_max"] + YEAR_MARGIN))
    return wanted


def read_cohort(cohort: dict, population: list[str], quoted: Path | None = None,
                unlinkable: Path | None = None) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """The population a cohort's bands can link to (needed columns only, in birth-year, then
    source row order) and, per band, the rows of it the band reads: persons born in the band's
    years plus the margin or without a readable year (a filter the year-sorted chunks answer
    from a few row groups), and the persons its rows quote by ID from other years
    (``quoted/band=N``, joined once for all bands by ``quoted_persons``); never the source rows
    listed in ``unlinkable``."""
    columns = [*POPULATION_REQUIRED, BIRTH_YEAR, SOURCE_ROW]
    table = ds.dataset(population, format="parquet").to_table(
        columns=columns, filter=_in_years(cohort), batch_readahead=2, fragment_readahead=1)
    kept = np.ones(len(table), bool)
    if unlinkable is not None:
        excluded = pq.read_table(unlinkable)[SOURCE_ROW]
        kept = ~pc.is_in(table[SOURCE_ROW], value_set=excluded).to_numpy(zero_copy_only=False)
    quotes = {}
    for band in cohort["bands"]:
        if quoted is not None and (quoted / f"band={band['index']}").exists():
            quotes[band["index"]] = pq.read_table(quoted / f"band={band['index']}",
                                                  columns=columns).cast(table.schema)
    if quotes:
        # a person one band quotes may be in another band's years, or quoted by two bands (a
        # quoted person is never an unlinkable one: quoted_persons leaves those out)
        extra = pa.concat_tables(list(quotes.values()))
        extra = extra.filter(pc.invert(pc.is_in(extra[SOURCE_ROW],
                                                value_set=table[SOURCE_ROW])))
        _, once = np.unique(extra[SOURCE_ROW].to_numpy(), return_index=True)
        table = pa.concat_tables([table, extra.take(pa.array(np.sort(once)))])
        kept = np.concatenate([kept, np.ones(len(once), bool)])
    # one gather of the kept rows in (birth year, source row) order, persons without a year
    # last: the slice is held once, not once read and once sorted
    rows = np.flatnonzero(kept)
    year = pc.fill_null(table[BIRTH_YEAR], np.iinfo(np.int16).max).to_numpy()[rows]
    source_row = table[SOURCE_ROW].to_numpy()[rows]
    order = np.lexsort((source_row, year))
    rows, year, source_row = rows[order], year[order], source_row[order]
    year = np.where(year == np.iinfo(np.int16).max, -1, year)  # -1: no readable year
    reads = {}
    for band in cohort["bands"]:
        mine = year < 0
        if band["year_min"] is not None:
            mine |= (year >= band["year_min"] - YEAR_MARGIN) & (
                year <= band["year_max"] + YEAR_MARGIN)
        if band["index"] in quotes:
            mine |= np.isin(source_row, quotes[band["index"]][SOURCE_ROW].to_numpy())
        reads[band["index"]] = np.flatnonzero(mine)
    frame = table.select(list(POPULATION_REQUIRED)).take(pa.array(rows)).to_pandas()
    return frame, reads


def quoted_persons(sql, bands: list[dict], registry: list[str], population: list[str],
                   out: Path, unlinkable: Path | None = None,
                   decisions: Path | None = None) -> None:
    """Per band, the persons its rows quote by personal ID or old ID number, or that a reviewer
    confirmed as a row's person (``decisions``, contracts.DECISION_COLUMNS), who are born outside
    the band's years and margin (a wrong birth date with a right ID or a confirmation is still
    found), under ``out/band=N``: joins of the registry's IDs with the population for all bands
    at once, leaving out the persons ``unlinkable`` lists.

    A person's ID encodes their birth year, so a quoted 12-digit ID whose year lies in the band
    names a person already in its slice: only IDs encoding another year, persons whose birth
    date disagrees with their ID (few), and old 9-digit numbers (no year) need joining, which
    keeps every join's build side small at any size of the nation.
    """
    sql.execute("CREATE TEMP TABLE band_years (band BIGINT, lo SMALLINT, hi SMALLINT)")
    sql.executemany("INSERT INTO band_years VALUES (?, ?, ?)", [
        (s["index"], s["year_min"], s["year_max"]) for s in bands])
    sql.execute(f"CREATE TEMP TABLE chunk_year_start (filename VARCHAR, {BAND_YEAR} SMALLINT, "
                "start BIGINT, base_band BIGINT)")
    sql.executemany("INSERT INTO chunk_year_start VALUES (?, ?, ?, ?)", sorted({
        tuple(entry) for s in bands for entry in s["chunks"]}, key=str))
    max_rows = bands[0]["max_rows"] if bands else 1

    def outside(year: str) -> str:
        return (f"(q.lo IS NULL OR {year} < q.lo - {YEAR_MARGIN} "
                f"OR {year} > q.hi + {YEAR_MARGIN})")

    # every registry row with its band's years (a stream: never held whole)
    banded = (
        f"(SELECT b.band, r.vss_code, r.national_id, r.{ID_YEAR}, b.lo, b.hi FROM "
        f"read_parquet({files_sql(registry)}, filename = true) r "
        f"JOIN chunk_year_start s ON r.filename = s.filename "
        f"AND r.{BAND_YEAR} IS NOT DISTINCT FROM s.{BAND_YEAR} "
        f"JOIN band_years b ON b.band = s.base_band + (s.start + r.{YEAR_RANK}) // {max_rows})")
    quotes = f"(SELECT * FROM {banded} WHERE national_id IS NOT NULL)"
    columns = ", ".join(f"p.{c}" for c in (*POPULATION_REQUIRED, BIRTH_YEAR, SOURCE_ROW))
    left_out = ("" if unlinkable is None else
                f" AND p.{SOURCE_ROW} NOT IN (SELECT {SOURCE_ROW} FROM '{unlinkable}')")
    persons = f"read_parquet({files_sql(population)})"
    # each join has one small side, held in a temporary table: IDs encoding a year outside
    # their band's, old 9-digit numbers, persons born in another year than their ID says
    sql.execute(f"CREATE TEMP TABLE far AS SELECT * FROM {quotes} q "
                f"WHERE {outside('q.' + ID_YEAR)}")
    sql.execute(f"CREATE TEMP TABLE old AS SELECT * FROM {quotes} q "
                f"WHERE length(q.national_id) = 9")
    sql.execute(f"CREATE TEMP TABLE odd AS SELECT * FROM {persons} p "
                f"WHERE p.{BIRTH_YEAR} IS DISTINCT FROM p.{ID_YEAR} AND p.{BIRTH_YEAR} IS NOT NULL"
                f"{left_out}")
    found = f"p.{BIRTH_YEAR} IS NOT NULL AND {outside('p.' + BIRTH_YEAR)}{left_out}"
    sql.execute(
        f"CREATE TEMP TABLE quoted AS "
        f"SELECT q.band, {columns} FROM far q JOIN {persons} p "
        f"ON p.personal_id = q.national_id WHERE {found} "
        f"UNION ALL SELECT q.band, {columns} FROM {quotes} q JOIN odd p "
        f"ON p.personal_id = q.national_id WHERE {found} "
        f"UNION ALL SELECT q.band, {columns} FROM old q JOIN {persons} p "
        f"ON p.old_id_number = q.national_id WHERE {found}")
    if decisions is not None and sql.execute(
            f"SELECT count(*) FROM '{decisions}' WHERE decision = '{CONFIRMED}'").fetchone()[0]:
        # a confirmed person is the row's person whatever the row's birth date says
        sql.execute(
            f"INSERT INTO quoted SELECT q.band, {columns} FROM {banded} q "
            f"JOIN '{decisions}' d ON d.vss_code = q.vss_code AND d.decision = '{CONFIRMED}' "
            f"JOIN {persons} p ON p.personal_id = d.personal_id WHERE {found}")
    sql.execute(f"COPY (SELECT DISTINCT * FROM quoted) TO '{out}' "
                "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (band))")
