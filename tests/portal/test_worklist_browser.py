"""The clerk's day in a real headless Chromium (Selenium, the ``browser`` fixture of conftest.py):
an office finds a participant by a name typed without diacritics, opens the row, reads the
action, marks it corrected at source and sees it in the history; after the next night the row
corrected for real is closed and the one whose correction did not reach the registry is flagged
'correction not effective'. Screenshots go to tests/screenshots/."""

from __future__ import annotations

import pytest
from browser_helpers import CHROMEDRIVER, CHROMIUM, full_screenshot, log_in, wait_for
from portal_fixtures import live_server
from worklist_fixtures import NIGHTS, copy_published, corrected_registry, name_fixes, run_night

from popsync import store
from popsync.text import folded_name
from portal.app import PortalSettings, create_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="Debian's chromium and chromium-driver are not installed"),
]


def _serve(data):
    return live_server(create_app(PortalSettings(db_url=store.default_db_url(data),
                                                 data_dir=data)))


def _mark_corrected(driver, server: str, row: dict, note: str) -> None:
    """Find the row by its name typed without diacritics, open it, read the action, mark it
    corrected at source and see the change in its history."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(server + "/provinces/79")
    driver.find_element(By.ID, "open-worklist").click()
    wait_for(lambda: driver.find_elements(By.ID, "worklist"), "the work list")
    typed = folded_name(row["full_name"])
    assert typed != row["full_name"].lower()  # the name as registered has diacritics
    search = driver.find_element(By.ID, "q")
    search.clear()
    search.send_keys(typed)
    driver.find_element(By.ID, "search-submit").click()
    wait_for(lambda: "q=" in driver.current_url, "the search")
    link = wait_for(lambda: [a for a in driver.find_elements(By.CSS_SELECTOR, "a.row-link")
                             if a.text == row["vss_code"]], "the participant in the results")
    assert row["full_name"] in driver.find_element(By.ID, "worklist").text
    full_screenshot(driver, f"worklist_search_{row['vss_code']}.png")
    link[0].click()
    wait_for(lambda: driver.find_elements(By.ID, "reasons"), "the row page")
    reasons = driver.find_element(By.ID, "reasons").text
    assert "Họ tên không khớp" in reasons
    assert "Cập nhật họ tên theo đúng cách viết trong CSDL dân cư" in reasons
    differs = driver.find_element(By.CSS_SELECTOR, "#compare tr[data-field='full_name']")
    assert "differs" in differs.get_attribute("class")
    assert row["suggested_full_name"] in differs.text
    Select(driver.find_element(By.ID, "status-select")).select_by_value("corrected_at_source")
    driver.find_element(By.ID, "status-note").send_keys(note)
    driver.find_element(By.ID, "status-submit").click()
    wait_for(lambda: driver.find_elements(By.ID, "saved"), "the saved mark")
    history = driver.find_element(By.ID, "history-table").text
    assert note in history and "office79" in history and "Đã điều chỉnh tại nguồn" in history
    assert driver.find_element(By.ID, "work-status").get_attribute(
        "data-work") == "corrected_at_source"
    full_screenshot(driver, f"worklist_row_{row['vss_code']}.png")


def test_clerk_corrects_rows_and_the_next_night_closes_or_flags_them(
        browser, worklist_nation, tmp_path):
    from selenium.webdriver.common.by import By

    nation, published = worklist_nation
    data = copy_published(published, tmp_path / "out")
    fixed, not_fixed = name_fixes(data, "79", 2)
    with _serve(data) as server:
        log_in(browser, server, "office79")
        _mark_corrected(browser, server, fixed, "đã sửa tên trên phần mềm thu")
        _mark_corrected(browser, server, not_fixed, "đã gửi yêu cầu sửa")
        # another province's row page is refused
        browser.get(server + "/provinces/01/worklist")
        assert "Bạn không có quyền" in browser.page_source

    # the next night: only the first correction reached the registry
    registry = corrected_registry(nation, tmp_path / "night2",
                                  {fixed["vss_code"]: fixed["suggested_full_name"]})
    run_night(nation, data, NIGHTS[1], registry)
    with _serve(data) as server:
        # cookies are per host, not per port: the first server's session would still be sent
        browser.delete_all_cookies()
        log_in(browser, server, "office79")
        browser.get(f"{server}/provinces/79/worklist/{fixed['vss_code']}")
        wait_for(lambda: browser.find_elements(By.ID, "history-table"), "the closed row")
        assert browser.find_element(By.ID, "work-status").get_attribute("data-work") == "closed"
        assert browser.find_elements(By.ID, "row-not-listed")
        assert f"đêm chạy {NIGHTS[1]}" in browser.find_element(By.ID, "history-table").text
        full_screenshot(browser, "worklist_closed.png")
        browser.get(f"{server}/provinces/79/worklist/{not_fixed['vss_code']}")
        wait_for(lambda: browser.find_elements(By.ID, "history-table"), "the flagged row")
        assert browser.find_element(By.ID, "work-status").get_attribute(
            "data-work") == "correction_not_effective"
        history = browser.find_element(By.ID, "history-table").text
        assert "Điều chỉnh chưa có hiệu lực" in history and "Đã điều chỉnh tại nguồn" in history
        assert "Vẫn chưa đồng bộ sau khi điều chỉnh tại nguồn" in history
        full_screenshot(browser, "worklist_not_effective.png")
        browser.get(f"{server}/provinces/79")
        assert browser.find_element(By.ID, "work-closed-week").text == "1"
        assert browser.find_element(By.ID, "work-not-effective").text == "1"
        browser.find_element(By.ID, "logout").click()
        wait_for(lambda: browser.find_elements(By.ID, "login-link"), "the logged-out header")
        log_in(browser, server, "lead")
        browser.get(server + "/")
        cells = browser.find_elements(By.CSS_SELECTOR, "#ranking tr[data-code='79'] td.work-closed")
        assert cells and cells[0].text == "1"
        full_screenshot(browser, "worklist_ranking_lead.png")
