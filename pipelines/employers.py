"""Per employer (đơn vị), the two forms a provincial office hands out: Mẫu 02 (participants not
matching the population database, or without a personal ID, with the reason, the action and
the population database's values) and Mẫu 01 (participants already synchronized, for the
employer to check and sign), one workbook per employer with a sheet of metadata (``Thông tin``:
province, employer, run date, counts, what each column means).

Layout in a publication (``store.employers_path``; ``store.employer_workbook`` finds one
employer's):
``employers/<scheme>/<province>/employers.zip``, a workbook ``<member>.xlsx`` per employer
(hundreds of thousands nationally: one zip per province keeps the file count at 97), and beside
it ``employers.csv``, its index: employer code and name, Mẫu 02 and Mẫu 01 rows, member name.
Voluntary and household participants are under their ward's collection agent, an employer
like any other here; rows without an employer code are under ``KHONG_RO_DON_VI``.

The rows stream through in slices in (employer, form, VSS code) order, each slice's cells
rendered once (``xlsx.Cells``); each workbook is written sheet after sheet as its rows come,
with column widths declared per column (a streamed workbook cannot wait for its longest cell),
into a scratch file (in memory up to 16 MiB), then stored in the zip: memory is bounded by a
slice, disk by an employer.
"""

from __future__ import annotations

import csv
import functools
import logging
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from expectations.nation import files_sql
from pipelines import lists, xlsx
from pipelines.context import RunContext, read_json, write_json
from pipelines.steps import _batches, _chunks, _fresh, _group_of, step
from popsync import labels
from popsync.contracts import SYNCHRONIZED
from popsync.labels import vietnamese
from popsync.reference.provinces import province_name
from popsync.store import EMPLOYER_INDEX, employers_path

log = logging.getLogger(__name__)

FORM_02, FORM_01, INFO = "Mẫu 02", "Mẫu 01", "Thông tin"
NO_EMPLOYER = "KHONG_RO_DON_VI"
YES = "Có"
STATUS_LABELS = vietnamese(labels.STATUS_LABELS)
ACTION_LABELS = vietnamese(labels.ACTION_LABELS)
# column -> (header, what it means, width in characters): Mẫu 02's columns, in this order
COLUMNS_02 = {
    "vss_code": ("Mã số BHXH", "Mã số bảo hiểm xã hội của người tham gia", 12),
    "full_name": ("Họ và tên", "Họ tên như đơn vị đã kê khai", 28),
    "birth_date": ("Ngày sinh", "Ngày sinh đã kê khai, dd/mm/yyyy; khi không đầy đủ: năm "
                   "(yyyy) hoặc tháng/năm (mm/yyyy), dạng chữ", 11),
    "gender": ("Giới tính", "Giới tính đã kê khai", 9),
    "national_id": ("Số định danh cá nhân", "Số định danh cá nhân (hoặc số CMND cũ) đã kê khai",
                    14),
    "ward_code": ("Mã xã/phường", "Mã xã/phường nơi người tham gia cư trú", 8),
    "employer_code": ("Mã đơn vị", "Mã đơn vị (hoặc đại lý thu của xã/phường) quản lý người "
                      "tham gia", 14),
    "status": ("Tình trạng", "Kết quả đối chiếu với CSDL quốc gia về dân cư", 14),
    "reasons": ("Lý do", "Vì sao chưa đồng bộ", 30),
    "action": ("Việc cần làm", "Việc đơn vị, cơ quan BHXH cần làm cho từng lý do", 40),
    "corrected_by_feed": ("Điều chỉnh tự động", "Có: hệ thống nghiệp vụ sẽ tự điều chỉnh các "
                          "trường theo CSDL dân cư (liên kết chắc chắn), không cần xử lý", 9),
    "suggested_full_name": ("Họ tên theo CSDL dân cư", "Giá trị cần sửa theo CSDL dân cư; để "
                            "trống khi đã khớp", 28),
    "suggested_birth_date": ("Ngày sinh theo CSDL dân cư", "Giá trị cần sửa theo CSDL dân cư, "
                             "dd/mm/yyyy; để trống khi đã khớp", 11),
    "suggested_gender": ("Giới tính theo CSDL dân cư", "Giá trị cần sửa theo CSDL dân cư; để "
                         "trống khi đã khớp", 9),
    "suggested_national_id": ("Số định danh theo CSDL dân cư", "Giá trị cần sửa theo CSDL dân "
                              "cư; để trống khi đã khớp", 14),
    "other_vss_codes": ("Mã số BHXH khác của cùng người", "Các mã số BHXH khác đã đăng ký cho "
                        "cùng một người (trùng đăng ký)", 14),
    "match_probability": ("Độ tin cậy", "Xác suất liên kết khi liên kết bằng so khớp gần đúng "
                          "(làm tròn 3 chữ số); để trống khi khớp đúng số định danh", 8),
}
COLUMNS_01 = {c: COLUMNS_02[c] for c in ("vss_code", "full_name", "birth_date", "gender",
                                          "national_id", "ward_code", "employer_code")}
