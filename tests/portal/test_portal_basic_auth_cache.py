"""HTTP Basic scripts are not made to pay a password hash per request (issue 14: 36 req/s), and
the shortcut is safe: only a success is remembered, for a short while, by a keyed digest (never
the password), and a changed or deleted account is not served from it."""

from __future__ import annotations

import hashlib
import time

import pytest
from fastapi.testclient import TestClient
from portal_fixtures import PASSWORD, make_accounts

from popsync import store
from portal import security
from portal.app import PortalSettings, create_app


@pytest.fixture
def hashes(monkeypatch) -> list[int]:
    """Counts the password hashes computed (the real scrypt still runs)."""
    counted: list[int] = []
    real = hashlib.scrypt

    def scrypt(*args, **kwargs):
        counted.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", scrypt)
    return counted


def _portal(tmp_path, **settings):
    db_url = store.default_db_url(tmp_path)
    engine = store.engine_for(db_url)
    make_accounts(engine)
    app = create_app(PortalSettings(db_url=db_url, data_dir=tmp_path, **settings))
    return engine, TestClient(app, follow_redirects=False)


def test_a_script_calling_the_api_pays_one_hash_not_one_per_call(tmp_path, hashes):
    _, client = _portal(tmp_path)
    hashes.clear()  # the accounts' own
    for _ in range(10):
        assert client.get("/api/provinces/79", auth=("office79", PASSWORD)).status_code == 200
    assert len(hashes) == 1
    # a wrong password is never answered from what was remembered
    assert client.get("/api/provinces/79", auth=("office79", "wrong-password")).status_code == 401
    assert len(hashes) == 2


def test_a_changed_or_deleted_account_is_not_served_from_memory(tmp_path, hashes):
    engine, client = _portal(tmp_path)
    assert client.get("/api/provinces/79", auth=("office79", PASSWORD)).status_code == 200
    security.save_user(engine, "office79", "a-new-password", "office", "79", "63", replace=True)
    assert client.get("/api/provinces/79", auth=("office79", PASSWORD)).status_code == 401
    assert client.get("/api/provinces/79", auth=("office79", "a-new-password")).status_code == 200
    security.delete_user(engine, "office79")
    assert client.get("/api/provinces/79", auth=("office79", "a-new-password")).status_code == 401


def test_what_is_remembered_expires(tmp_path, hashes):
    _, client = _portal(tmp_path, verified_credentials_seconds=0.3)
    hashes.clear()
    for _ in range(2):
        assert client.get("/api/provinces/79", auth=("office79", PASSWORD)).status_code == 200
    assert len(hashes) == 1
    time.sleep(0.4)
    assert client.get("/api/provinces/79", auth=("office79", PASSWORD)).status_code == 200
    assert len(hashes) == 2


def test_the_memory_holds_no_password_and_is_bounded():
    memory = security.VerifiedCredentials(seconds=60, capacity=3)
    for n in range(5):
        memory.remember(f"user{n}", f"secret-password-{n}", "scrypt$stored")
    assert len(memory) == 3
    assert "secret-password" not in repr(vars(memory))
    assert memory.verified("user4", "secret-password-4", "scrypt$stored")
    assert not memory.verified("user0", "secret-password-0", "scrypt$stored")  # pushed out
    assert not memory.verified("user4", "secret-password-4", "scrypt$other")
