"""An office downloads its employers' workbooks (Mẫu 02 / Mẫu 01) from the portal, over a real
night run with ``output.employer_workbooks`` on: the province's zip, its index, one employer's
workbook; another office gets 403, nobody 401, an unknown employer 404; every call audited."""

from __future__ import annotations

import csv
import io
import zipfile

import httpx
import openpyxl
import pytest
import sqlalchemy as sa
from portal_fixtures import PASSWORD, live_server, make_accounts
from worklist_fixtures import NIGHTS

from pipelines import cli
from popsync import store
from portal.app import PortalSettings, create_app
from portal.tables import audit_log

pytestmark = pytest.mark.slow
OFFICE, OTHER = ("office79", PASSWORD), ("office74", PASSWORD)


@pytest.fixture(scope="module")
def site(worklist_nation, tmp_path_factory):
    nation, _ = worklist_nation
    folder = tmp_path_factory.mktemp("employers")
    config = folder / "popsync.yaml"
    config.write_text("output:\n  employer_workbooks: true\n", "utf-8")
    out = folder / "out"
    assert cli.main(["run", "--registry", str(nation / "registry.parquet"), "--population",
                     str(nation / "population.parquet"), "--out", str(out), "--run-date",
                     NIGHTS[0], "--config", str(config)]) == 0
    make_accounts(store.engine_for(store.default_db_url(out)))
    app = create_app(PortalSettings(db_url=store.default_db_url(out), data_dir=out))
    with live_server(app) as base:
        yield base, out


def test_an_office_downloads_its_employers_workbooks(site):
    base, out = site
    with httpx.Client(base_url=base, timeout=30, auth=OFFICE) as client:
        index = client.get("/provinces/79/employers.csv")
        assert index.status_code == 200
        rows = list(csv.DictReader(io.StringIO(index.content.decode("utf-8-sig"))))
        assert rows and {"employer_code", "employer_name", "mau_02", "mau_01"} <= set(rows[0])
        archive = client.get("/provinces/79/employers.zip")
        assert archive.status_code == 200
        assert archive.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
            assert sorted(zipped.namelist()) == sorted(r["workbook"] for r in rows)
        # one employer's workbook, the one of the zip named in the index
        employer = max(rows, key=lambda r: int(r["mau_02"]))
        one = client.get("/provinces/79/employer.xlsx", params={
            "employer": employer["employer_code"]})
        assert one.status_code == 200
        book = openpyxl.load_workbook(io.BytesIO(one.content), read_only=True)
        assert "Mẫu 02" in book.sheetnames[0]
        data = list(book.worksheets[0].iter_rows(values_only=True))
        assert len([r for r in data if any(r)]) > int(employer["mau_02"])  # header + rows
        assert client.get("/provinces/79/employer.xlsx", params={
            "employer": "no-such-employer"}).status_code == 404
        # the province page links them
        page = client.get("/provinces/79")
        assert 'id="download-employers-zip"' in page.text
    with httpx.Client(base_url=base, timeout=30, auth=OTHER) as client:
        assert client.get("/provinces/79/employers.zip").status_code == 403
        assert client.get("/provinces/79/employer.xlsx", params={
            "employer": employer["employer_code"]}).status_code == 403
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/provinces/79/employers.csv").status_code == 401
    engine = store.engine_for(store.default_db_url(out))
    with engine.connect() as connection:
        audited = connection.execute(sa.select(
            audit_log.c.action, audit_log.c.outcome).where(
                audit_log.c.action.in_(["download_employers", "download_employer"]))
        ).all()
    assert ("download_employers", "granted") in audited
    assert ("download_employer", "refused") in audited


def test_without_workbooks_the_downloads_say_so(worklist_nation):
    """A night without employer workbooks (the default): 404, and no section on the page."""
    _, published = worklist_nation
    app = create_app(PortalSettings(db_url=store.default_db_url(published),
                                    data_dir=published))
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30,
                                                auth=OFFICE) as client:
        assert client.get("/provinces/79/employers.zip").status_code == 404
        assert client.get("/provinces/79/employer.xlsx", params={
            "employer": "x"}).status_code == 404
        assert 'id="employer-downloads"' not in client.get("/provinces/79").text
