"""The run configuration: one YAML file, validated on load, with defaults that need no file at all.

```yaml
registry:                      # and `population:` alike
  source: data/registry.csv    # path, fsspec URL (s3://...), or SQLAlchemy URL + table/query
  format: csv                  # parquet | csv | sql; guessed from the source when left out
  table: null                  # sql: a table name ...
  query: null                  # ... or a SELECT
  encoding: utf-8              # csv only
  delimiter: ","               # csv only
  mapping: {}                  # canonical column -> source column or rule (pipelines/mapping.py)
matching: {}                   # handed to matching.Settings.from_mapping
output:
  dir: out                     # publications, work folders and the embedded SQLite live here
  db_url: null                 # default: SQLite under output.dir; PostgreSQL in production
province_schemes: ["63", "34"] # schemes metrics, rankings and lists are published in
validation:
  volume_drop_max: 0.3         # stop when a source has 30 % fewer rows than the previous run
  quarantine_max: 0.2          # stop when more than this share of a source's rows is quarantined
partition:
  max_rows: 250000             # registry rows per band: matched at once (bounds memory)
  cohort_persons: 5000000      # population persons a matching task normalizes once for the
                               # bands of its birth years (bounds its memory; 0: every band
                               # matched alone)
  chunk_rows: 1000000          # rows per chunk of the other fanned-out steps (extract, input
                               # checks, resolve, result checks): bounds their memory
  sql_memory: 2GB              # memory limit of the out-of-core engine (DuckDB) that sorts,
                               # joins and repartitions the nation; it spills to the work folder
workers: null                  # processes a step may use at once on this machine, and bands
                               # `popsync run` matches at once (default: the CPUs it may use)
alerts:                        # e-mails from the Airflow DAG (pipelines/alerts.py)
  to: []                       # recipients; none: no e-mail (the alert is only logged)
  from: popsync@localhost
  smtp_conn_id: smtp_default   # the Airflow connection of the SMTP server
  rate_drop_points: 2.0        # alert when the national or a province's sync rate falls by
                               # more than this many percentage points since the previous night
```
"""

from __future__ import annotations

import codecs
import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from pipelines.mapping import SourceMapping, parse_mapping
from popsync import store
from popsync.contracts import SCHEMES
from popsync.errors import PopsyncError
from popsync.parallel import default_workers

SOURCE_FORMATS = ("parquet", "csv", "sql")

_SOURCE_DEFAULTS: dict[str, Any] = {
    "source": None,
    "format": None,
    "table": None,
    "query": None,
    "encoding": "utf-8",
    "delimiter": ",",
    "mapping": {},
}
DEFAULTS: dict[str, Any] = {
    "registry": dict(_SOURCE_DEFAULTS),
    "population": dict(_SOURCE_DEFAULTS),
    "matching": {},
    "output": {"dir": "out", "db_url": None},
    "province_schemes": list(SCHEMES),
    "validation": {"volume_drop_max": 0.3, "quarantine_max": 0.2},
    "partition": {"max_rows": 250_000, "cohort_persons": 5_000_000, "chunk_rows": 1_000_000,
                  "sql_memory": "2GB"},
    "workers": None,
    "alerts": {"to": [], "from": "popsync@localhost", "smtp_conn_id": "smtp_default",
               "rate_drop_points": 2.0},
}


@dataclass(frozen=True)
class SourceConfig:
    name: str  # "registry" or "population"
    source: str
    format: str
    table: str | None
    query: str | None
    encoding: str
    delimiter: str
    mapping: SourceMapping


@dataclass(frozen=True)
class RunConfig:
    registry: SourceConfig
    population: SourceConfig
    matching: dict[str, Any]
    out_dir: Path
    db_url: str
    province_schemes: tuple[str, ...]
    volume_drop_max: float
    quarantine_max: float
    partition_max_rows: int
    cohort_persons: int
    chunk_rows: int
    sql_memory: str
    workers: int  # local processes: a step's independent pieces, popsync run's bands
    alerts: dict[str, Any]  # to, from, smtp_conn_id, rate_drop_points
    raw: dict[str, Any]  # the merged mapping, written to each run's work folder

    def dump(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.raw, allow_unicode=True, sort_keys=False), "utf-8")


