"""Accounts, passwords, sessions, the client address, login throttling and the one access rule
of the portal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from popsync.errors import PopsyncError
from popsync.reference import PROVINCES_34, PROVINCES_63, to_34
from popsync.reference.provinces import SCHEME_63_TO_34
from portal import audit
from portal.tables import (
    ENGINEER,
    LEADERSHIP,
    OFFICE,
    REVIEWER,
    ROLES,
    ensure_tables,
    login_failures,
    sessions,
    users,
)

# scrypt cost: 16 MiB and ~50 ms per check on this machine; stored with each hash so it can rise.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32
MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # whole names: fullmatch


@dataclass(frozen=True)
class User:
    username: str
    role: str
    province_code: str | None = None
    scheme: str | None = None

    @property
    def is_leadership(self) -> bool:
        return self.role == LEADERSHIP

    @property
    def is_engineer(self) -> bool:
        return self.role == ENGINEER

    @property
    def is_reviewer(self) -> bool:
        return self.role == REVIEWER

    @property
    def is_national(self) -> bool:
        """An account of no province: leadership or an engineer."""
        return self.role in (LEADERSHIP, ENGINEER)


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


def may_review(user: User | None, office: str) -> bool:
    """Whether ``user`` may review (see and decide) a row registered by ``office`` (63-scheme
    code): a reviewer of the nation every row, a reviewer of a province (or of a 34-scheme unit)
    its own rows; nobody else."""
    if user is None or user.role != REVIEWER:
        return False
    if user.province_code is None:
        return True
    unit = SCHEME_63_TO_34.get(office, office) if user.scheme == "34" else office
    return unit == user.province_code


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


class VerifiedCredentials:
    """Passwords verified in the last ``seconds``, so that a script calling the API with HTTP
    Basic pays one password hash (~50 ms of CPU) per ``seconds``, not one per request.

    Safe because only a success is remembered (a guess always pays the hash and the throttle);
    an entry is an HMAC of username and password under a key drawn at start and held in this
    process's memory only (no password, nothing to test guesses against without the key); it
    holds the stored hash it was verified against, so a password changed or an account deleted
    is refused at once (the account's row is read on every request anyway); it expires after
    ``seconds`` whatever its use; at most ``capacity`` entries, the oldest going first.
    """

    def __init__(self, seconds: float = 60.0, capacity: int = 10_000):
        self.seconds, self.capacity = seconds, capacity
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _digest(self, username: str, password: str) -> bytes:
        text = f"{len(username)}:{username}:{password}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, text, "sha256").digest()

    def verified(self, username: str, password: str, stored_hash: str) -> bool:
        digest = self._digest(username, password)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is not None and entry[1] <= time.monotonic():
                del self._entries[digest]
                entry = None
        return entry is not None and hmac.compare_digest(entry[0], stored_hash.encode())

    def remember(self, username: str, password: str, stored_hash: str) -> None:
        digest = self._digest(username, password)
        with self._lock:
            self._entries[digest] = (stored_hash.encode(), time.monotonic() + self.seconds)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)


def _password_matches(username: str, password: str, stored_hash: str,
                      verified: VerifiedCredentials | None) -> bool:
    if verified is not None and verified.verified(username, password, stored_hash):
        return True
    if not verify_password(password, stored_hash):
        return False
    if verified is not None:
        verified.remember(username, password, stored_hash)
    return True


# Checked against when the username is unknown, so that a wrong name costs as long as a wrong
# password and response times do not tell which accounts exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


# --- accounts ----------------------------------------------------------------------------------


def validate_account(role: str, province_code: str | None, scheme: str | None) -> None:
    if role not in ROLES:
        raise PopsyncError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if role in (LEADERSHIP, ENGINEER):
        if province_code is not None:
            raise PopsyncError(f"a {role} account belongs to no province: do not give --province")
        return
    if role == REVIEWER and province_code is None:
        return  # a reviewer of the whole nation
    if province_code is None:
        raise PopsyncError("an office account needs --province CODE (and --scheme 63|34)")
    table = {"63": PROVINCES_63, "34": PROVINCES_34}.get(scheme or "")
    if table is None:
        raise PopsyncError(f"unknown scheme {scheme!r}: use 63 or 34")
    if province_code not in table:
        raise PopsyncError(
            f"unknown {scheme}-scheme province code {province_code!r}: see "
            f"popsync/reference/data/provinces_{scheme}.csv"
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
    if not _USERNAME.fullmatch(username):
        raise PopsyncError(
            f"invalid username {username!r}: 1-64 letters, digits, '.', '_' or '-'"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PopsyncError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    validate_account(role, province_code, scheme)
    if province_code is None:
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


# --- the client address ------------------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(proxies: Iterable[str]) -> tuple[Network, ...]:
    """The reverse proxies whose X-Forwarded-For the portal believes, as networks."""
    networks = []
    for proxy in proxies:
        try:
            networks.append(ipaddress.ip_network(proxy.strip(), strict=False))
        except ValueError:
            raise PopsyncError(
                f"trusted proxy {proxy!r} is not an IP address or network: give one such as "
                "10.0.0.5 or 10.0.0.0/24"
            ) from None
    return tuple(networks)


def _address(text: str | None) -> Address | None:
    """An address as a socket peer or an X-Forwarded-For entry writes it (bare, ``v4:port`` or
    ``[v6]:port``); an IPv4 client seen through a dual-stack socket as its IPv4 address."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_proxy(address: Address | None, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


def from_trusted_proxy(peer: str | None, trusted: Sequence[Network]) -> bool:
    """Whether the socket's peer is one of the reverse proxies the operator named."""
    return _is_proxy(_address(peer), trusted)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str:
    """The address a login is throttled and audited under.

    Neither simply the socket's peer nor simply X-Forwarded-For. Behind a reverse proxy every
    request's peer is the proxy: all users would share one address budget, and one stranger's
    guesses would hold everybody back. The proxy names the real client in X-Forwarded-For, but
    any client can send that header too: believed from anyone, it would let a guesser claim a
    fresh address for every attempt (escaping the budgets) or another user's (holding that user
    back). So the header is read only when the peer is one of the ``trusted`` proxies the
    operator configured (``popsync serve --trusted-proxy``), and from its right end: each proxy
    appends the address it received the request from, so the first entry from the right that is
    not a trusted proxy is the client, and whatever stands to its left is the client's own claim.
    """
    address = _address(peer)
    if _is_proxy(address, trusted):
        hops = [hop for header in forwarded_for for hop in header.split(",")]
        for hop in reversed(hops):
            hop_address = _address(hop)
            if hop_address is None:
                break  # a proxy that appended no address passed the client's words on
            address = hop_address
            if not _is_proxy(address, trusted):
                break
    if address is not None:
        return str(address)
    return (peer or "unknown")[:64]


def address_budget(client: str) -> str:
    """The addresses sharing one budget of failed logins: an IPv6 client's /64 (what one
    subscriber is given: its 2^64 addresses must not each bring a fresh budget), otherwise the
    address itself."""
    address = _address(client)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network((address, 64), strict=False))
    return client