INFO_COLUMNS = {"item": ("Mục", "", 34), "value": ("Nội dung", "", 80)}
# What the night gathers per row (results, registry fields, feed and duplicates).
GATHERED = ("vss_code", "office_code", "status", "reasons", "id_agrees", "match_probability",
            "suggested_full_name", "suggested_birth_date", "suggested_gender",
            "suggested_national_id", "full_name", "birth_date", "gender", "national_id",
            "ward_code", "employer_code", "employer_name", "other_vss_codes",
            "corrected_by_feed")
_PROBABILITY_DECIMALS = 3  # as in the province lists
SPOOL_BYTES = 16 * 2**20
_MEMBER_FORBIDDEN = r"[^A-Za-z0-9_.-]"
INDEX_HEADER = ("employer_code", "employer_name", "mau_02", "mau_01", "workbook")
def _headers(columns: dict) -> list[str]:
    return [header for header, _, _ in columns.values()]


def _widths(columns: dict) -> list[int]:
    return [width for _, _, width in columns.values()]


def _text(frame: pd.DataFrame, column: str) -> pa.Array:
    values = pa.array(frame[column], type=pa.large_string(), from_pandas=True)
    return lists._neutralized(pc.fill_null(values, ""))


def _dates(text: pa.Array) -> xlsx.Dates:
    """``YYYY-MM-DD`` -> a date; ``YYYY-MM`` -> the text ``MM/YYYY``; anything else as given."""
    full = pc.fill_null(pc.match_substring_regex(text, r"^\d{4}-\d{2}-\d{2}$"), False)
    days = pc.strptime(pc.if_else(full, text, pa.scalar(None, pa.large_string())), "%Y-%m-%d",
                       "s", error_is_null=True).cast(pa.date32())
    shown = pc.replace_substring_regex(text, r"^(\d{4})-(\d{2})$", r"\2/\1")
    return xlsx.Dates(days, shown)


