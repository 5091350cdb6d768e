"""Login throttling by username and address (issue 14: a stranger must not lock a real user
out), the client address behind a reverse proxy, and the audit of failed and refused logins.
In-process through TestClient, whose ``client`` argument sets the connecting address."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from portal_fixtures import PASSWORD, live_server, login, make_accounts

from popsync import store
from popsync.errors import PopsyncError
from portal import security
from portal.app import PortalSettings, create_app
from portal.security import Throttle
from portal.tables import audit_log

STRANGER = ("203.0.113.7", 40000)
OWNER = ("198.51.100.2", 40000)
READER = ("192.0.2.99", 40000)


@pytest.fixture
def make_app(tmp_path):
    """A portal of its own (accounts, no publication), built with the given settings."""
    db_url = store.default_db_url(tmp_path)
    make_accounts(store.engine_for(db_url))

    def build(**settings):
        return create_app(PortalSettings(db_url=db_url, data_dir=tmp_path, **settings))

    return build


def client_at(app, address: tuple[str, int]) -> TestClient:
    return TestClient(app, client=address, follow_redirects=False)


def login_entries(app) -> list[dict]:
    """The audit log's login entries, oldest first, as leadership reads them."""
    with client_at(app, READER) as reader:
        response = reader.get("/api/audit", params={"limit": 5000}, auth=("lead", PASSWORD))
    assert response.status_code == 200, response.text
    return [e for e in reversed(response.json()["entries"]) if e["action"] == "login"]


def login_with(client: httpx.Client, username: str, password: str, headers: dict):
    """The login form with extra request headers on both of its requests."""
    page = client.get("/login", headers=headers)
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token}, headers=headers,
                       follow_redirects=False)


def test_a_stranger_hammering_a_username_does_not_lock_its_owner_out(make_app):
    # a long first delay: the owner's logins (a password hash each) may take seconds on a
    # loaded machine, and the stranger must stay refused all along
    app = make_app(throttle=Throttle(free_attempts_per_user_and_client=3,
                                     first_delay_seconds=60.0))
    with client_at(app, STRANGER) as stranger, client_at(app, OWNER) as owner:
        guesses = [login(stranger, "lead", "guess-guess").status_code for _ in range(8)]
        assert guesses == [401] * 3 + [429] * 5
        assert stranger.get("/api/audit", auth=("lead", PASSWORD)).status_code == 429
        for _ in range(3):  # the owner, from their own address, while the stranger goes on
            landed = login(owner, "lead")
            assert landed.status_code == 303 and "popsync_session" in owner.cookies
            owner.cookies.clear()
            assert login(stranger, "lead", "guess-guess").status_code == 429
            assert owner.get("/api/audit", auth=("lead", PASSWORD)).status_code == 200


def test_one_address_trying_many_usernames_is_throttled(make_app):
    app = make_app(throttle=Throttle(free_attempts_per_user_and_client=3,
                                     free_attempts_per_client=6, first_delay_seconds=60.0))
    with client_at(app, STRANGER) as stranger, client_at(app, OWNER) as owner:
        assert [login(stranger, f"user{i}", "guess-guess").status_code
                for i in range(6)] == [401] * 6
        assert login(stranger, "someone-else", "guess-guess").status_code == 429
        assert login(stranger, "office79").status_code == 429  # even a right password waits
        assert stranger.get("/api/audit", auth=("user99", "guess")).status_code == 429
        assert login(owner, "office79").status_code == 303  # other addresses are not held


def test_an_ipv6_client_has_one_budget_for_its_64_network(make_app):
    """Anyone holding an IPv6 /64 can send from 2^64 addresses: one budget for all of them."""
    app = make_app(throttle=Throttle(free_attempts_per_user_and_client=3,
                                     free_attempts_per_client=4, first_delay_seconds=60.0))
    for i in range(4):
        with client_at(app, (f"2001:db8:7:1::{i + 1}", 40000)) as hopper:
            assert login(hopper, f"user{i}", "guess-guess").status_code == 401
    with client_at(app, ("2001:db8:7:1:ffff::9", 40000)) as hopper:
        assert login(hopper, "office79").status_code == 429
    with client_at(app, ("2001:db8:7:2::1", 40000)) as neighbour:  # the next /64
        assert login(neighbour, "office79").status_code == 303


def test_ipv4_mapped_addresses_count_as_their_ipv4_address(make_app):
    """A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: they must not share the
    budget of the IPv6 /64 those addresses all fall in."""
    app = make_app(throttle=Throttle(free_attempts_per_user_and_client=3,
                                     free_attempts_per_client=3, first_delay_seconds=60.0))
    with client_at(app, ("::ffff:203.0.113.7", 40000)) as stranger:
        for i in range(3):
            assert login(stranger, f"user{i}", "guess-guess").status_code == 401
        assert login(stranger, "office79").status_code == 429
    with client_at(app, ("::ffff:198.51.100.2", 40000)) as owner:
        assert login(owner, "office79").status_code == 303
    with client_at(app, STRANGER) as same_stranger:  # the same client over IPv4
        assert login(same_stranger, "office79").status_code == 429
    assert {e["client"] for e in login_entries(app)} == {"203.0.113.7"}


