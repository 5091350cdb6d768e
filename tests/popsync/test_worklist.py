"""The work list in the publication database (popsync.worklist), on SQLite and PostgreSQL: rows
loaded under their run and seen only once it publishes, the search (VSS code, IDs, a name typed
without diacritics), filters and order, the statuses a clerk sets, what a night does to them
(closed, correction not effective, open again; the same after a rerun) and the counts."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
import sqlalchemy as sa

from popsync import store, worklist
from popsync.text import folded_name, folded_names

T0 = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def _row(vss_code: str, name: str, office: str = "79", status: str = "needs_correction",
         reasons: tuple[str, ...] = ("name_mismatch",), **extra) -> dict:
    return {"vss_code": vss_code, "province_code": office, "status": status,
            "reasons": list(reasons), "full_name": name, "birth_date": "1980-01-02",
            "gender": "M", "national_id": extra.pop("national_id", None),
            "personal_id": extra.pop("personal_id", None), "match_probability": 0.99,
            "suggested_full_name": None, "suggested_birth_date": None, "suggested_gender": None,
            "suggested_national_id": None, "si_compulsory": True, "si_voluntary": False,
            "hi": True, "ui": False, "ward_code": extra.pop("ward_code", None),
            "employer_code": None, "employer_name": None,
            "other_vss_codes": extra.pop("other_vss_codes", None), **extra}


def _batch(rows: list[dict]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=pa.schema(
        [(c, pa.list_(pa.string()) if c == "reasons" else pa.bool_() if c in worklist.LINES
          else pa.float64() if c == "match_probability" else pa.string())
         for c in worklist.LOADED]))


ROWS = [
    _row("7900000001", "Nguyễn Văn A", national_id="079080000001", personal_id="079080000001"),
    _row("7900000002", unicodedata.normalize("NFD", "NGUYỄN VĂN AN"), ward_code="26734"),
    _row("7900000003", "Đặng Thị Hoà", status="unmatched", reasons=("no_candidate",),
         national_id="123456789"),
    _row("7400000004", "Trần Văn Bình", office="74", reasons=("duplicate_registration",),
         personal_id="074080000004", other_vss_codes="7400000004,7400000099"),
    _row("0100000005", "Lê Văn Cường", office="01", reasons=("missing_id", "name_mismatch")),
]


def _night(engine: sa.Engine, run_date: str, rows: list[dict], started: datetime) -> int:
    """A night: its run, its rows loaded, then published (with ``settle``, as publish does)."""
    with engine.begin() as connection:
        run_id = connection.execute(store.runs.insert().values(
            run_date=run_date, started_at=started, status="running")).inserted_primary_key[0]
    assert worklist.load(engine, run_id, [_batch(rows)]) == len(rows)
    with engine.begin() as connection:
        connection.execute(store.publications.delete().where(
            store.publications.c.run_date == run_date))
        connection.execute(store.publications.insert().values(
            run_date=run_date, run_id=run_id, published_at=started + timedelta(minutes=5),
            path=f"publications/{run_date}"))
        connection.execute(store.runs.update().where(store.runs.c.run_id == run_id).values(
            status="succeeded"))
        worklist.settle(connection, run_id, run_date, started, started + timedelta(minutes=5))
    return run_id


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = (store.default_db_url(tmp_path) if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = store.engine_for(url)
    yield engine
    engine.dispose()


def test_folded_names_fold_a_column_as_folded_name_folds_one():
    names = ["Nguyễn Văn A", None, "  ĐẶNG  thị Hoà ", unicodedata.normalize("NFD", "Trần Thủy"),
             "", "Ðoàn Quý", "nguyen van a"]
    assert folded_names(pa.array(names)).to_pylist() == [folded_name(n) for n in names]
    assert folded_names(pa.array(names)).to_pylist()[:3] == ["nguyen van a", "", "dang thi hoa"]


def test_search_filters_order_and_pages(engine, monkeypatch):
    run_id = _night(engine, "2026-12-01", ROWS, T0)
    page = lambda scheme="63", code="79", listed=None, **q: worklist.page(  # noqa: E731
        engine, run_id, scheme, code, worklist.ListQuery(**q), listed)
    rows, total = page()
    assert total == 3 and [r["vss_code"] for r in rows] == ["7900000001", "7900000002",
                                                             "7900000003"]
    assert rows[0]["work_status"] == worklist.OPEN and rows[0]["reasons"] == ["name_mismatch"]
    # a name typed without diacritics, in any case, finds the names starting with it
    assert {r["vss_code"] for r in page(q="nguyen van a")[0]} == {"7900000001", "7900000002"}
    assert [r["vss_code"] for r in page(q="NGUYEN VAN AN")[0]] == ["7900000002"]
    assert [r["vss_code"] for r in page(q="dang thi hoa")[0]] == ["7900000003"]
    assert page(q="tran van binh")[1] == 0  # another province's row
    assert [r["vss_code"] for r in page(q="7900000002")[0]] == ["7900000002"]
    assert [r["vss_code"] for r in page(q="123456789")[0]] == ["7900000003"]  # an old ID
    assert page(q="7900")[1] == 3  # the start of VSS codes
    assert [r["vss_code"] for r in page(q="079080000001")[0]] == ["7900000001"]
    assert [r["vss_code"] for r in page(status="unmatched")[0]] == ["7900000003"]
    assert page(reason="name_mismatch")[1] == 2 and page(reason="missing_id")[1] == 0
    assert page(line="hi")[1] == 3 and page(line="ui")[1] == 0
    assert [r["vss_code"] for r in page(ward="26734")[0]] == ["7900000002"]
    assert [r["vss_code"] for r in page(sort="name", order="desc")[0]] == [
        "7900000002", "7900000001", "7900000003"]
    second, total = page(per_page=2, page=2)
    assert total == 3 and [r["vss_code"] for r in second] == ["7900000003"]
    # the 34-scheme unit 79 holds the 63-scheme offices 74, 77 and 79
    assert page(scheme="34")[1] == 4 and page(scheme="34", code="01")[1] == 1
    found = worklist.row(engine, run_id, "7400000004")
    assert found["other_vss_codes"] == ["7400000099"] and found["unit_34"] == "79"
    assert worklist.row(engine, run_id, "7900000099") is None
    # unnarrowed, the count read once a night is the total; a search's count stops at the cap
    assert page(listed=3)[1] == 3 and page(q="nguyen", listed=3)[1] == 2
    monkeypatch.setattr(worklist, "COUNT_CAP", 1)
    assert page(q="nguyen")[1] == 2  # more than 1
    streamed = [r["vss_code"] for batch in worklist.stream(
        engine, run_id, "63", "79", worklist.ListQuery(q="nguyen"), batch_rows=1) for r in batch]
    assert streamed == ["7900000001", "7900000002"]


def test_statuses_survive_nights_and_nights_close_and_flag_them(engine):
    first = _night(engine, "2026-12-01", ROWS, T0)
    at = T0 + timedelta(hours=2)
    worklist.set_status(engine, first, "7900000001", worklist.CORRECTED, "sửa tên", "office79",
                        at)
    worklist.set_status(engine, first, "7900000002", worklist.CORRECTED, None, "office79", at)
    worklist.set_status(engine, first, "7900000003", worklist.IN_PROGRESS, "gọi điện",
                        "office79", at)
    with pytest.raises(worklist.WorkStatusError):
        worklist.set_status(engine, first, "7900000003", worklist.CLOSED, None, "office79")
    with pytest.raises(worklist.WorkStatusError):
        worklist.set_status(engine, first, "7900000042", worklist.IN_PROGRESS, None, "office79")
    assert {r["vss_code"] for r in worklist.page(engine, first, "63", "79", worklist.ListQuery(
        work=worklist.IN_PROGRESS))[0]} == {"7900000003"}
    assert worklist.page(engine, first, "63", "79", worklist.ListQuery(
        work=worklist.OPEN))[1] == 0
    counts = worklist.province_counts(worklist.listed_counts(engine, first),
                                      worklist.work_counts(engine, first, "2026-12-01"), "63")
    assert counts["79"] == {"open": 0, "in_progress": 3, "not_effective": 0, "closed_week": 0}

    # next night: row 1 synchronized (not listed), row 2 still listed, row 3 still listed
    second_date = "2026-12-02"
    second = _night(engine, second_date, ROWS[1:], T0 + timedelta(days=1))
    assert worklist.row(engine, second, "7900000001") is None
    assert worklist.item(engine, "7900000001")["status"] == worklist.CLOSED
    assert worklist.item(engine, "7900000002")["status"] == worklist.NOT_EFFECTIVE
    assert worklist.item(engine, "7900000003")["status"] == worklist.IN_PROGRESS
    history = worklist.history(engine, "7900000001")
    assert [(h["status"], h["changed_by"], h["run_date"]) for h in history] == [
        (worklist.CLOSED, worklist.NIGHT_USER, second_date),
        (worklist.CORRECTED, "office79", None)]
    assert history[1]["note"] == "sửa tên"
    counts = worklist.province_counts(worklist.listed_counts(engine, second),
                                      worklist.work_counts(engine, second, second_date), "63")
    assert counts["79"] == {"open": 1, "in_progress": 1, "not_effective": 1, "closed_week": 1}
    assert worklist.province_counts(worklist.listed_counts(engine, second), worklist.work_counts(
        engine, second, second_date), "34")["79"]["open"] == 2  # with office 74's row

    # rerunning the night gives the same statuses and history, not a second closing
    _night(engine, second_date, ROWS[1:], T0 + timedelta(days=1, hours=1))
    assert [h["status"] for h in worklist.history(engine, "7900000001")] == [
        worklist.CLOSED, worklist.CORRECTED]
    assert worklist.item(engine, "7900000002")["status"] == worklist.NOT_EFFECTIVE
    # a night later the row is to fix again: open again
    third = _night(engine, "2026-12-03", ROWS, T0 + timedelta(days=2))
    assert worklist.item(engine, "7900000001")["status"] == worklist.OPEN
    # a rerun of an earlier night changes nothing of the statuses
    _night(engine, "2026-12-01", ROWS, T0 + timedelta(days=3))
    assert worklist.item(engine, "7900000001")["status"] == worklist.OPEN
    # only the latest nights' rows are kept (and a running run's)
    worklist.prune(engine, keep=1)
    with engine.connect() as connection:
        kept = set(connection.execute(sa.select(store.worklist_rows.c.run_id).distinct()
                                      ).scalars())
    assert kept == {third}