def form_columns(rows: pd.DataFrame) -> dict[str, pa.Array | xlsx.Dates]:
    """Gathered rows (``GATHERED``) -> Mẫu 02's columns, text neutralized, dates as dates, the
    match probability only where the link is not an exact personal ID."""
    gender_labels = lists.GENDER_LABELS
    columns: dict[str, pa.Array | xlsx.Dates] = {
        c: _text(rows, c) for c in ("vss_code", "full_name", "national_id", "ward_code",
                                    "employer_code", "suggested_full_name",
                                    "suggested_national_id", "other_vss_codes")}
    for column in ("birth_date", "suggested_birth_date"):
        columns[column] = _dates(_text(rows, column))
    for column in ("gender", "suggested_gender"):
        gender = _text(rows, column)
        columns[column] = pc.coalesce(lists._labelled(gender, gender_labels), gender)
    columns["status"] = pc.fill_null(lists._labelled(_text(rows, "status"), STATUS_LABELS), "")
    columns["reasons"] = lists._reasons(rows["reasons"]).cast(pa.large_string())
    columns["action"] = lists._reasons(rows["reasons"], ACTION_LABELS).cast(pa.large_string())
    fixed = rows["corrected_by_feed"].fillna(False).to_numpy(dtype=bool)
    columns["corrected_by_feed"] = pa.array(np.where(fixed, YES, ""), pa.large_string())
    exact = rows["id_agrees"].fillna(False).to_numpy(dtype=bool)
    probability = pc.round(pa.array(rows["match_probability"], pa.float64(), from_pandas=True),
                           _PROBABILITY_DECIMALS)
    columns["match_probability"] = pc.if_else(pa.array(exact), pa.scalar(None, pa.float64()),
                                              probability)
    return {column: columns[column] for column in COLUMNS_02}


def member_name(employer_code: str, taken: set[str]) -> str:
    """The workbook's file name in the zip: the code, with characters a file system may refuse
    replaced, made unique."""
    base = re.sub(_MEMBER_FORBIDDEN, "_", employer_code) or NO_EMPLOYER
    name, k = f"{base}.xlsx", 1
    while name.lower() in taken:
        k += 1
        name = f"{base}-{k}.xlsx"
    taken.add(name.lower())
    return name


def _info_rows(items: list[tuple[str, str]]) -> pa.Array:
    """Rows of the metadata sheet (``xlsx.Cells.rows``)."""
    return xlsx.Cells(_headers(INFO_COLUMNS), [
        lists._neutralized(pa.array([item for item, _ in items], pa.large_string())),
        lists._neutralized(pa.array([value for _, value in items], pa.large_string()))]).rows


@functools.cache
def _about_forms() -> pa.Array:
    """The metadata sheet's rows every workbook shares: what the forms and columns are."""
    return _info_rows([
        (FORM_02, "Người tham gia chưa khớp với CSDL quốc gia về dân cư hoặc chưa có số định "
                  "danh cá nhân"),
        (FORM_01, "Người tham gia đã đồng bộ với CSDL quốc gia về dân cư, để đơn vị kiểm tra, "
                  "ký xác nhận"),
        *((f"{FORM_02}, cột «{header}»", meaning) for header, meaning, _ in COLUMNS_02.values()),
    ])


def info_rows(province: str, scheme: str, employer: tuple, run_date: str) -> pa.Array:
    """The metadata sheet's rows of one employer's workbook."""
    code, name, n02, n01 = employer
    return pa.concat_arrays([_info_rows([
        ("Tỉnh, thành phố", f"{province} - {province_name(province, scheme)}"),
        ("Sơ đồ tỉnh", f"{scheme} tỉnh, thành phố"),
        ("Mã đơn vị", code),
        ("Tên đơn vị", name),
        ("Ngày đối chiếu", "/".join(reversed(run_date.split("-")))),
        (f"Số người trong {FORM_02}", str(n02)),
        (f"Số người trong {FORM_01}", str(n01)),
    ]), _about_forms()])