def _merge(defaults: dict[str, Any], given: dict[str, Any], where: str) -> dict[str, Any]:
    """Overlay ``given`` on ``defaults``, refusing keys the defaults do not know."""
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in defaults:
            known = ", ".join(defaults)
            raise PopsyncError(f"run config: unknown key {path!r} (known here: {known})")
        if isinstance(defaults[key], dict) and defaults[key] and key != "mapping":
            if not isinstance(value, dict):
                raise PopsyncError(f"run config: {path!r} must be a mapping, not {value!r}")
            merged[key] = _merge(defaults[key], value, path)
        else:
            merged[key] = value
    return merged


def _guess_format(name: str, section: dict[str, Any]) -> str:
    if section["format"] is not None:
        if section["format"] not in SOURCE_FORMATS:
            raise PopsyncError(
                f"run config: {name}.format is {section['format']!r}; use one of {SOURCE_FORMATS}"
            )
        return section["format"]
    if section["table"] or section["query"]:
        return "sql"
    source = str(section["source"]).lower()
    for suffix in (".gz", ".bz2", ".zst", ".xz"):
        source = source.removesuffix(suffix)
    if source.endswith((".parquet", ".pq")):
        return "parquet"
    if source.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    raise PopsyncError(
        f"run config: cannot tell the format of {name}.source {section['source']!r} from its "
        f"name; set {name}.format to one of {SOURCE_FORMATS}"
    )


def _source(name: str, section: dict[str, Any]) -> SourceConfig:
    if not section["source"]:
        raise PopsyncError(
            f"run config: {name}.source is not set; give --{name} PATH or {name}.source in the file"
        )
    if not isinstance(section["source"], str):
        raise PopsyncError(
            f"run config: {name}.source must be a path or URL, not {section['source']!r}"
        )
    for key in ("table", "query"):
        if section[key] is not None and not isinstance(section[key], str):
            raise PopsyncError(f"run config: {name}.{key} must be text, not {section[key]!r}")
    _check_encoding(name, section["encoding"])
    delimiter = section["delimiter"]
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise PopsyncError(
            f"run config: {name}.delimiter must be one character such as ',', ';', '|' or a "
            f"tab, not {delimiter!r}"
        )
    fmt = _guess_format(name, section)
    if fmt == "sql" and bool(section["table"]) == bool(section["query"]):
        raise PopsyncError(
            f"run config: a sql {name} needs exactly one of {name}.table, {name}.query"
        )
    try:
        mapping = parse_mapping(section["mapping"] or {}, name)
    except ValueError as exc:
        raise PopsyncError(f"run config: {exc}") from None
    return SourceConfig(
        name=name,
        source=str(section["source"]),
        format=fmt,
        table=section["table"],
        query=section["query"],
        encoding=section["encoding"],
        delimiter=section["delimiter"],
        mapping=mapping,
    )


def _check_encoding(name: str, encoding: Any) -> None:
    try:
        known = isinstance(encoding, str) and bool(codecs.lookup(encoding))
    except LookupError:
        known = False
    if not known:
        raise PopsyncError(
            f"run config: {name}.encoding must be the name of a text encoding such as utf-8, "
            f"utf-8-sig, utf-16 or cp1258, not {encoding!r}"
        )


def _check_db_url(db_url: Any) -> None:
    """A URL SQLAlchemy can open (a dialect it has), checked without connecting."""
    try:
        url = sa.make_url(db_url) if isinstance(db_url, str) else None
    except sa.exc.ArgumentError:
        url = None
    if url is not None:
        try:
            url.get_dialect()
            return
        except sa.exc.NoSuchModuleError:
            shown = repr(url.render_as_string(hide_password=True))
    elif isinstance(db_url, str) and "@" in db_url:
        shown = "the value given (not shown: it may hold a password)"
    else:
        shown = repr(db_url)
    raise PopsyncError(
        "run config: output.db_url must be a database URL such as "
        f"postgresql+psycopg://user@host:5432/popsync or sqlite:////path/popsync.db, not {shown}"
    )


def _fraction(raw: dict[str, Any], key: str) -> float:
    value = raw["validation"][key]
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise PopsyncError(
            f"run config: validation.{key} must be a number in [0, 1], not {value!r}"
        )
    return float(value)


