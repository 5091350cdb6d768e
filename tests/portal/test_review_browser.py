"""A reviewer's queue in a real headless Chromium (the ``browser`` fixture of conftest.py),
keyboard-driven: night 1 leaves two registrations without a personal ID in review (their person
has a namesake twin); the reviewer opens the first, types a note and presses c (same person),
lands on the next and presses r (not this person); night 2 links the confirmed pair and never
the rejected one. Screenshots go to tests/screenshots/."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from browser_helpers import CHROMEDRIVER, CHROMIUM, full_screenshot, log_in, wait_for
from portal_fixtures import PASSWORD, live_server
from review_fixtures import NIGHTS, PEOPLE, PROVINCE, SEED, night, with_namesakes

from popsync import store
from popsync.contracts import CONFIRMED, NEEDS_CORRECTION, NEEDS_REVIEW, REJECTED, SYNCHRONIZED
from popsync.synthetic import generate_nation, write_nation
from portal import security
from portal.app import PortalSettings, create_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="Debian's chromium and chromium-driver are not installed"),
]


def _decisions(engine) -> dict[str, tuple]:
    table = store.review_decisions
    with engine.connect() as connection:
        rows = connection.execute(sa.select(
            table.c.vss_code, table.c.personal_id, table.c.decision, table.c.decided_by,
            table.c.note).where(table.c.revoked_at.is_(None))).all()
    return {row.vss_code: tuple(row)[1:] for row in rows}


def test_a_reviewer_clears_the_queue_with_the_keyboard(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    nation = tmp_path / "nation"
    write_nation(with_namesakes(generate_nation(PEOPLE, SEED), 2), nation, force=True)
    out = tmp_path / "out"
    results = night(nation, out, NIGHTS[0])
    review = results[(results["status"] == NEEDS_REVIEW) & results["personal_id"].notna()]
    assert len(review) == 2
    engine = store.engine_for(store.default_db_url(out))
    security.save_user(engine, "rev79", PASSWORD, "reviewer", PROVINCE, "63")
    app = create_app(PortalSettings(db_url=store.default_db_url(out), data_dir=out,
                                    state_seconds=0))
    shown = {}
    with live_server(app) as server:
        log_in(browser, server, "rev79")
        browser.get(server + "/review")
        first = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#review-queue a"),
                         "the queue")[0]
        first.click()
        for key, note in (("c", "cùng một người, sai tên"), ("r", None)):
            title = wait_for(lambda: browser.find_elements(By.ID, "row-title"), "a row")[0]
            vss = title.text.split()[-1]
            assert vss in set(review["vss_code"])
            shown[vss] = key
            assert browser.find_elements(By.CSS_SELECTOR, "#waterfall svg")  # the weights
            full_screenshot(browser, f"review_item_{key}.png")
            if note:
                browser.find_element(By.ID, "note").send_keys(note)
                # typing in the note is not a shortcut; leave the field, then decide
                browser.find_element(By.ID, "note").send_keys(Keys.TAB)
                browser.find_element(By.TAG_NAME, "body").click()
            browser.find_element(By.TAG_NAME, "body").send_keys(key)
            wait_for(lambda vss=vss: vss in _decisions(engine), "the decision recorded")
            wait_for(lambda vss=vss: f"/review/{vss}" not in browser.current_url,
                     "the next row")
    decided = _decisions(engine)
    by_key = {key: vss for vss, key in shown.items()}
    row = review.set_index("vss_code")
    assert decided[by_key["c"]] == (row.loc[by_key["c"], "personal_id"], CONFIRMED, "rev79",
                                    "cùng một người, sai tên")
    assert decided[by_key["r"]][:3] == (row.loc[by_key["r"], "personal_id"], REJECTED, "rev79")

    following = night(nation, out, NIGHTS[1]).set_index("vss_code")
    assert following.loc[by_key["c"], "personal_id"] == row.loc[by_key["c"], "personal_id"]
    assert following.loc[by_key["c"], "status"] in (NEEDS_CORRECTION, SYNCHRONIZED)
    assert following.loc[by_key["r"], "personal_id"] != row.loc[by_key["r"], "personal_id"]