class _Zip:
    """One province's zip while its rows stream through: the open employer's workbook, written
    into a scratch file and stored in the zip when the next employer begins."""

    def __init__(self, path: Path, province: str, scheme: str, run_date: str,
                 employers: list[tuple], scratch: Path):
        self.province, self.scheme, self.run_date = province, scheme, run_date
        self.employers = iter(employers)
        self.archive = zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True)
        self.scratch_folder = scratch
        self.taken: set[str] = set()
        self.index: list[tuple] = []
        self.book = self.current = None

    def _open(self, code: str) -> None:
        employer = next(self.employers)
        if employer[0] != code:
            raise RuntimeError(f"employer rows out of order in province {self.province}")
        self.current, self.form = employer, FORM_02
        # in memory up to a size most employers' workbooks stay under, on disk beyond
        self.scratch = tempfile.SpooledTemporaryFile(SPOOL_BYTES, dir=self.scratch_folder)
        self.book = xlsx.Workbook(
            self.scratch, [], [(FORM_02, employer[2], _headers(COLUMNS_02)),
                               (FORM_01, employer[3], _headers(COLUMNS_01)),
                               (INFO, len(_about_forms()) + 7, _headers(INFO_COLUMNS))],
            header_fill="DDEBF7", creator="popsync")
        self.book.begin_sheet(_widths(COLUMNS_02))

    def _to_form_01(self) -> None:
        self.book.end_sheet()
        self.book.begin_sheet(_widths(COLUMNS_01))
        self.form = FORM_01

    def _close(self) -> None:
        if self.form == FORM_02:
            self._to_form_01()
        self.book.end_sheet()
        self.book.begin_sheet(_widths(INFO_COLUMNS))
        self.book.write_rows(info_rows(self.province, self.scheme, self.current, self.run_date))
        self.book.end_sheet()
        self.book.close()
        code, name, n02, n01 = self.current
        member = member_name(code, self.taken)
        info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o600 << 16
        self.scratch.seek(0)
        with self.scratch, self.archive.open(info, "w", force_zip64=True) as out:
            shutil.copyfileobj(self.scratch, out)
        self.index.append((code, name, n02, n01, member))
        self.book = None

    def add(self, codes: np.ndarray, synchronized: np.ndarray, cells_02: xlsx.Cells,
            cells_01: xlsx.Cells, rows_02: np.ndarray, rows_01: np.ndarray) -> None:
        """A slice's rows, in (employer, form) order: ``rows_02`` / ``rows_01`` map slice rows
        to their row in ``cells_02`` / ``cells_01``."""
        bounds = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            if self.current is None or self.current[0] != codes[start]:
                if self.book is not None:
                    self._close()
                self._open(codes[start])
            split = start + int(np.count_nonzero(~synchronized[start:end]))
            if split > start:
                self.book.write_rows(cells_02.rows.take(pa.array(rows_02[start:split])))
            if end > split:
                if self.form == FORM_02:
                    self._to_form_01()
                self.book.write_rows(cells_01.rows.take(pa.array(rows_01[split:end])))

    def close(self) -> list[tuple]:
        if self.book is not None:
            self._close()
        self.archive.close()
        if next(self.employers, None) is not None:
            raise RuntimeError(f"province {self.province}: employers without their rows")
        return self.index


def write_index(path: Path, index: Iterable[tuple]) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(INDEX_HEADER)
        writer.writerows(index)


def write_province(slices: Iterable[pd.DataFrame], employers: list[tuple], folder: Path,
                   province: str, scheme: str, run_date: str, scratch: Path) -> int:
    """One province's zip and index under ``folder``; ``slices``: its gathered rows in
    (employer code, not synchronized first, VSS code) order; ``employers``: (code, name, Mẫu 02
    rows, Mẫu 01 rows) in that order. Returns the workbooks written."""
    target = folder / employers_path(scheme, province)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="employers-") as work:
        book = _Zip(target, province, scheme, run_date, employers, Path(work))
        for rows in slices:
            rows = rows.reset_index(drop=True)
            synchronized = rows["status"].eq(SYNCHRONIZED).to_numpy()
            columns = form_columns(rows)
            at_02, at_01 = np.flatnonzero(~synchronized), np.flatnonzero(synchronized)
            cells_02 = xlsx.Cells(_headers(COLUMNS_02), [
                _take(v, at_02) for v in columns.values()])
            cells_01 = xlsx.Cells(_headers(COLUMNS_01), [
                _take(columns[c], at_01) for c in COLUMNS_01])
            rows_02 = np.cumsum(~synchronized) - 1
            rows_01 = np.cumsum(synchronized) - 1
            codes = rows["employer_code"].fillna(NO_EMPLOYER).to_numpy(dtype=object)
            book.add(codes, synchronized, cells_02, cells_01, rows_02, rows_01)
        index = book.close()
    write_index(target.with_name(EMPLOYER_INDEX), index)
    return len(index)


