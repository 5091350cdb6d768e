"""The portal on PostgreSQL (production's database): publication read, accounts, sessions,
throttling and audit in the same database, through a live server."""

from __future__ import annotations

import httpx
import pytest
from portal_fixtures import PASSWORD, add_run, live_server, login, make_accounts, publish_nights

from portal.app import PortalSettings, create_app
from portal.security import Throttle


@pytest.fixture
def pg_url(postgres_url):
    """A new database in the test session's own PostgreSQL cluster (tests/conftest.py)."""
    return postgres_url


def test_portal_on_postgresql(tmp_path, pg_url):
    engine = publish_nights(tmp_path, pg_url, ["2026-11-20", "2026-11-21"],
                            lists_of={("63", "77")})
    add_run(engine, "2026-11-22", "failed", "validation failed")
    make_accounts(engine)
    settings = PortalSettings(db_url=pg_url, data_dir=tmp_path,
                              throttle=Throttle(free_attempts_per_user_and_client=2))
    with live_server(create_app(settings)) as base, httpx.Client(
            base_url=base, follow_redirects=True) as client:
        health = client.get("/api/health").json()
        assert health["latest_publication"] == "2026-11-21" and health["latest_run_failed"]
        assert health["latest_run"]["finished_at"].endswith("+00:00")
        rankings = client.get("/api/rankings", params={"scheme": "34", "line": "ui"}).json()
        assert len(rankings["provinces"]) == 34
        assert all(p["change"] is not None for p in rankings["provinces"])
        assert all(len(p["trend"]) == 2 and p["rank_of"] == 34 for p in rankings["provinces"])
        assert rankings["headline"]["changes"]["1"]["run_date"] == "2026-11-20"
        page = client.get("/", params={"scheme": "34", "map": "coverage"})
        assert page.status_code == 200 and page.text.count('class="tile"') == 34
        groups = client.get("/api/breakdowns", params={"scheme": "63", "code": "77"}).json()
        assert groups["groups"]["age_band"][0]["value"] == "0-5"
        assert len(client.get("/api/coverage").json()["provinces"]) == 63
        assert client.get("/exports/leadership.xlsx").status_code == 200
        xlsx = client.get("/provinces/77/lists/unsynchronized.xlsx", params={"scheme": "63"},
                          auth=("unit79", PASSWORD))
        assert xlsx.status_code == 200
        assert client.get("/provinces/77/lists/unsynchronized.xlsx",
                          auth=("office79", PASSWORD)).status_code == 403
        assert login(client, "lead").status_code == 200
        audit = client.get("/audit").text
        assert "unit79" in audit and "office79" in audit
        client.cookies.clear()
        for _ in range(2):
            assert login(client, "office74", "wrong-password").status_code == 401
        assert login(client, "office74").status_code == 429
        # PostgreSQL text holds no NUL: such a name is a wrong login, not a server error
        assert client.get("/api/audit", auth=("nul\x00user", "wrong")).status_code == 401
        entries = client.get("/api/audit", auth=("lead", PASSWORD)).json()["entries"]
        logins = [(e["username"], e["outcome"], e["client"]) for e in reversed(entries)
                  if e["action"] == "login"]
        assert logins == [("office74", "failed", "127.0.0.1")] * 2 + [
            ("office74", "throttled", "127.0.0.1"), ("nul?user", "failed", "127.0.0.1")]
