"""The run configuration: one YAML file, validated on load (pydantic models below, one line per
error naming the key and the file), with defaults that need no file at all.

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
  employer_workbooks: false    # a workbook per employer (Mẫu 01/02) in every night's
                               # publication: about 6 ms each, some 1.5 CPU hours a night for
                               # the nation's ~900,000 employers, hence off by default
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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy as sa
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pipelines.mapping import SourceMapping, parse_mapping
from popsync import store
from popsync.contracts import SCHEMES
from popsync.errors import PopsyncError
from popsync.parallel import default_workers
from popsync.validation import key_of, requirement

SOURCE_FORMATS = ("parquet", "csv", "sql")


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
    employer_workbooks: bool
    province_schemes: tuple[str, ...]
    volume_drop_max: float
    quarantine_max: float
    partition_max_rows: int
    cohort_persons: int
    chunk_rows: int
    sql_memory: str
    workers: int  # local processes: a step's independent pieces, popsync run's bands
    alerts: dict[str, Any]  # to, from, smtp_conn_id, rate_drop_points
    raw: dict[str, Any]  # the validated file with its defaults, written to each run's work folder

    def dump(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.raw, allow_unicode=True, sort_keys=False), "utf-8")


# --- the file's schema (pydantic): types are strict, YAML's "2" is not 2 ---------------------

# What each key must be, for the one-line error naming it (by the key's last part).
HINTS = {
    "source": "a path or URL",
    "format": f"one of {SOURCE_FORMATS}",
    "table": "text",
    "query": "text",
    "encoding": "the name of a text encoding such as utf-8, utf-8-sig, utf-16 or cp1258",
    "delimiter": "one character such as ',', ';', '|' or a tab",
    "dir": "a folder path",
    "employer_workbooks": "true or false",
    "db_url": "a database URL such as postgresql+psycopg://user@host:5432/popsync or "
              "sqlite:////path/popsync.db",
    "province_schemes": f"a list of schemes among {list(SCHEMES)}, each once, such as "
                        "['63', '34']",
    "volume_drop_max": "a number in [0, 1]",
    "quarantine_max": "a number in [0, 1]",
    "max_rows": "an integer of at least 1",
    "cohort_persons": "an integer of at least 0",
    "chunk_rows": "an integer of at least 1",
    "sql_memory": "a size such as 2GB",
    "workers": "a positive integer",
    "to": "a list of e-mail addresses",
    "from": "an e-mail address",
    "smtp_conn_id": "the id of an Airflow connection",
    "rate_drop_points": "a number of percentage points, at least 0",
}


class _Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


class SourceSection(_Section):
    source: str | None = None
    format: Literal["parquet", "csv", "sql"] | None = None
    table: str | None = None
    query: str | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    mapping: dict[str, Any] = {}  # checked rule by rule by pipelines.mapping.parse_mapping

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError("unknown encoding") from None
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1 or value in '"\r\n':
            raise ValueError("not one character")
        return value

    @model_validator(mode="after")
    def _sql_names_its_rows(self) -> SourceSection:
        if (self.format == "sql" or self.table or self.query) and bool(self.table) == bool(
                self.query):
            raise PydanticCustomError("popsync", "a sql source needs exactly one of table, query")
        return self


class OutputSection(_Section):
    dir: Annotated[str, Field(pattern=r"\S")] = "out"
    db_url: str | None = None
    employer_workbooks: bool = False

    @field_validator("db_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value:  # a dialect SQLAlchemy has, checked without connecting
            try:
                sa.make_url(value).get_dialect()
            except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError):
                raise ValueError("not a database URL") from None
        return value


class ValidationSection(_Section):
    volume_drop_max: Annotated[float, Field(ge=0, le=1)] = 0.3
    quarantine_max: Annotated[float, Field(ge=0, le=1)] = 0.2


class PartitionSection(_Section):
    max_rows: Annotated[int, Field(ge=1)] = 250_000
    cohort_persons: Annotated[int, Field(ge=0)] = 5_000_000  # 0: no cohorts, every band alone
    chunk_rows: Annotated[int, Field(ge=1)] = 1_000_000
    sql_memory: Annotated[str, Field(pattern=r"^\d+(?:\.\d+)?\s*(?:[KMGT]i?B)$")] = "2GB"


class AlertsSection(_Section):
    to: list[str] = []
    from_: Annotated[str, Field(alias="from")] = "popsync@localhost"
    smtp_conn_id: str = "smtp_default"
    rate_drop_points: Annotated[float, Field(ge=0)] = 2.0


class RunConfigFile(_Section):
    registry: SourceSection = SourceSection()
    population: SourceSection = SourceSection()
    matching: dict[str, Any] = {}
    output: OutputSection = OutputSection()
    # YAML reads [63, 34] as numbers: a scheme is its code as text
    province_schemes: Annotated[list[str], BeforeValidator(
        lambda v: [str(s) if isinstance(s, int) and not isinstance(s, bool) else s for s in v]
        if isinstance(v, list) else v)] = list(SCHEMES)
    validation: ValidationSection = ValidationSection()
    partition: PartitionSection = PartitionSection()
    workers: Annotated[int, Field(ge=1)] | None = None  # None: the CPUs this process may use
    alerts: AlertsSection = AlertsSection()

    @field_validator("province_schemes")
    @classmethod
    def _schemes(cls, schemes: list[str]) -> list[str]:
        if not schemes or len(set(schemes)) < len(schemes) or not set(schemes) <= set(SCHEMES):
            raise ValueError("not a list of known schemes")
        return schemes

    @field_validator("matching")
    @classmethod
    def _matching_settings(cls, value: dict) -> dict:
        try:
            from matching import Settings
        except ImportError:
            return value  # the match step reports the missing engine; loading should not
        try:
            Settings.from_mapping(value)
        except ValueError as exc:
            raise PydanticCustomError("popsync", "matching: {why}", {"why": str(exc)}) from None
        return value


def _message(error: dict) -> str:
    """One validation error as one line: the key, what it must be, the value given."""
    key = key_of(error)
    if error["type"] == "popsync":
        return f"run config: {key + ': ' if key and key != 'matching' else ''}{error['msg']}"
    if error["type"] == "extra_forbidden":
        known = ", ".join(_known_keys(error["loc"][:-1]))
        return f"run config: unknown key {key!r} (known here: {known})"
    if error["type"] in ("model_type", "dict_type") and not error["loc"][-1:] == ("mapping",):
        return f"run config: {key!r} must be a mapping, not {error['input']!r}"
    name = next((str(p) for p in reversed(error["loc"]) if not isinstance(p, int)), "")
    what = f"must be {HINTS[name]}" if name in HINTS else requirement(error)
    return f"run config: {key} {what}, not {_shown(name, error['input'])}"


def _known_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = RunConfigFile
    for part in loc:
        model = model.model_fields[str(part)].annotation
    return [f.alias or name for name, f in model.model_fields.items()]


def _shown(name: str, value: Any) -> str:
    """The value as given; a database URL without its password (or not at all)."""
    if name == "db_url" and isinstance(value, str):
        try:
            return repr(sa.make_url(value).render_as_string(hide_password=True))
        except sa.exc.ArgumentError:
            if "@" in value:
                return "the value given (not shown: it may hold a password)"
    return repr(value)


# --- from the validated file to the run's configuration ---------------------------------------


def _guess_format(name: str, section: SourceSection) -> str:
    if section.format is not None:
        return section.format
    if section.table or section.query:
        return "sql"
    source = str(section.source).lower()
    for suffix in (".gz", ".bz2", ".zst", ".xz"):
        source = source.removesuffix(suffix)
    if source.endswith((".parquet", ".pq")):
        return "parquet"
    if source.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    raise PopsyncError(
        f"run config: cannot tell the format of {name}.source {section.source!r} from its "
        f"name; set {name}.format to one of {SOURCE_FORMATS}"
    )


def _source(name: str, section: SourceSection) -> SourceConfig:
    if not section.source:
        raise PopsyncError(
            f"run config: {name}.source is not set; give --{name} PATH or {name}.source in the file"
        )
    try:
        mapping = parse_mapping(section.mapping, name)
    except ValueError as exc:
        raise PopsyncError(f"run config: {exc}") from None
    return SourceConfig(
        name=name,
        source=section.source,
        format=_guess_format(name, section),
        table=section.table,
        query=section.query,
        encoding=section.encoding,
        delimiter=section.delimiter,
        mapping=mapping,
    )


def _with_overrides(given: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The command line's values over the file's (a section given as a non-mapping stays, for
    validation to name)."""
    given = copy.deepcopy(given)
    places = {"registry": ("registry", "source"), "population": ("population", "source"),
              "out_dir": ("output", "dir"), "db_url": ("output", "db_url")}
    for option, (section, key) in places.items():
        if overrides.get(option):
            part = given.setdefault(section, {})
            if isinstance(part, dict):
                part[key] = str(overrides[option])
    return given


