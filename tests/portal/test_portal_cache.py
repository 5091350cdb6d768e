"""What the portal computes once per run state (issue 14's load target) stays right: a new
night shows once the state is read again, an ETag spares an unchanged answer, the page shared
by anonymous visitors never shows a logged-in user's links, the leadership view (issue 13) made
for one viewer is never shown to another."""

from __future__ import annotations

import re
import time

import httpx
from fastapi.testclient import TestClient
from portal_fixtures import PASSWORD, login, make_accounts, publish_nights

from popsync import store
from portal import leadership
from portal.app import PortalSettings, create_app

HTML = {"accept": "text/html"}


def _portal(tmp_path, **settings):
    db_url = store.default_db_url(tmp_path)
    engine = publish_nights(tmp_path, db_url, ["2026-11-20"], lists_of={("63", "79")})
    make_accounts(engine)
    app = create_app(PortalSettings(db_url=db_url, data_dir=tmp_path, **settings))
    return db_url, TestClient(app, follow_redirects=False)


def test_a_new_night_is_shown_once_the_state_is_read_again(tmp_path):
    db_url, client = _portal(tmp_path, state_seconds=0.3)
    assert client.get("/api/rankings").json()["run_date"] == "2026-11-20"
    assert "<strong>2026-11-20</strong>" in client.get("/", headers=HTML).text
    publish_nights(tmp_path, db_url, ["2026-11-21"], lists_of=set())
    time.sleep(0.4)
    rankings = client.get("/api/rankings").json()
    assert rankings["run_date"] == "2026-11-21"
    assert [p["run_date"] for p in rankings["national_trend"]] == ["2026-11-20", "2026-11-21"]
    assert "<strong>2026-11-21</strong>" in client.get("/", headers=HTML).text
    detail = client.get("/api/provinces/79", auth=("office79", PASSWORD)).json()
    assert detail["run_date"] == "2026-11-21" and detail["lists"] == {}


def test_an_unchanged_answer_is_not_sent_again(tmp_path):
    _, client = _portal(tmp_path)
    first = client.get("/api/rankings", params={"scheme": "34"})
    assert first.status_code == 200 and first.headers["etag"]
    again = client.get("/api/rankings", params={"scheme": "34"},
                       headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and not again.content
    assert client.get("/api/rankings", headers={"if-none-match": first.headers["etag"]}
                      ).status_code == 200  # another scheme: another answer
    private = client.get("/api/provinces/79", auth=("office79", PASSWORD))
    assert private.headers["cache-control"] == "private, no-cache"
    # the answer is shared by those allowed to see it, never given to others
    assert client.get("/api/provinces/79", auth=("office74", PASSWORD),
                      headers={"if-none-match": private.headers["etag"]}).status_code == 403
    assert client.get("/api/provinces/79", headers={"if-none-match": private.headers["etag"]}
                      ).status_code == 401


def test_the_page_of_anonymous_visitors_shows_no_one_elses_links(tmp_path):
    _, client = _portal(tmp_path)
    anonymous = client.get("/", headers=HTML).text
    assert 'id="login-link"' in anonymous and "/provinces/79?" not in anonymous
    with httpx.Client(transport=client._transport, base_url="http://testserver") as office:
        assert login(office, "office79").status_code == 303
        page = office.get("/", headers=HTML).text
    assert 'id="whoami"' in page and "/provinces/79?scheme=63" in page
    assert client.get("/", headers=HTML).text == anonymous


def test_a_province_page_shared_content_keeps_each_users_links_and_name(tmp_path):
    """The content of a province page is rendered once per state for those who may open the
    same related provinces; the frame (who is logged in) is each request's own."""
    _, client = _portal(tmp_path)
    pages = {}
    for username in ("office79", "unit79", "office79"):
        with httpx.Client(transport=client._transport, base_url="http://testserver") as user:
            assert login(user, username).status_code == 303
            pages.setdefault(username, []).append(
                user.get("/provinces/79", params={"scheme": "63"}, headers=HTML).text)
    merged_unit = 'href="/provinces/79?scheme=34"'
    assert merged_unit not in pages["office79"][0] and merged_unit not in pages["office79"][1]
    assert merged_unit in pages["unit79"][0]
    assert "<strong>office79</strong>" in pages["office79"][1]
    assert "<strong>unit79</strong>" in pages["unit79"][0]
    assert 'id="by-status"' in pages["office79"][1]


def test_breakdowns_and_coverage_answers_carry_an_etag(tmp_path):
    _, client = _portal(tmp_path)
    for path in ("/api/breakdowns", "/api/coverage"):
        first = client.get(path, params={"scheme": "34"})
        assert first.status_code == 200 and first.headers["cache-control"] == "public, no-cache"
        assert client.get(path, params={"scheme": "34"},
                          headers={"if-none-match": first.headers["etag"]}).status_code == 304
        assert client.get(path, params={"scheme": "34", "line": "hi"},
                          headers={"if-none-match": first.headers["etag"]}).status_code == 200


def test_the_leadership_view_is_made_once_and_each_user_sees_only_their_own(
        tmp_path, monkeypatch):
    """The ranking page's figures and charts are made once per run state for everyone; the
    links, the marked bars and the outlined own province are each user's own."""
    made, workbooks = [], []
    page, workbook = leadership.page, leadership.workbook
    monkeypatch.setattr(leadership, "page", lambda engine, figures: (
        made.append(figures), page(engine, figures))[1])
    monkeypatch.setattr(leadership, "workbook", lambda engine, figures: (
        workbooks.append(figures), workbook(engine, figures))[1])
    _, client = _portal(tmp_path)
    own_tile = r'<rect class="tile own"[^>]*data-code="(\d\d)"'
    links = r'href="/provinces/(\d\d)\?scheme=63"'
    marked = r'class="bar highlight"'
    pages = {}
    for username in ("office79", "office74", "office79", "lead"):
        with httpx.Client(transport=client._transport, base_url="http://testserver") as user:
            assert login(user, username).status_code == 303
            pages[username] = user.get("/", headers=HTML).text
            assert user.get("/", params={"sort": "name", "order": "desc"},
                            headers=HTML).status_code == 200
            assert user.get("/exports/leadership.xlsx").status_code == 200
    anonymous = client.get("/", headers=HTML).text
    assert client.get("/exports/leadership.xlsx").status_code == 200
    assert len(made) == 1 and len(workbooks) == 1  # public figures: once for everyone
    for username, code in (("office79", "79"), ("office74", "74")):
        assert re.findall(own_tile, pages[username]) == [code]
        assert set(re.findall(links, pages[username])) == {code}
        assert 'id="my-rank"' in pages[username] and len(re.findall(marked, pages[username])) == 1
    lead = pages["lead"]
    assert not re.findall(own_tile, lead) and 'id="my-rank"' not in lead
    assert len(set(re.findall(links, lead))) > 2 and not re.findall(marked, lead)
    assert not re.findall(own_tile, anonymous) and not re.findall(links, anonymous)
    assert 'id="my-rank"' not in anonymous and not re.findall(marked, anonymous)
