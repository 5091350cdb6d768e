"""Accounts, passwords, sessions, login throttling and the one access rule of the portal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from popsync.errors import PopsyncError
from popsync.reference import PROVINCES_34, PROVINCES_63, to_34
from portal.tables import LEADERSHIP, OFFICE, ROLES, ensure_tables, login_failures, sessions, users

# scrypt cost: 16 MiB and ~50 ms per check on this machine; stored with each hash so it can rise.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32
MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class User:
    username: str
    role: str
    province_code: str | None = None
    scheme: str | None = None

    @property
    def is_leadership(self) -> bool:
        return self.role == LEADERSHIP


def now_utc() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite gives naive datetimes back; every time the portal writes is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- the access rule ---------------------------------------------------------------------------


def may_access_province(user: User | None, scheme: str, province_code: str) -> bool:
    """Whether ``user`` may see the details and download the lists of a province in a scheme.

    Leadership: every province. An office: its own province in its own scheme; an office of a
    34-scheme unit also the 63-scheme provinces merged into that unit (their lists are parts of
    its own). An office of a 63-scheme province may not open the 34-scheme unit it was merged
    into, which holds other provinces' participants. Anyone else: nothing.
    """
    if user is None:
        return False
    if user.role == LEADERSHIP:
        return True
    if user.role != OFFICE or user.province_code is None:
        return False
    if scheme == user.scheme:
        return province_code == user.province_code
    if user.scheme == "34" and scheme == "63":
        return province_code in PROVINCES_63 and to_34(province_code) == user.province_code
    return False


# --- passwords ---------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P,
        dklen=_SCRYPT_LEN,
    )
    b64 = base64.b64encode
    return (
        f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$"
        f"{b64(salt).decode()}${b64(digest).decode()}"
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        algorithm, n, r, p, salt, digest = stored.split("$")
        if algorithm != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
            p=int(p), dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Checked against when the username is unknown, so that a wrong name costs as long as a wrong
# password and response times do not tell which accounts exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


# --- accounts ----------------------------------------------------------------------------------


def validate_account(role: str, province_code: str | None, scheme: str | None) -> None:
    if role not in ROLES:
        raise PopsyncError(f"unknown role {role!r}: use 'office' or 'leadership'")
    if role == LEADERSHIP:
        if province_code is not None:
            raise PopsyncError("a leadership account sees every province: do not give --province")
        return
    if province_code is None:
        raise PopsyncError("an office account needs --province CODE (and --scheme 63|34)")
    table = {"63": PROVINCES_63, "34": PROVINCES_34}.get(scheme or "")
    if table is None:
        raise PopsyncError(f"unknown scheme {scheme!r}: use 63 or 34")
    if province_code not in table:
        raise PopsyncError(
            f"unknown {scheme}-scheme province code {province_code!r}: see "
            "popsync/reference/data/provinces_{scheme}.csv"
        )


def save_user(
    engine: sa.Engine,
    username: str,
    password: str,
    role: str,
    province_code: str | None = None,
    scheme: str | None = "63",
    *,
    replace: bool = False,
) -> User:
    """Create an account (or replace it when ``replace``); the password is stored only hashed."""
    if not _USERNAME.match(username):
        raise PopsyncError(
            f"invalid username {username!r}: 1-64 letters, digits, '.', '_' or '-'"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PopsyncError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    validate_account(role, province_code, scheme)
    if role == LEADERSHIP:
        scheme = None
    ensure_tables(engine)
    row = {
        "username": username,
        "password_hash": hash_password(password),
        "role": role,
        "province_code": province_code,
        "scheme": scheme,
        "created_at": now_utc(),
    }
    with engine.begin() as conn:
        exists = conn.execute(
            sa.select(users.c.username).where(users.c.username == username)
        ).first()
        if exists and not replace:
            raise PopsyncError(f"user {username!r} already exists (use --replace to reset it)")
        if exists:
            conn.execute(sessions.delete().where(sessions.c.username == username))
            conn.execute(users.update().where(users.c.username == username).values(**row))
        else:
            conn.execute(users.insert().values(**row))
    return User(username, role, province_code, scheme)


def delete_user(engine: sa.Engine, username: str) -> bool:
    ensure_tables(engine)
    with engine.begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.username == username))
        return conn.execute(users.delete().where(users.c.username == username)).rowcount > 0


def list_users(engine: sa.Engine) -> list[User]:
    ensure_tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.username)).mappings()
        return [_user_of(row) for row in rows]


def _user_of(row) -> User:
    return User(row["username"], row["role"], row["province_code"], row["scheme"])


# --- login throttling --------------------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    """After ``free_attempts`` consecutive failures on a key, each next attempt must wait
    1, 2, 4 ... seconds (at most ``max_delay``) after the previous failure."""

    free_attempts_per_user: int = 5
    free_attempts_per_client: int = 20
    max_delay_seconds: float = 60.0

    def delay(self, failures: int, free_attempts: int) -> float:
        if failures < free_attempts:
            return 0.0
        return min(2.0 ** (failures - free_attempts), self.max_delay_seconds)


def _throttle_keys(throttle: Throttle, username: str, client: str) -> list[tuple[str, int]]:
    return [
        (f"user:{username.lower()[:100]}", throttle.free_attempts_per_user),
        (f"ip:{client[:100]}", throttle.free_attempts_per_client),
    ]


def retry_after(
    engine: sa.Engine, throttle: Throttle, username: str, client: str
) -> tuple[float, bool]:
    """Seconds to wait before this login may be tried (0: now), and whether the account has
    failures on record."""
    keys = dict(_throttle_keys(throttle, username, client))
    user_key = next(iter(keys))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(login_failures).where(login_failures.c.key.in_(list(keys)))
        ).mappings().all()
    wait = 0.0
    for row in rows:
        delay = throttle.delay(row["failures"], keys[row["key"]])
        ready_at = as_utc(row["last_failure_at"]) + timedelta(seconds=delay)
        wait = max(wait, (ready_at - now_utc()).total_seconds())
    return max(wait, 0.0), any(row["key"] == user_key for row in rows)


def _record_failure(engine: sa.Engine, throttle: Throttle, username: str, client: str) -> None:
    with engine.begin() as conn:
        for key, _ in _throttle_keys(throttle, username, client):
            updated = conn.execute(
                login_failures.update()
                .where(login_failures.c.key == key)
                .values(failures=login_failures.c.failures + 1, last_failure_at=now_utc())
            ).rowcount
            if not updated:
                conn.execute(
                    login_failures.insert().values(key=key, failures=1, last_failure_at=now_utc())
                )


def _clear_failures(engine: sa.Engine, throttle: Throttle, username: str) -> None:
    key = _throttle_keys(throttle, username, "")[0][0]
    with engine.begin() as conn:
        conn.execute(login_failures.delete().where(login_failures.c.key == key))


class LoginThrottled(Exception):
    def __init__(self, seconds: float):
        super().__init__(f"too many failed logins: retry in {seconds:.0f} s")
        self.seconds = seconds


def authenticate(
    engine: sa.Engine, throttle: Throttle, username: str, password: str, client: str
) -> User | None:
    """The user whose password this is, or None; raises LoginThrottled while slowed down."""
    wait, failed_before = retry_after(engine, throttle, username, client)
    if wait > 0:
        raise LoginThrottled(wait)
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
    if row is None:
        verify_password(password, _DUMMY_HASH)
    elif verify_password(password, row["password_hash"]):
        if failed_before:  # a write only when there is something to forget
            _clear_failures(engine, throttle, username)
        return _user_of(row)
    _record_failure(engine, throttle, username, client)
    return None


# --- browser sessions --------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(engine: sa.Engine, user: User, hours: float) -> tuple[str, str]:
    """A new session for ``user``: (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = now_utc()
    with engine.begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.expires_at < now))
        conn.execute(
            sessions.insert().values(
                token_hash=_token_hash(token), username=user.username, csrf_token=csrf,
                created_at=now, expires_at=now + timedelta(hours=hours),
            )
        )
    return token, csrf


def session_user(engine: sa.Engine, token: str) -> tuple[User, str] | None:
    """The user and CSRF token of a live session, or None."""
    query = (
        sa.select(users, sessions.c.csrf_token, sessions.c.expires_at)
        .join(sessions, sessions.c.username == users.c.username)
        .where(sessions.c.token_hash == _token_hash(token))
    )
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None or as_utc(row["expires_at"]) <= now_utc():
        return None
    return _user_of(row), row["csrf_token"]


def close_session(engine: sa.Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.token_hash == _token_hash(token)))


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given, expected)