def build_config(given: dict[str, Any] | None = None, **overrides: Any) -> RunConfig:
    """Validate a configuration mapping; ``overrides`` (from the command line) win over it.

    Overrides: registry, population (sources), out_dir, db_url.
    """
    try:
        valid = RunConfigFile.model_validate(_with_overrides(given or {}, overrides))
    except ValidationError as exc:
        raise PopsyncError(_message(exc.errors()[0])) from None
    for section in (valid.registry, valid.population):
        if section.source and "://" not in section.source:
            section.source = str(Path(section.source).resolve())  # the work folder's snapshot
    out_dir = Path(valid.output.dir).resolve()
    valid.output.dir = str(out_dir)
    raw = valid.model_dump(by_alias=True)
    return RunConfig(
        registry=_source("registry", valid.registry),
        population=_source("population", valid.population),
        matching=valid.matching,
        out_dir=out_dir,
        db_url=valid.output.db_url or store.default_db_url(out_dir),
        employer_workbooks=valid.output.employer_workbooks,
        province_schemes=tuple(valid.province_schemes),
        volume_drop_max=valid.validation.volume_drop_max,
        quarantine_max=valid.validation.quarantine_max,
        partition_max_rows=valid.partition.max_rows,
        cohort_persons=valid.partition.cohort_persons,
        chunk_rows=valid.partition.chunk_rows,
        sql_memory=valid.partition.sql_memory,
        workers=valid.workers or default_workers(),
        alerts=raw["alerts"],
        raw=raw,
    )


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