def _take(column, rows: np.ndarray):
    taken = pa.array(rows, pa.int64())
    if isinstance(column, xlsx.Dates):
        return xlsx.Dates(column.days.take(taken), column.text.take(taken))
    return column.take(taken)


def merge_provinces(folder: Path, unit: str, offices: list[str]) -> None:
    """A 34-scheme unit's zip and index from its 63-scheme offices' (workbooks copied as they
    are, one at a time)."""
    target = folder / employers_path("34", unit)
    target.parent.mkdir(parents=True, exist_ok=True)
    sources = [folder / employers_path("63", o) for o in sorted(offices)]
    if len(sources) == 1:
        shutil.copyfile(sources[0], target)
        shutil.copyfile(sources[0].with_name(EMPLOYER_INDEX),
                        target.with_name(EMPLOYER_INDEX))
        return
    taken: set[str] = set()
    index = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED, allowZip64=True) as merged:
        for source in sources:
            names = {}
            with zipfile.ZipFile(source) as part:
                for info in part.infolist():
                    names[info.filename] = member_name(Path(info.filename).stem, taken)
                    copy = zipfile.ZipInfo(names[info.filename], date_time=info.date_time)
                    copy.external_attr = info.external_attr
                    with part.open(info) as data, merged.open(copy, "w",
                                                               force_zip64=True) as out:
                        shutil.copyfileobj(data, out)
            with open(source.with_name(EMPLOYER_INDEX), encoding="utf-8-sig",
                      newline="") as rows:
                for row in list(csv.reader(rows))[1:]:
                    index.append((*row[:4], names[row[4]]))
    write_index(target.with_name(EMPLOYER_INDEX), index)


# --- the night's steps ------------------------------------------------------------------------


@step("gather_employers")
def gather_employers(work_dir: str, resolve: list[str], corrections: str,
                     gather_lists: list[str]) -> list[str]:
    """Every result row with its registry fields, the other VSS codes of its person and
    whether the corrections feed fixes it, partitioned by office (DuckDB, out of core); after
    gather_lists, which makes the staging folder. Returns batches of province groups of about
    ``chunk_rows`` rows, one task each."""
    del gather_lists
    ctx = RunContext.load(work_dir)
    schemes = ctx.config.province_schemes
    folder = _fresh(ctx.path("employers"))
    if not ctx.config.employer_workbooks:
        log.info("employer workbooks: off (output.employer_workbooks)")
        return _write_batches(folder, [])
    results = files_sql(resolve)
    chunks = _chunks(ctx, "registry")
    present = set(pq.read_schema(chunks[0]).names) if chunks else set()
    optional = ", ".join(f"f.{c}" if c in present else f"NULL::VARCHAR AS {c}"
                         for c in ("ward_code", "employer_code", "employer_name"))
    feed = Path(corrections) / "corrections.parquet"
    with ctx.sql() as sql:
        sql.execute(
            "COPY (SELECT r.vss_code, r.office_code, r.status, r.reasons, r.id_agrees, "
            "r.match_probability, r.suggested_full_name, r.suggested_birth_date, "
            "r.suggested_gender, r.suggested_national_id, f.full_name, f.birth_date, f.gender, "
            f"f.national_id, {optional}, "
            "array_to_string(list_filter(d.codes, lambda c: c <> r.vss_code), ', ') "
            "AS other_vss_codes, c.vss_code IS NOT NULL AS corrected_by_feed "
            f"FROM read_parquet({results}) r "
            f"LEFT JOIN read_parquet({files_sql(chunks)}) f ON f.vss_code = r.vss_code "
            "LEFT JOIN (SELECT personal_id, list(vss_code ORDER BY vss_code) AS codes "
            f"FROM read_parquet({results}) WHERE personal_id IS NOT NULL GROUP BY personal_id "
            "HAVING count(*) > 1) d ON d.personal_id = r.personal_id "
            f"LEFT JOIN (SELECT DISTINCT vss_code FROM read_parquet('{feed}')) c "
            "ON c.vss_code = r.vss_code WHERE r.office_code IS NOT NULL) "
            f"TO '{folder}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (office_code))")
        rows = dict(sql.execute(
            f"SELECT office_code, count(*) FROM read_parquet('{folder}/*/*.parquet', "
            "hive_partitioning=true, hive_types={'office_code': VARCHAR}) GROUP BY ALL"
        ).fetchall())
    groups: dict[str, list[str]] = {}
    for office in sorted(rows):
        groups.setdefault(_group_of(office, schemes), []).append(office)
    sizes = {g: sum(rows[o] for o in offices) for g, offices in groups.items()}
    batches = _batches(sizes, ctx.config.chunk_rows) if sizes else []
    return _write_batches(folder, [{g: groups[g] for g in b} for b in batches])