def test_failed_and_refused_logins_are_audited_without_the_password(make_app, tmp_path):
    app = make_app(throttle=Throttle(free_attempts_per_user_and_client=2,
                                     first_delay_seconds=60.0))
    started = datetime.now(UTC)
    with client_at(app, STRANGER) as stranger:
        for _ in range(2):
            assert login(stranger, "office79", "sesame-guess-1").status_code == 401
        for _ in range(5):
            assert login(stranger, "office79", "sesame-guess-2").status_code == 429
        assert stranger.get("/api/audit", auth=("Office79", "sesame-guess-3")).status_code == 429
        long_name = "n" * 500
        assert stranger.get("/api/audit", auth=(long_name, "sesame-guess-4")).status_code == 401
        assert stranger.get("/api/audit", auth=("nul\x00user", "sesame-guess-5")).status_code \
            == 401
    finished = datetime.now(UTC)
    entries = login_entries(app)
    # Refusals are written once per held key and per wait, not once per request: an anonymous
    # client must not be able to grow the log at the rate it can send requests.
    assert [(e["username"], e["outcome"], e["client"]) for e in entries] == [
        ("office79", "failed", STRANGER[0]),
        ("office79", "failed", STRANGER[0]),
        ("office79", "throttled", STRANGER[0]),
        ("n" * 64, "failed", STRANGER[0]),
        ("nul?user", "failed", STRANGER[0]),
    ]
    for entry in entries:
        at = datetime.fromisoformat(entry["at"])
        assert at.tzinfo is not None and started - timedelta(seconds=1) <= at <= finished
        assert entry["scheme"] is None and entry["file_format"] is None
    with store.engine_for(store.default_db_url(tmp_path)).connect() as conn:
        everything = repr(conn.execute(sa.select(audit_log)).all())
    assert "sesame-guess" not in everything and "nul\x00user" not in everything


def test_a_refusal_is_audited_again_after_the_next_failure(make_app):
    app = make_app(throttle=Throttle(free_attempts_per_user_and_client=1, max_delay_seconds=1))
    with client_at(app, STRANGER) as stranger:
        assert login(stranger, "lead", "guess-guess").status_code == 401
        assert login(stranger, "lead", "guess-guess").status_code == 429
        assert login(stranger, "lead", "guess-guess").status_code == 429
        entries = login_entries(app)
        assert [e["outcome"] for e in entries] == ["failed", "throttled"]
        time.sleep(1.1)
        assert login(stranger, "lead", "guess-guess").status_code == 401
        assert login(stranger, "lead", "guess-guess").status_code == 429
    assert [e["outcome"] for e in login_entries(app)] == ["failed", "throttled"] * 2


def test_the_audit_page_shows_logins(make_app):
    app = make_app()
    with client_at(app, STRANGER) as stranger:
        assert login(stranger, "office79", "guess-guess").status_code == 401
    with client_at(app, READER) as reader:
        page = reader.get("/audit", auth=("lead", PASSWORD))
    assert page.status_code == 200
    row = page.text.split('<tr class="failed">')[1].split("</tr>")[0]
    assert "office79" in row and STRANGER[0] in row and "Đăng nhập" in row
    assert "None" not in row and "unsynchronized" not in row