def build_config(given: dict[str, Any] | None = None, **overrides: Any) -> RunConfig:
    """Validate a configuration mapping; ``overrides`` (from the command line) win over it.

    Overrides: registry, population (sources), out_dir, db_url.
    """
    raw = _merge(DEFAULTS, given or {}, "")
    if overrides.get("registry"):
        raw["registry"]["source"] = str(overrides["registry"])
    if overrides.get("population"):
        raw["population"]["source"] = str(overrides["population"])
    if overrides.get("out_dir"):
        raw["output"]["dir"] = str(overrides["out_dir"])
    if overrides.get("db_url"):
        raw["output"]["db_url"] = overrides["db_url"]

    for name in ("registry", "population"):
        source = raw[name]["source"]
        if isinstance(source, str) and source and "://" not in source:
            raw[name]["source"] = str(Path(source).resolve())  # the work folder's snapshot
    given_schemes = raw["province_schemes"]
    schemes = tuple(str(s) for s in given_schemes) if isinstance(given_schemes, list) else ()
    if not schemes or len(set(schemes)) < len(schemes) or not set(schemes) <= set(SCHEMES):
        raise PopsyncError(
            f"run config: province_schemes must be a list of schemes among {list(SCHEMES)}, "
            f"each once, such as ['63', '34'], not {given_schemes!r}"
        )
    for key in ("max_rows", "cohort_persons", "chunk_rows"):
        value = raw["partition"][key]
        least = 0 if key == "cohort_persons" else 1  # 0: no cohorts, every band alone
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise PopsyncError(
                f"run config: partition.{key} must be an integer of at least {least}, "
                f"not {value!r}"
            )
    sql_memory = str(raw["partition"]["sql_memory"])
    if not re.fullmatch(r"\d+(?:\.\d+)?\s*(?:[KMGT]i?B)", sql_memory):
        raise PopsyncError(
            f"run config: partition.sql_memory must be a size such as 2GB, not {sql_memory!r}"
        )
    workers = raw["workers"]
    if workers is None:
        workers = default_workers()
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise PopsyncError(f"run config: workers must be a positive integer, not {workers!r}")
    if not isinstance(raw["matching"], dict):
        raise PopsyncError("run config: matching must be a mapping of matching settings")
    _check_matching_settings(raw["matching"])

    given_dir = raw["output"]["dir"]
    if not isinstance(given_dir, str) or not given_dir.strip():
        raise PopsyncError(f"run config: output.dir must be a folder path, not {given_dir!r}")
    if raw["output"]["db_url"] not in (None, ""):
        _check_db_url(raw["output"]["db_url"])
    out_dir = Path(given_dir).resolve()
    raw["output"]["dir"] = str(out_dir)
    return RunConfig(
        registry=_source("registry", raw["registry"]),
        population=_source("population", raw["population"]),
        matching=raw["matching"],
        out_dir=out_dir,
        db_url=raw["output"]["db_url"] or store.default_db_url(out_dir),
        province_schemes=schemes,
        volume_drop_max=_fraction(raw, "volume_drop_max"),
        quarantine_max=_fraction(raw, "quarantine_max"),
        partition_max_rows=raw["partition"]["max_rows"],
        cohort_persons=raw["partition"]["cohort_persons"],
        chunk_rows=raw["partition"]["chunk_rows"],
        sql_memory=sql_memory,
        workers=workers,
        alerts=raw["alerts"],
        raw=raw,
    )


def _check_matching_settings(section: dict[str, Any]) -> None:
    try:
        from matching import Settings
    except ImportError:
        return  # the match step reports the missing engine; loading a config should not
    try:
        Settings.from_mapping(section)
    except ValueError as exc:
        raise PopsyncError(f"run config: matching: {exc}") from None


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Read and validate a YAML run configuration (or only the defaults when ``path`` is None)."""
    given: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PopsyncError(f"run config {path}: no such file") from None
        try:
            given = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise PopsyncError(f"run config {path}: not valid YAML: {exc}") from None
        if not isinstance(given, dict):
            raise PopsyncError(f"run config {path}: the top level must be a mapping of sections")
        # Relative source paths and output folders are relative to the config file.
        given = _anchor_paths(given, path.parent)
    try:
        return build_config(given, **overrides)
    except PopsyncError as exc:
        if path is not None:
            raise PopsyncError(f"{exc} (in {path})") from None
        raise


def _anchor_paths(given: dict[str, Any], base: Path) -> dict[str, Any]:
    given = copy.deepcopy(given)
    for name in ("registry", "population"):
        section = given.get(name)
        if isinstance(section, dict) and isinstance(section.get("source"), str):
            source = section["source"]
            if "://" not in source and not Path(source).is_absolute():
                section["source"] = str(base / source)
    output = given.get("output")
    if isinstance(output, dict) and isinstance(output.get("dir"), str):
        if not Path(output["dir"]).is_absolute():
            output["dir"] = str(base / output["dir"])
    return given
