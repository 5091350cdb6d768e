"""Every route of the work list over a real night's publication: pages, JSON API, forms and
downloads answer an office for its own province; another province's rows can be neither read
nor changed through any of them; every POST needs its CSRF token."""

from __future__ import annotations

import csv
import io

import httpx
import openpyxl
import pytest
from portal_fixtures import PASSWORD, live_server, login
from worklist_fixtures import copy_published

from popsync import store, worklist
from popsync.text import folded_name
from portal.app import PortalSettings, create_app

pytestmark = pytest.mark.slow
OFFICE = ("office79", PASSWORD)
OTHER = ("office74", PASSWORD)  # another 63-scheme office of the same 34-scheme unit
UNIT = ("unit79", PASSWORD)  # the 34-scheme unit 79: offices 74, 77 and 79
LEAD = ("lead", PASSWORD)


@pytest.fixture(scope="module")
def site(worklist_nation, tmp_path_factory):
    _, published = worklist_nation
    data = copy_published(published, tmp_path_factory.mktemp("routes") / "out")
    app = create_app(PortalSettings(db_url=store.default_db_url(data), data_dir=data))
    with live_server(app) as base:
        yield base


@pytest.fixture
def api(site):
    with httpx.Client(base_url=site, timeout=30) as client:
        yield client


@pytest.fixture
def browser_session(site):
    """A logged-in session of office 79 (cookie) and its CSRF token."""
    with httpx.Client(base_url=site, timeout=30, follow_redirects=True) as client:
        assert login(client, "office79").status_code == 200
        # the session's token, as the logout form in every page's header carries it
        page = client.get("/provinces/79/worklist").text
        yield client, page.split('name="csrf_token" value="')[1].split('"')[0]


