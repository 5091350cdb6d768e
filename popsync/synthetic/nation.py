"""Generate a synthetic nation chunk by chunk, and write it as three Parquet files atomically."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from popsync.contracts import (
    POPULATION_REQUIRED,
    REGISTRY_OPTIONAL,
    REGISTRY_REQUIRED,
    TRUTH_COLUMNS,
)
from popsync.errors import PopsyncError
from popsync.synthetic.employers import place
from popsync.synthetic.people import IdAllocator, People, draw_people
from popsync.synthetic.profiles import ERROR_PROFILES
from popsync.synthetic.registry import build_registry
from popsync.synthetic.strings import date_strings, digits

# People per chunk: each chunk has its own derived seed, so memory stays flat for any size.
CHUNK_PEOPLE = 500_000

_BOOLEAN = ("scheme_si_compulsory", "scheme_si_voluntary", "scheme_hi", "scheme_ui",
            "is_deceased")
SCHEMAS = {
    "population": pa.schema([(c, pa.bool_() if c in _BOOLEAN else pa.string())
                             for c in POPULATION_REQUIRED]),
    "registry": pa.schema([(c, pa.bool_() if c in _BOOLEAN else pa.string())
                           for c in (*REGISTRY_REQUIRED, *REGISTRY_OPTIONAL)]),
    "truth": pa.schema([(c, pa.string()) for c in TRUTH_COLUMNS]),
}
FILES = ("population", "registry", "truth")
# Fixed writer options: the same tables always give the same bytes.
_WRITER_OPTIONS = {"compression": "zstd", "compression_level": 3, "use_dictionary": True,
                   "write_statistics": True, "version": "2.6"}


@dataclass
class Nation:
    """A synthetic nation: the population extract, the VSS registry and the ground truth."""

    population: pd.DataFrame
    registry: pd.DataFrame
    truth: pd.DataFrame


def check_request(people: int, seed: int, profile: str) -> dict[str, float]:
    """The profile's error rates, or a PopsyncError naming what is wrong with the request."""
    if people <= 0:
        raise PopsyncError(f"--people must be a positive number of people, got {people}")
    if seed < 0:
        raise PopsyncError(f"--seed must be zero or a positive integer, got {seed}")
    if profile not in ERROR_PROFILES:
        raise PopsyncError(f"unknown error profile {profile!r}: use one of "
                           + ", ".join(sorted(ERROR_PROFILES)))
    return ERROR_PROFILES[profile]


def generate_chunks(people: int, seed: int, profile: str = "default"
                    ) -> Iterator[dict[str, pa.Table]]:
    """Yield the nation as {population, registry, truth} Arrow tables, one chunk at a time."""
    rates = check_request(people, seed, profile)
    ids = IdAllocator(seed)
    for index, start in enumerate(range(0, people, CHUNK_PEOPLE)):
        count = min(CHUNK_PEOPLE, people - start)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))
        population = draw_people(rng, count, ids)
        # People missing from the extract who register anyway (a pool, not all of them used).
        absent = draw_people(rng, int(count * rates["not_in_population"]) + 10, ids)
        registry, truth = build_registry(rng, population, absent, rates, ids)
        # ward, address, employer: a stream of their own, so the other columns stay the seed's
        places = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index, 1])))
        compulsory = registry["scheme_si_compulsory"].to_numpy(zero_copy_only=False)
        for column, values in place(places, registry["province_code"], compulsory,
                                    index).items():
            registry = registry.append_column(column, values)
        registry = registry.select(SCHEMAS["registry"].names)
        yield {"population": population_table(population), "registry": registry,
               "truth": truth}


def population_table(people: People) -> pa.Table:
    """The population extract's columns for a chunk of people."""
    return pa.table({
        "personal_id": pa.array(people.personal_id, pa.string()),
        "full_name": people.full_name,
        "birth_date": pa.array(date_strings(people.birth), pa.string()),
        "gender": pa.array(np.where(people.female, "F", "M"), pa.string()),
        "old_id_number": pa.array(people.old_id, pa.string(), mask=people.old_id == ""),
        "province_code": pa.array(digits(people.residence, 2), pa.string()),
        "is_deceased": people.is_deceased,
        "death_date": pa.array(date_strings(people.death), pa.string(),
                               mask=~people.is_deceased),
    }, schema=SCHEMAS["population"])


def generate_nation(people: int, seed: int, profile: str = "default") -> Nation:
    """Generate a whole nation in memory (for tests and small runs; the CLI streams chunks)."""
    chunks = list(generate_chunks(people, seed, profile))
    tables = {name: pa.concat_tables([chunk[name] for chunk in chunks]) for name in FILES}
    return Nation(**{name: table.to_pandas() for name, table in tables.items()})


def write_nation(nation: Nation, out_dir: str | os.PathLike, force: bool = False) -> Path:
    """Write a nation's three Parquet files into ``out_dir``."""
    tables = {name: pa.Table.from_pandas(getattr(nation, name), schema=SCHEMAS[name],
                                         preserve_index=False)
              for name in FILES}
    return write_chunks([tables], out_dir, force=force)


def write_chunks(chunks: Iterable[dict[str, pa.Table]], out_dir: str | os.PathLike,
                 force: bool = False, on_chunk: Callable[[int], None] | None = None) -> Path:
    """Stream chunks into ``population/registry/truth.parquet`` under ``out_dir``.

    Files are written in a hidden sibling folder and renamed into place at the end, so a failed
    or interrupted run leaves nothing half-written.
    """
    out = Path(out_dir)
    _check_output_folder(out, force)
    staging = out.parent / f".{out.name}.popsync-tmp-{os.getpid()}"
    try:
        try:
            staging.mkdir(parents=True)
        except OSError as exc:
            raise PopsyncError(f"cannot write output folder {out}: {exc.strerror}") from None
        try:
            _write_staged(chunks, staging, on_chunk)
            out.mkdir(parents=True, exist_ok=True)
            for name in FILES:
                os.replace(staging / f"{name}.parquet", out / f"{name}.parquet")
        except OSError as exc:  # e.g. the disk filled up
            raise PopsyncError(f"writing {out} failed: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _write_staged(chunks, staging: Path, on_chunk) -> None:
    writers = {name: pq.ParquetWriter(staging / f"{name}.parquet", SCHEMAS[name],
                                      **_WRITER_OPTIONS) for name in FILES}
    try:
        for chunk in chunks:
            for name in FILES:
                writers[name].write_table(chunk[name].cast(SCHEMAS[name]))
            if on_chunk is not None:
                on_chunk(len(chunk["population"]))
    finally:
        for writer in writers.values():
            writer.close()


def _check_output_folder(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PopsyncError(f"output path {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise PopsyncError(f"output folder {out} is not empty: choose another or add --force")
    parent = next((p for p in (out, *out.parents) if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise PopsyncError(f"cannot write output folder {out}: "
                           f"{parent or out} is not a writable folder")


__all__ = ["Nation", "generate_nation", "write_nation", "write_chunks", "generate_chunks"]