def test_a_wrong_basic_login_on_a_page_counts_once(make_app):
    """The error page identifies the caller again for its header: that must not try the same
    wrong password a second time (it would halve the free attempts and audit it twice)."""
    app = make_app(throttle=Throttle(free_attempts_per_user_and_client=3))
    with client_at(app, STRANGER) as stranger:
        statuses = [stranger.get("/", auth=("lead", "guess-guess"),
                                 headers={"accept": "text/html"}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert [e["outcome"] for e in login_entries(app)] == ["failed"] * 3 + ["throttled"]


def test_failures_are_forgotten_after_a_quiet_while(tmp_path):
    """Old mistakes must not hold an office's shared address for ever, nor pile up rows."""
    engine = store.engine_for(store.default_db_url(tmp_path))
    make_accounts(engine)
    throttle = Throttle(free_attempts_per_user_and_client=2, free_attempts_per_client=2,
                        forget_after_seconds=600)
    for name in ("office79", "nobody"):
        assert security.authenticate(engine, throttle, name, "guess-guess", "10.0.0.1") is None
    with pytest.raises(security.LoginThrottled):
        security.authenticate(engine, throttle, "lead", PASSWORD, "10.0.0.1")
    failures = sa.Table("portal_login_failures", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(failures.update().values(
            last_failure_at=datetime.now(UTC) - timedelta(seconds=601)))
    assert security.authenticate(engine, throttle, "lead", PASSWORD, "10.0.0.1") is not None
    assert security.authenticate(engine, throttle, "office79", "guess-guess", "10.0.0.2") is None
    with engine.connect() as conn:
        keys = [row.key for row in conn.execute(sa.select(failures))]
    assert all("10.0.0.1" not in key for key in keys) and len(keys) == 2


# --- the client address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "client"),
    [
        ("203.0.113.7", [], (), "203.0.113.7"),
        # not a trusted proxy: whatever the header says, the peer is the client
        ("203.0.113.7", ["198.51.100.2"], (), "203.0.113.7"),
        ("203.0.113.7", ["198.51.100.2"], ("10.0.0.0/8",), "203.0.113.7"),
        # a trusted proxy: the rightmost address it did not add itself
        ("10.0.0.5", ["198.51.100.2"], ("10.0.0.0/8",), "198.51.100.2"),
        ("10.0.0.5", ["6.6.6.6, 198.51.100.2, 10.0.0.9"], ("10.0.0.0/8",), "198.51.100.2"),
        ("10.0.0.5", ["6.6.6.6", "198.51.100.2"], ("10.0.0.5",), "198.51.100.2"),
        ("10.0.0.5", ["198.51.100.2:5555"], ("10.0.0.5",), "198.51.100.2"),
        ("10.0.0.5", ["[2001:db8::1]:5555"], ("10.0.0.5",), "2001:db8::1"),
        ("10.0.0.5", [], ("10.0.0.5",), "10.0.0.5"),
        ("10.0.0.5", ["10.0.0.7"], ("10.0.0.0/8",), "10.0.0.7"),  # only proxies: the leftmost
        ("10.0.0.5", ["not-an-address"], ("10.0.0.5",), "10.0.0.5"),
        ("::ffff:203.0.113.7", [], (), "203.0.113.7"),
        ("2001:DB8:0:0::1", [], (), "2001:db8::1"),
        (None, ["198.51.100.2"], (), "unknown"),
    ],
)
def test_client_address(peer, forwarded_for, trusted, client):
    networks = security.trusted_networks(trusted)
    assert security.client_address(peer, forwarded_for, networks) == client


def test_a_bad_trusted_proxy_is_refused_with_its_value(make_app):
    with pytest.raises(PopsyncError, match="'10.0.0.300'"):
        make_app(trusted_proxies=("10.0.0.300",))


def test_users_behind_a_trusted_proxy_are_told_apart(make_app):
    app = make_app(trusted_proxies=("10.0.0.5",),
                   throttle=Throttle(free_attempts_per_user_and_client=3))
    proxy = ("10.0.0.5", 40000)
    with client_at(app, proxy) as via_proxy:
        spoofed = {"x-forwarded-for": f"{OWNER[0]}, {STRANGER[0]}"}  # the stranger's own claim
        for _ in range(3):
            assert login_with(via_proxy, "lead", "guess-guess", spoofed).status_code == 401
        assert login_with(via_proxy, "lead", "guess-guess", spoofed).status_code == 429
        assert login_with(via_proxy, "lead", PASSWORD,
                          {"x-forwarded-for": OWNER[0]}).status_code == 303
    assert {e["client"] for e in login_entries(app)} == {STRANGER[0]}


def test_cookies_are_secure_behind_a_trusted_https_proxy_only(make_app):
    """uvicorn used to believe X-Forwarded-Proto from 127.0.0.1; the portal now reads it itself,
    from the proxies it trusts."""
    app = make_app(trusted_proxies=("10.0.0.5",))
    https = {"x-forwarded-proto": "https", "x-forwarded-for": OWNER[0]}
    with client_at(app, ("10.0.0.5", 40000)) as via_proxy:
        assert "secure" in via_proxy.get("/login", headers=https).headers["set-cookie"].lower()
        assert "secure" not in via_proxy.get("/login").headers["set-cookie"].lower()
    with client_at(app, STRANGER) as direct:
        assert "secure" not in direct.get("/login", headers=https).headers["set-cookie"].lower()


def test_forwarded_for_from_an_untrusted_peer_is_ignored(make_app):
    app = make_app(throttle=Throttle(free_attempts_per_user_and_client=3))
    with client_at(app, STRANGER) as stranger:
        for i in range(3):
            header = {"x-forwarded-for": f"198.51.100.{i}"}
            assert login_with(stranger, "lead", "guess-guess", header).status_code == 401
        header = {"x-forwarded-for": "198.51.100.99"}
        assert login_with(stranger, "lead", "guess-guess", header).status_code == 429
    assert {e["client"] for e in login_entries(app)} == {STRANGER[0]}


def test_the_served_portal_ignores_forwarded_for_by_default(make_app):
    """uvicorn believes X-Forwarded-For from 127.0.0.1 unless told not to: the portal's server
    must leave the header to the portal's own setting."""
    app = make_app(throttle=Throttle(free_attempts_per_user_and_client=50,
                                     free_attempts_per_client=3))
    with live_server(app) as base, httpx.Client(base_url=base) as local:
        for i in range(3):
            header = {"x-forwarded-for": f"198.51.100.{i}"}
            assert login_with(local, f"user{i}", "guess-guess", header).status_code == 401
        header = {"x-forwarded-for": "198.51.100.99"}
        assert login_with(local, "user9", "guess-guess", header).status_code == 429
    assert {e["client"] for e in login_entries(app)} == {"127.0.0.1"}