def _rows(api: httpx.Client, code: str = "79", auth=OFFICE, **params) -> dict:
    answer = api.get(f"/api/provinces/{code}/worklist", params=params, auth=auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_list_search_filters_sort_and_pages(api):
    everything = _rows(api, per_page=200)
    rows = everything["rows"]
    assert everything["total"] == len(rows) > 10
    assert {r["province_code"] for r in rows} == {"79"}
    assert [r["vss_code"] for r in rows] == sorted(r["vss_code"] for r in rows)
    named = next(r for r in rows if r["full_name"] and folded_name(r["full_name"]) != r[
        "full_name"].lower())
    typed = folded_name(named["full_name"])  # without diacritics
    found = _rows(api, q=typed.upper())["rows"]
    assert named["vss_code"] in {r["vss_code"] for r in found}
    assert all(folded_name(r["full_name"]).startswith(typed) for r in found)
    assert [r["vss_code"] for r in _rows(api, q=named["vss_code"])["rows"]] == [
        named["vss_code"]]
    with_id = next(r for r in rows if r["national_id"] and len(r["national_id"]) == 12)
    assert with_id["vss_code"] in {r["vss_code"] for r in _rows(api, q=with_id["national_id"])[
        "rows"]}
    for status in {r["status"] for r in rows}:
        assert {r["status"] for r in _rows(api, status=status, per_page=200)["rows"]} == {status}
    reason = rows[0]["reasons"][0]
    assert all(reason in r["reasons"] for r in _rows(api, reason=reason, per_page=200)["rows"])
    assert _rows(api, line="hi")["total"] <= everything["total"]
    by_name = _rows(api, sort="name", order="desc", per_page=200)["rows"]
    names = [folded_name(r["full_name"]) for r in by_name]
    assert names == sorted(names, reverse=True)
    first, second = _rows(api, per_page=25), _rows(api, per_page=25, page=2)
    assert first["pages"] == second["pages"] > 1 and not {
        r["vss_code"] for r in first["rows"]} & {r["vss_code"] for r in second["rows"]}
    assert api.get("/api/provinces/79/worklist", params={"status": "synchronized"},
                   auth=OFFICE).status_code == 422
    # the filter form sends its empty selects: "any"
    form = api.get("/provinces/79/worklist", auth=OFFICE, params={
        "q": "", "status": "", "reason": "", "line": "", "employer": "", "ward": "", "work": "",
        "per_page": "50", "sort": "vss_code", "order": "asc"})
    assert form.status_code == 200 and everything["rows"][0]["vss_code"] in form.text
    # the unit of the 34 scheme sees its offices' rows together
    unit = _rows(api, code="79", auth=UNIT, scheme="34", per_page=200)
    assert {r["province_code"] for r in unit["rows"]} >= {"79", "74"}


def test_row_page_and_api_compare_values_and_explain_reasons(api):
    rows = _rows(api, per_page=200)["rows"]
    row = next(r for r in rows if r["reasons"] == ["name_mismatch"])
    detail = api.get(f"/api/provinces/79/worklist/{row['vss_code']}", auth=OFFICE).json()
    name = next(c for c in detail["compared"] if c["field"] == "full_name")
    assert name["differs"] and name["registry"] == row["full_name"] != name["population"]
    assert detail["reasons"][0]["action"].startswith("Cập nhật họ tên")
    english = api.get(f"/api/provinces/79/worklist/{row['vss_code']}", params={"lang": "en"},
                      auth=OFFICE).json()
    assert english["reasons"][0]["label"] == "Name differs"
    page = api.get(f"/provinces/79/worklist/{row['vss_code']}", auth=OFFICE)
    assert page.status_code == 200 and "Cập nhật họ tên theo đúng cách viết" in page.text
    assert 'class="differs"' in page.text and name["population"] in page.text
    duplicate = next((r for r in _rows(api, reason="duplicate_registration")["rows"]), None)
    if duplicate:  # the person's other VSS codes are named
        shown = api.get(f"/api/provinces/79/worklist/{duplicate['vss_code']}",
                        auth=OFFICE).json()
        reason = next(r for r in shown["reasons"] if r["code"] == "duplicate_registration")
        assert reason["other_vss_codes"] and duplicate["vss_code"] not in reason[
            "other_vss_codes"]
    assert api.get("/provinces/79/worklist", auth=OFFICE).status_code == 200


def test_status_set_by_form_and_api_kept_with_who_and_when(api, browser_session):
    client, csrf = browser_session
    rows = _rows(api, per_page=200)["rows"]
    first, second = rows[0]["vss_code"], rows[1]["vss_code"]
    done = client.post(f"/provinces/79/worklist/{first}/status",
                       data={"status": "participant_contacted", "note": "gọi điện lúc 9 giờ",
                             "csrf_token": csrf})
    assert done.status_code == 200 and "gọi điện lúc 9 giờ" in done.text
    assert 'data-work="participant_contacted"' in done.text
    by_api = api.post(f"/api/provinces/79/worklist/{second}/status", auth=OFFICE,
                      json={"status": "disputed", "note": "không phải cùng người"})
    assert by_api.status_code == 200
    history = by_api.json()["history"]
    assert history[0]["status"] == "disputed" and history[0]["changed_by"] == "office79"
    assert history[0]["changed_at"]
    # with the session cookie, the API needs the session's token in X-CSRF-Token
    assert client.post(f"/api/provinces/79/worklist/{second}/status", json={
        "status": "in_progress"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    listed = {r["vss_code"]: r["work_status"] for r in _rows(api, per_page=200)["rows"]}
    assert listed[first] == "participant_contacted" and listed[second] == "in_progress"
    assert {r["vss_code"] for r in _rows(api, work="in_progress")["rows"]} == {second}
    assert len(api.get(f"/api/provinces/79/worklist/{second}", auth=OFFICE).json()[
        "history"]) == 2
    summary = api.get("/api/worklist/summary", auth=LEAD).json()["provinces"]
    assert summary["79"]["in_progress"] >= 2 and len(summary) > 20
    mine = api.get("/api/worklist/summary", auth=OFFICE).json()["provinces"]
    assert set(mine) == {"79"}
    assert api.get("/api/worklist/summary").status_code == 401
    province = api.get("/provinces/79", auth=OFFICE).text
    assert 'id="work-in-progress"' in province
    ranking = api.get("/", auth=LEAD).text
    assert "work-open" in ranking and "work-open" not in api.get("/").text


def test_every_post_needs_its_csrf_token(api, browser_session, site):
    client, csrf = browser_session
    vss = _rows(api)["rows"][0]["vss_code"]
    form = f"/provinces/79/worklist/{vss}/status"
    assert client.post(form, data={"status": "in_progress"}).status_code == 403
    assert client.post(form, data={"status": "in_progress",
                                   "csrf_token": "not-the-token"}).status_code == 403
    # HTTP Basic carries no session token: a form cannot be posted with it
    assert api.post(form, data={"status": "in_progress", "csrf_token": csrf},
                    auth=OFFICE).status_code == 401
    assert httpx.post(site + form, data={"status": "in_progress"}).status_code in (303, 401)
    route = f"/api/provinces/79/worklist/{vss}/status"
    assert client.post(route, json={"status": "in_progress"}).status_code == 403
    assert client.post(route, json={"status": "in_progress"},
                       headers={"X-CSRF-Token": "wrong"}).status_code == 403
    # a form's encoding is refused (another site's form cannot send JSON)
    assert api.post(route, data={"status": "in_progress"}, auth=OFFICE).status_code == 415
    assert api.post(route, json={"status": "in_progress"}).status_code == 401
    assert api.post(route, json={"status": "closed"}, auth=OFFICE).status_code == 422
    history = api.get(f"/api/provinces/79/worklist/{vss}", auth=OFFICE).json()["history"]
    assert all(h["status"] != "closed" for h in history)


def test_another_province_can_be_neither_read_nor_changed(api, browser_session):
    client, csrf = browser_session
    theirs = _rows(api, code="74", auth=OTHER)["rows"][0]["vss_code"]
    mine = _rows(api)["rows"][0]["vss_code"]
    refused = {
        # another province's list, row and download: 403
        ("GET", "/api/provinces/74/worklist"): 403,
        ("GET", f"/api/provinces/74/worklist/{theirs}"): 403,
        ("GET", "/provinces/74/worklist"): 403,
        ("GET", f"/provinces/74/worklist/{theirs}"): 403,
        ("GET", "/provinces/74/worklist.csv"): 403,
        ("GET", "/provinces/74/worklist.xlsx"): 403,
        # its row through my own province's routes: not in my list
        ("GET", f"/api/provinces/79/worklist/{theirs}"): 404,
        ("GET", f"/provinces/79/worklist/{theirs}"): 404,
        # the unit of the 34 scheme my office was merged into
        ("GET", "/api/provinces/79/worklist?scheme=34"): 403,
    }
    for (method, path), status in refused.items():
        assert api.request(method, path, auth=OFFICE).status_code == status, path
    assert api.post(f"/api/provinces/74/worklist/{theirs}/status", auth=OFFICE,
                    json={"status": "in_progress"}).status_code == 403
    assert api.post(f"/api/provinces/79/worklist/{theirs}/status", auth=OFFICE,
                    json={"status": "in_progress"}).status_code == 404
    assert client.post(f"/provinces/74/worklist/{theirs}/status",
                       data={"status": "in_progress", "csrf_token": csrf}).status_code == 403
    assert client.post(f"/provinces/79/worklist/{theirs}/status",
                       data={"status": "in_progress", "csrf_token": csrf}).status_code == 404
    # nothing was recorded on their row; the pages named none of it
    assert api.get(f"/api/provinces/74/worklist/{theirs}", auth=OTHER).json()["history"] == []
    page = client.get(f"/provinces/79/worklist/{theirs}")
    assert page.status_code == 404 and theirs not in page.text
    # anonymous: pages to the login form, API and downloads 401
    assert api.get("/provinces/79/worklist").status_code == 303
    assert api.get("/api/provinces/79/worklist").status_code == 401
    assert api.get(f"/api/provinces/79/worklist/{mine}").status_code == 401
    assert api.get("/provinces/79/worklist.csv").status_code == 401
    assert api.get("/api/provinces/99/worklist", auth=LEAD).status_code == 404
    assert api.get("/api/provinces/79/worklist/12345", auth=OFFICE).status_code == 422


def test_the_filtered_view_downloads_as_csv_and_xlsx(api):
    rows = _rows(api, status="needs_correction", per_page=200)
    text = api.get("/provinces/79/worklist.csv", params={"status": "needs_correction"},
                   auth=OFFICE)
    assert text.status_code == 200 and text.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(text.content.decode("utf-8-sig"))))
    assert table[0][0] == "Mã số BHXH" and len(table) == rows["total"] + 1
    assert [r[0] for r in table[1:]] == [r["vss_code"] for r in rows["rows"]]
    book = api.get("/provinces/79/worklist.xlsx", params={"status": "needs_correction",
                                                          "lang": "en"}, auth=OFFICE)
    assert book.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(book.content), read_only=True).worksheets[0]
    cells = list(sheet.iter_rows(values_only=True))
    assert cells[0][0] == "VSS code" and len(cells) == rows["total"] + 1
    audit = api.get("/api/audit", auth=LEAD).json()["entries"]
    assert any(e["action"] == "download_worklist" and e["outcome"] == "granted"
               for e in audit)


def test_cells_a_spreadsheet_would_run_are_neutralized():
    from portal.worklist_files import cell

    assert cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert cell("+1") == "'+1" and cell("Nguyễn\x07 Văn") == "Nguyễn Văn" and cell(None) == ""
    assert worklist.WORK_STATUSES[0] == "open"