def _write_batches(folder: Path, batches: list[dict[str, list[str]]]) -> list[str]:
    """The batches' pieces; one empty batch when there is nothing to write, so that the mapped
    step runs (an empty mapping would skip it, and with it the publication after it)."""
    batches = batches or [{}]
    write_json(folder / "batches.json", batches)
    return [str(i) for i in range(len(batches))]


@step("stage_employers")
def stage_employers(work_dir: str, *, piece: str) -> int:
    """The employer workbooks of one batch of province groups into the staging folder: a zip
    and its index per 63-scheme office, then per 34-scheme unit; returns workbooks written."""
    ctx = RunContext.load(work_dir)
    from pipelines import publish

    folder = ctx.path("employers")
    staging = publish.staging_folder(ctx.out_dir, ctx.run_date, ctx.run_id)
    schemes = ctx.config.province_schemes
    written = 0
    for unit, offices in read_json(folder / "batches.json")[int(piece)].items():
        for office in offices:
            rows = f"{folder}/office_code={office}/*.parquet"
            with ctx.sql() as sql:
                employers = [tuple(r) for r in sql.execute(
                    f"SELECT coalesce(employer_code, '{NO_EMPLOYER}') AS code, "
                    "coalesce(any_value(employer_name), ''), "
                    f"count(*) FILTER (WHERE status <> '{SYNCHRONIZED}'), "
                    f"count(*) FILTER (WHERE status = '{SYNCHRONIZED}') "
                    f"FROM read_parquet('{rows}') GROUP BY code ORDER BY code").fetchall()]
                reader = sql.sql(
                    f"SELECT * EXCLUDE (employer_code), coalesce(employer_code, '{NO_EMPLOYER}') "
                    f"AS employer_code FROM read_parquet('{rows}') ORDER BY employer_code, "
                    f"status = '{SYNCHRONIZED}', vss_code"
                ).to_arrow_reader(batch_size=lists.SLICE_ROWS)
                written += write_province((b.to_pandas() for b in reader), employers, staging,
                                          office, "63", ctx.run_date, ctx.work)
        if "34" in schemes:
            merge_provinces(staging, unit, offices)
            written += sum(1 for _ in open(staging / employers_path("34", unit).with_name(
                EMPLOYER_INDEX), encoding="utf-8-sig")) - 1
        if "63" not in schemes:  # the offices' zips were only the unit's pieces
            for office in offices:
                shutil.rmtree((staging / employers_path("63", office)).parent)
    log.info("stage_employers batch %s: %d employer workbooks", piece, written)
    return written