# --- login throttling --------------------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    """Slows password guessing down without letting anyone hold another user's login back.

    Failures are counted on two keys: the username at one client address, and the address's
    budget across usernames (see ``address_budget``). Never on the username alone: a stranger
    guessing from anywhere would then lock the real user out (issue 14). After a key's free
    attempts, each next attempt waits 1, 2, 4 ... seconds (at most ``max_delay_seconds``) after
    the key's latest failure; a key with no failure for ``forget_after_seconds`` starts afresh,
    so old typing mistakes do not hold an office's shared address back for good.
    """

    free_attempts_per_user_and_client: int = 5
    free_attempts_per_client: int = 20
    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    forget_after_seconds: float = 900.0

    def delay(self, failures: int, free_attempts: int) -> float:
        if failures < free_attempts:
            return 0.0
        return min(self.first_delay_seconds * 2.0 ** (failures - free_attempts),
                   self.max_delay_seconds)


def _throttle_keys(throttle: Throttle, username: str, client: str) -> dict[str, tuple[int, str]]:
    """Each key, the username at the address first, with its free attempts and the address a
    refusal under it is audited as."""
    budget = address_budget(client)
    name = audit.logged_username(username.lower())
    return {
        f"user:{name}|ip:{client[:48]}": (throttle.free_attempts_per_user_and_client, client),
        f"ip:{budget[:48]}": (throttle.free_attempts_per_client, budget),
    }


def _recent_failures(
    conn: sa.Connection, throttle: Throttle, keys: Iterable[str]
) -> dict[str, tuple[int, datetime]]:
    """key -> (failures, latest failure), for the keys with a failure not yet forgotten."""
    forgotten_before = now_utc() - timedelta(seconds=throttle.forget_after_seconds)
    rows = conn.execute(
        sa.select(login_failures).where(login_failures.c.key.in_(list(keys)))
    ).all()
    recent = {row.key: (row.failures, as_utc(row.last_failure_at)) for row in rows}
    return {key: value for key, value in recent.items() if value[1] >= forgotten_before}


def _hold(
    throttle: Throttle, keys: dict[str, tuple[int, str]], failures: dict[str, tuple[int, datetime]]
) -> tuple[float, str, datetime] | None:
    """The longest wait the keys impose, with the address to audit a refusal as and the latest
    failure of the key imposing it; None when the login may be tried now."""
    longest = None
    for key, (count, last_failure) in failures.items():
        free_attempts, audited_as = keys[key]
        ready_at = last_failure + timedelta(seconds=throttle.delay(count, free_attempts))
        seconds = (ready_at - now_utc()).total_seconds()
        if seconds > 0 and (longest is None or seconds > longest[0]):
            longest = (seconds, audited_as, last_failure)
    return longest


def retry_after(engine: sa.Engine, throttle: Throttle, username: str, client: str) -> float:
    """Seconds to wait before ``username`` may be tried from ``client`` (0: now)."""
    keys = _throttle_keys(throttle, username, client)
    with engine.connect() as conn:
        hold = _hold(throttle, keys, _recent_failures(conn, throttle, keys))
    return 0.0 if hold is None else hold[0]


def _record_failure(engine: sa.Engine, throttle: Throttle, keys: Iterable[str]) -> None:
    now = now_utc()
    with engine.begin() as conn:
        # Forgotten keys go, so the table holds only recent failures however many names and
        # addresses are tried.
        conn.execute(login_failures.delete().where(
            login_failures.c.last_failure_at < now - timedelta(
                seconds=throttle.forget_after_seconds)
        ))
        for key in keys:
            updated = conn.execute(
                login_failures.update()
                .where(login_failures.c.key == key)
                .values(failures=login_failures.c.failures + 1, last_failure_at=now)
            ).rowcount
            if not updated:
                conn.execute(login_failures.insert().values(key=key, failures=1,
                                                            last_failure_at=now))


def _clear_failures(engine: sa.Engine, key: str) -> None:
    with engine.begin() as conn:
        conn.execute(login_failures.delete().where(login_failures.c.key == key))


class LoginThrottled(Exception):
    def __init__(self, seconds: float):
        super().__init__(f"too many failed logins: retry in {seconds:.0f} s")
        self.seconds = seconds


def authenticate(
    engine: sa.Engine, throttle: Throttle, username: str, password: str, client: str,
    verified: VerifiedCredentials | None = None,
) -> User | None:
    """The user whose password this is, or None; raises LoginThrottled while slowed down.

    Failed and refused attempts go to the audit log, with the username tried but never the
    password; ``client`` is the caller's address (``client_address``). ``verified``: passwords
    verified a moment ago, checked without hashing again.
    """
    keys = _throttle_keys(throttle, username, client)
    row = None
    with engine.connect() as conn:  # one connection for the two reads every request makes
        failures = _recent_failures(conn, throttle, keys)
        if _USERNAME.fullmatch(username):  # no other name is an account (NUL breaks PostgreSQL)
            row = conn.execute(
                sa.select(users).where(users.c.username == username)
            ).mappings().first()
    hold = _hold(throttle, keys, failures)
    if hold is not None:
        seconds, audited_as, since = hold
        # A refusal costs the client nothing, so it is written once per held address and
        # failure, not once per request: an anonymous client must not grow the log (in the
        # database the publication lives in) as fast as it can send requests.
        if not audit.login_refused_since(engine, since, audited_as):
            audit.record(engine, audit.LOGIN, audit.LOGIN_THROTTLED, username, audited_as)
        raise LoginThrottled(seconds)
    if row is None:
        verify_password(password, _DUMMY_HASH)
    elif _password_matches(username, password, row["password_hash"], verified):
        user_at_client = next(iter(keys))
        if user_at_client in failures:  # a write only when there is something to forget
            _clear_failures(engine, user_at_client)
        return _user_of(row)
    _record_failure(engine, throttle, keys)
    audit.record(engine, audit.LOGIN, audit.LOGIN_FAILED, username, client)
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
    """Whether a form's CSRF token is the expected one, in constant time. Compared as bytes:
    ``compare_digest`` refuses str holding anything but ASCII, and a form may send anything."""
    return bool(given) and bool(expected) and hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
