"""The one access rule, passwords and accounts: unit tests without a server."""

from __future__ import annotations

import time

import pytest

from popsync import store
from popsync.errors import PopsyncError
from popsync.reference import PROVINCES_34, PROVINCES_63, codes_63_of
from portal import security
from portal.security import User, may_access_province

LEAD = User("lead", "leadership")
OFFICE_63_74 = User("o74", "office", "74", "63")
OFFICE_63_52 = User("o52", "office", "52", "63")
OFFICE_34_79 = User("u79", "office", "79", "34")
OFFICE_34_52 = User("u52", "office", "52", "34")


@pytest.mark.parametrize(
    ("user", "scheme", "code", "allowed"),
    [
        (None, "63", "79", False),
        (LEAD, "63", "01", True),
        (LEAD, "34", "79", True),
        # a 34-scheme unit: its own list and the 63-scheme lists of the provinces merged into it
        (OFFICE_34_79, "34", "79", True),
        (OFFICE_34_79, "63", "74", True),
        (OFFICE_34_79, "63", "77", True),
        (OFFICE_34_79, "63", "79", True),
        (OFFICE_34_79, "63", "75", False),
        (OFFICE_34_79, "34", "75", False),
        # a 63-scheme province: only itself, not the merged unit holding other provinces
        (OFFICE_63_74, "63", "74", True),
        (OFFICE_63_74, "63", "79", False),
        (OFFICE_63_74, "34", "79", False),
        (OFFICE_63_74, "34", "74", False),
        # 52 is Bình Định in the 63 scheme and Gia Lai in the 34: the code alone means nothing
        (OFFICE_63_52, "63", "52", True),
        (OFFICE_63_52, "34", "52", False),
        (OFFICE_34_52, "34", "52", True),
        (OFFICE_34_52, "63", "52", True),  # Bình Định was merged into Gia Lai
        (OFFICE_34_52, "63", "64", True),
        (OFFICE_34_52, "63", "51", False),
        (User("odd", "viewer", "79", "63"), "63", "79", False),
    ],
)
def test_access_rule(user, scheme, code, allowed):
    assert may_access_province(user, scheme, code) is allowed


def test_every_34_unit_office_reaches_exactly_its_63_provinces():
    for unit in PROVINCES_34:
        office = User("u", "office", unit, "34")
        reachable = {code for code in PROVINCES_63 if may_access_province(office, "63", code)}
        assert reachable == set(codes_63_of(unit))


def test_password_hashes_are_salted_and_verify():
    first, second = security.hash_password("s3cret-pass"), security.hash_password("s3cret-pass")
    assert first != second and first.startswith("scrypt$")
    assert "s3cret-pass" not in first
    assert security.verify_password("s3cret-pass", first)
    assert not security.verify_password("s3cret-pasS", first)
    assert not security.verify_password("s3cret-pass", "garbage")


def test_save_user_validates_and_replaces(tmp_path):
    engine = store.engine_for(store.default_db_url(tmp_path))
    with pytest.raises(PopsyncError, match="needs --province"):
        security.save_user(engine, "o", "password1", "office", None, "63")
    with pytest.raises(PopsyncError, match="unknown 34-scheme province code '74'"):
        security.save_user(engine, "o", "password1", "office", "74", "34")
    with pytest.raises(PopsyncError, match="too short"):
        security.save_user(engine, "o", "short", "office", "74", "63")
    with pytest.raises(PopsyncError, match="invalid username"):
        security.save_user(engine, "a b", "password1", "leadership")
    security.save_user(engine, "o", "password1", "office", "74", "63")
    with pytest.raises(PopsyncError, match="already exists"):
        security.save_user(engine, "o", "password2", "office", "74", "63")
    security.save_user(engine, "o", "password2", "office", "77", "63", replace=True)
    assert security.list_users(engine) == [User("o", "office", "77", "63")]
    throttle = security.Throttle()
    assert security.authenticate(engine, throttle, "o", "password1", "t") is None
    assert security.authenticate(engine, throttle, "o", "password2", "t") == User(
        "o", "office", "77", "63")


def test_throttle_delays_grow_and_cap():
    throttle = security.Throttle(free_attempts_per_user_and_client=3, max_delay_seconds=10)
    assert [throttle.delay(n, 3) for n in range(8)] == [0, 0, 0, 1, 2, 4, 8, 10]


def test_a_successful_login_forgets_the_failures(tmp_path):
    engine = store.engine_for(store.default_db_url(tmp_path))
    security.save_user(engine, "lead", "password1", "leadership")
    throttle = security.Throttle(free_attempts_per_user_and_client=2, max_delay_seconds=1)
    for _ in range(2):
        assert security.authenticate(engine, throttle, "lead", "wrong", "c") is None
    wait = security.retry_after(engine, throttle, "lead", "c")
    assert 0 < wait <= 1
    assert security.retry_after(engine, throttle, "lead", "other") == 0.0
    with pytest.raises(security.LoginThrottled):
        security.authenticate(engine, throttle, "lead", "password1", "c")
    time.sleep(wait + 0.05)
    assert security.authenticate(engine, throttle, "lead", "password1", "c") is not None
    assert security.authenticate(engine, throttle, "lead", "wrong", "c") is None
    assert security.retry_after(engine, throttle, "lead", "c") == 0.0  # one failure, not three


def test_ranking_sort_puts_missing_changes_last_in_both_orders():
    from portal.routers.pages import sorted_provinces as _sorted_provinces

    provinces = [
        {"name": "Đà Nẵng", "change": None},
        {"name": "An Giang", "change": 0.01},
        {"name": "Cà Mau", "change": -0.02},
    ]
    down = _sorted_provinces(provinces, "change", descending=True)
    up = _sorted_provinces(provinces, "change", descending=False)
    assert [p["name"] for p in down] == ["An Giang", "Cà Mau", "Đà Nẵng"]
    assert [p["name"] for p in up] == ["Cà Mau", "An Giang", "Đà Nẵng"]
    by_name = _sorted_provinces(provinces, "name", descending=False)
    assert [p["name"] for p in by_name] == ["An Giang", "Cà Mau", "Đà Nẵng"]  # Đ sorts as D
