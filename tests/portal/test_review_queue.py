"""The review queue over real nights: night 1 leaves rows in ``needs_review`` (registrations
without a personal ID whose person has a namesake born the same day); a reviewer sees
them beside their best candidate with the weight each field gave, confirms one and rejects the
other through the portal's forms; night 2 links the confirmed pair and never the rejected one.
Reviewers see only their province's rows; nobody else sees the queue."""

from __future__ import annotations

import contextlib
import dataclasses
import re

import httpx
import pytest
import sqlalchemy as sa
from portal_fixtures import PASSWORD, live_server, login
from review_fixtures import NIGHTS, PEOPLE, PROVINCE, SEED, night, with_namesakes

from popsync import decisions, store
from popsync.contracts import CONFIRMED, NEEDS_CORRECTION, NEEDS_REVIEW, REJECTED, SYNCHRONIZED
from popsync.synthetic import generate_nation, write_nation
from portal import security
from portal.app import PortalSettings, create_app

ACCOUNTS = {"rev79": ("79", "63"), "rev01": ("01", "63"), "revnation": (None, None)}


@pytest.fixture(scope="module")
def night_one(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review")
    nation = folder / "nation"
    write_nation(with_namesakes(generate_nation(PEOPLE, SEED), 2), nation, force=True)
    out = folder / "out"
    results = night(nation, out, NIGHTS[0])
    review = results[(results["status"] == NEEDS_REVIEW) & results["personal_id"].notna()]
    assert len(review) == 2 and set(review["office_code"]) == {PROVINCE}
    engine = store.engine_for(store.default_db_url(out))
    for username, (province, scheme) in ACCOUNTS.items():
        security.save_user(engine, username, PASSWORD, "reviewer", province, scheme)
    security.save_user(engine, "office79", PASSWORD, "office", "79", "63")
    security.save_user(engine, "lead", PASSWORD, "leadership")
    security.save_user(engine, "eng", PASSWORD, "engineer")
    return nation, out, review.sort_values("vss_code")


@contextlib.contextmanager
def _portal(out, username):
    app = create_app(PortalSettings(db_url=store.default_db_url(out), data_dir=out,
                                    state_seconds=0))
    with live_server(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        if username:
            assert login(client, username, PASSWORD).status_code == 303
        yield client


def _queue(client) -> list[str]:
    page = client.get("/review")
    assert page.status_code == 200
    return re.findall(r'<tr data-vss="(\d{10})"', page.text)


def test_reviewers_see_their_provinces_rows_and_nobody_else_sees_the_queue(night_one):
    _, out, review = night_one
    codes = set(review["vss_code"])
    with _portal(out, "rev79") as client:
        assert codes <= set(_queue(client))
    with _portal(out, "revnation") as client:
        assert codes <= set(_queue(client))
    with _portal(out, "rev01") as client:
        assert not codes & set(_queue(client))
        assert client.get(f"/review/{review['vss_code'].iloc[0]}").status_code == 404
    for username in ("office79", "lead"):
        with _portal(out, username) as client:
            assert client.get("/review").status_code == 403
    with _portal(out, None) as client:
        assert client.get("/review").status_code == 303


def test_a_confirmed_link_is_made_next_night_and_a_rejected_one_never(night_one, tmp_path):
    nation, out, review = night_one
    confirmed, rejected = review.iloc[0], review.iloc[1]
    with _portal(out, "rev79") as client:
        page = client.get(f"/review/{confirmed['vss_code']}", params={"lang": "en"})
        assert page.status_code == 200
        # the best candidate beside the registry row, and its weight field by field
        assert confirmed["personal_id"] in page.text and 'class="chart waterfall"' in page.text
        assert "Birth date: exact" in page.text and "Total weight" in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        answer = client.post(f"/review/{confirmed['vss_code']}", data={
            "csrf_token": token, "decision": CONFIRMED, "note": "same person, name misspelt"})
        assert answer.status_code == 303
        assert answer.headers["location"] != f"/review/{confirmed['vss_code']}"  # the next row
        answer = client.post(f"/review/{rejected['vss_code']}", data={
            "csrf_token": token, "decision": REJECTED, "note": "a namesake"})
        assert answer.status_code == 303
        # the row's other candidates are listed, each decidable: its person's namesake twin is
        # confirmed instead; a person who is not a candidate is refused
        page = client.get(f"/review/{rejected['vss_code']}").text
        others = re.findall(r'<tr data-candidate="(\d{12})"', page)
        assert others and rejected["personal_id"] not in others
        assert client.post(f"/review/{rejected['vss_code']}", data={
            "csrf_token": token, "decision": CONFIRMED,
            "personal_id": "000000000000"}).status_code == 409
        twin = others[0]
        assert client.post(f"/review/{rejected['vss_code']}", data={
            "csrf_token": token, "decision": CONFIRMED, "personal_id": twin,
            "note": "the other twin"}).status_code == 303
        left = _queue(client)
        assert confirmed["vss_code"] not in left and rejected["vss_code"] not in left
        history = client.get(f"/review/{confirmed['vss_code']}").text
        assert "same person, name misspelt" in history and "rev79" in history
    engine = store.engine_for(store.default_db_url(out))
    with engine.connect() as connection:
        standing = connection.execute(sa.select(
            store.review_decisions.c.vss_code, store.review_decisions.c.personal_id,
            store.review_decisions.c.decision).where(
                store.review_decisions.c.revoked_at.is_(None))).all()
    assert sorted(standing) == sorted([
        (confirmed["vss_code"], confirmed["personal_id"], CONFIRMED),
        (rejected["vss_code"], rejected["personal_id"], REJECTED),
        (rejected["vss_code"], twin, CONFIRMED)])

    results = night(nation, out, NIGHTS[1]).set_index("vss_code")
    linked = results.loc[confirmed["vss_code"]]
    assert linked["personal_id"] == confirmed["personal_id"]
    assert linked["status"] in (NEEDS_CORRECTION, SYNCHRONIZED)
    assert results.loc[rejected["vss_code"], "personal_id"] == twin

    # the engineers' page of that night: the decisions it applied, and the engine's own
    # decision scored on them (it had sent the confirmed pair to review: a missed link)
    with engine.connect() as connection:
        run_id = connection.execute(sa.select(sa.func.max(store.runs.c.run_id))).scalar()
    with _portal(out, "eng") as client:
        page = client.get(f"/runs/{run_id}", params={"lang": "en"}).text
    cells = dict(re.findall(r'data-col="(\w+)">([^<]*)<', page))
    assert (cells["confirmed"], cells["rejected"], cells["not_in_population"]) == ("2", "1", "0")
    assert cells["recall"] == "0.0000" and cells["precision"] == "–"


def test_a_rejected_candidate_cannot_be_confirmed_without_a_person(night_one):
    _, out, review = night_one
    with _portal(out, "rev79") as client:
        page = client.get(f"/review/{review['vss_code'].iloc[-1]}")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        # a decision not in the list is refused, and no CSRF token, no decision
        assert client.post(f"/review/{review['vss_code'].iloc[-1]}", data={
            "csrf_token": token, "decision": "maybe"}).status_code == 422
        assert client.post(f"/review/{review['vss_code'].iloc[-1]}", data={
            "decision": CONFIRMED}).status_code == 403


def _log(client, **params) -> dict[str, str]:
    """The decision log's rows shown: decision id -> the row's text."""
    page = client.get("/review/decisions", params=params)
    assert page.status_code == 200
    return dict(re.findall(r'<tr data-decision-id="(\d+)"(?: class="revoked")?>(.*?)</tr>',
                           page.text, flags=re.S))


def test_a_reviewer_revokes_a_mistaken_decision_of_their_province(night_one):
    """A decision goes into the province's log; a reviewer of that province (or the nation)
    revokes it with a note, and the night stops applying it; another province's reviewer
    neither sees nor revokes it."""
    _, out, _ = night_one
    engine = store.engine_for(store.default_db_url(out))
    rows = store.worklist_rows
    with engine.connect() as connection:  # a listed row of the province, not yet decided
        vss = connection.execute(sa.select(rows.c.vss_code).where(
            rows.c.run_id == sa.select(sa.func.max(rows.c.run_id)).scalar_subquery(),
            rows.c.province_code == PROVINCE, rows.c.vss_code.not_in(
                sa.select(store.review_decisions.c.vss_code))).limit(1)).scalar()
    with _portal(out, "rev79") as client:
        page = client.get(f"/review/{vss}")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert client.post(f"/review/{vss}", data={
            "csrf_token": token, "decision": "not_in_population",
            "note": "clicked too fast"}).status_code == 303
        mine = _log(client, standing="true")
        decision_id = next(i for i, text in mine.items() if vss in text)
        assert "clicked too fast" in mine[decision_id] and "rev79" in mine[decision_id]
    with _portal(out, "rev01") as client:
        assert decision_id not in _log(client)
        token = re.search(r'name="csrf_token" value="([^"]+)"',
                          client.get("/review/decisions").text).group(1)
        assert client.post(f"/review/decisions/{decision_id}/revoke", data={
            "csrf_token": token, "note": "not mine"}).status_code == 404
    with _portal(out, "revnation") as client:
        assert decision_id in _log(client)
    with _portal(out, "rev79") as client:
        page = client.get(f"/review/{vss}")
        assert f'id="revoke-{decision_id}"' in page.text  # revocable from the row's history
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert client.post(f"/review/decisions/{decision_id}/revoke", data={
            "note": "no token"}).status_code == 403
        answer = client.post(f"/review/decisions/{decision_id}/revoke", data={
            "csrf_token": token, "note": "wrong button", "back": "row"})
        assert answer.status_code == 303 and answer.headers["location"] == f"/review/{vss}"
        # revoked once only; the log keeps it, with who revoked it and why
        assert client.post(f"/review/decisions/{decision_id}/revoke", data={
            "csrf_token": token}).status_code == 409
        assert decision_id not in _log(client, standing="true")
        shown = _log(client)[decision_id]
        assert "wrong button" in shown and "rev79" in shown
    assert vss not in set(decisions.standing(engine)["vss_code"])  # the night's input


def test_a_confirmation_the_data_contradicts_returns_to_the_queue(tmp_path):
    """A reviewer confirmed a row's person; the population then records that person as
    deceased: the next night does not apply the confirmation silently but sends the row back
    to the queue, with the reason, for a reviewer to look again."""
    nation = with_namesakes(generate_nation(PEOPLE, SEED), 2)
    write_nation(nation, tmp_path / "nation", force=True)
    out = tmp_path / "out"
    first = night(tmp_path / "nation", out, NIGHTS[0])
    row = first[(first["status"] == NEEDS_REVIEW) & first["personal_id"].notna()].iloc[0]
    engine = store.engine_for(store.default_db_url(out))
    decisions.record(engine, row["vss_code"], row["personal_id"], CONFIRMED, "rev79",
                     "same person", province_code=PROVINCE, unit_34=PROVINCE)
    security.save_user(engine, "rev79", PASSWORD, "reviewer", PROVINCE, "63")

    population = nation.population.copy()
    died = population["personal_id"] == row["personal_id"]
    population.loc[died, "is_deceased"] = True
    population.loc[died, "death_date"] = "2026-11-30"
    write_nation(dataclasses.replace(nation, population=population), tmp_path / "nation",
                 force=True)
    second = night(tmp_path / "nation", out, NIGHTS[1]).set_index("vss_code")
    assert second.loc[row["vss_code"], "status"] == NEEDS_REVIEW
    assert "confirmed_person_deceased" in list(second.loc[row["vss_code"], "reasons"])
    with _portal(out, "rev79") as client:
        assert row["vss_code"] in _queue(client)
        page = client.get(f"/review/{row['vss_code']}", params={"lang": "en"}).text
        assert 'data-reason="confirmed_person_deceased"' in page
