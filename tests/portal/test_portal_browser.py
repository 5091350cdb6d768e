"""The portal in a real headless Chromium (Selenium): leadership sees the ranking and switches
scheme, an office downloads its list and is refused another's. Screenshots go to
tests/screenshots/ (git-ignored) for review."""

from __future__ import annotations

import re
import time

import httpx
import openpyxl
import pytest
from browser_helpers import CHROMEDRIVER, CHROMIUM, SCREENSHOTS, full_screenshot, log_in, wait_for
from portal_fixtures import PASSWORD, live_server, make_accounts, publish_nights

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="Debian's chromium and chromium-driver are not installed"),
]


def test_leadership_sees_ranking_and_switches_to_34(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ranking tbody tr")) == 63
    assert not browser.find_elements(By.CSS_SELECTOR, "#ranking a[href^='/provinces/']")
    log_in(browser, server, "lead")
    assert browser.current_url.rstrip("/") == server
    rows = browser.find_elements(By.CSS_SELECTOR, "#ranking tbody tr")
    assert len(rows) == 63
    assert rows[0].find_elements(By.TAG_NAME, "td")[0].text.replace("\xa0", " ") == "1 / 63"
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart path.line")
    full_screenshot(browser, "ranking_63.png")

    browser.find_element(By.ID, "scheme-34").click()
    wait_for(lambda: "scheme=34" in browser.current_url, "the 34-scheme ranking")
    rows = browser.find_elements(By.CSS_SELECTOR, "#ranking tbody tr")
    assert len(rows) == 34
    assert browser.find_element(By.ID, "ranking").get_attribute("data-scheme") == "34"
    names = {row.find_elements(By.TAG_NAME, "td")[2].text for row in rows}
    assert "Gia Lai" in names and "Bình Định" not in names
    browser.find_element(By.ID, "sort-sync_rate").click()
    wait_for(lambda: "sort=sync_rate" in browser.current_url, "sorting by rate")
    browser.find_element(By.ID, "lang-switch").click()
    wait_for(lambda: "Provinces ranked" in browser.page_source, "the English page")
    full_screenshot(browser, "ranking_34_en.png")
    browser.find_element(By.ID, "lang-switch").click()
    wait_for(lambda: "Xếp hạng tỉnh" in browser.page_source, "the Vietnamese page")
    browser.get(server + "/api/docs")
    assert "/api/rankings" in browser.find_element(By.TAG_NAME, "main").text
    full_screenshot(browser, "api_docs.png")
    browser.get(server + "/audit")
    assert browser.find_elements(By.CSS_SELECTOR, "#audit thead")


def test_office_downloads_its_list_and_is_refused_another(browser, server):
    from selenium.webdriver.common.by import By

    log_in(browser, server, "office79")
    wait_for(lambda: browser.find_elements(By.ID, "download-xlsx"), "the download link")
    assert browser.find_element(By.ID, "province-name").text.startswith("TP Hồ Chí Minh")
    full_screenshot(browser, "province_79.png")

    browser.find_element(By.ID, "download-xlsx").click()
    files = wait_for(lambda: [p for p in browser.downloads.glob("*.xlsx")], "the xlsx download")
    assert files[0].name.startswith("popsync_63_79_")
    workbook = openpyxl.load_workbook(files[0], read_only=True)
    rows = [row for sheet in workbook.worksheets
            for row in sheet.iter_rows(min_row=2, values_only=True)]
    figures = httpx.get(server + "/api/provinces/79", auth=("lead", PASSWORD)).json()
    line = figures["lines"]["all"]
    assert len(rows) == line["participants"] - line["synchronized"] > 0
    assert {row[5] for row in rows} == {"79"}
    assert [sheet.title for sheet in workbook.worksheets] == [
        "Cần điều chỉnh", "Cần xác minh", "Không tìm thấy"]

    browser.get(server + "/provinces/01/lists/unsynchronized.xlsx")
    wait_for(lambda: "Bạn không có quyền" in browser.page_source, "the refusal page")
    time.sleep(1)  # a download, had one started, would have landed by now
    assert [p.name for p in browser.downloads.iterdir()] == [files[0].name]
    assert "Nguy" not in browser.page_source
    browser.get(server + "/provinces/01")
    assert "Bạn không có quyền" in browser.page_source
    assert not browser.find_elements(By.ID, "download-xlsx")
    browser.find_element(By.ID, "logout").click()
    wait_for(lambda: browser.find_elements(By.ID, "login-link"), "the logged-out header")


@pytest.fixture(scope="module")
def history_server(tmp_path_factory):
    """35 published nights (a 30-night trend and changes over 1, 7 and 30 nights)."""
    from datetime import date, timedelta

    from popsync import store
    from portal.app import PortalSettings, create_app

    data = tmp_path_factory.mktemp("history")
    nights = [(date(2026, 10, 20) + timedelta(days=i)).isoformat() for i in range(35)]
    make_accounts(publish_nights(data, store.default_db_url(data), nights, improvement=0.97,
                                 lists_for_latest=False))
    with live_server(create_app(PortalSettings(db_url=store.default_db_url(data),
                                               data_dir=data))) as base_url:
        yield base_url


def visible_without_scrolling(driver, selector: str) -> bool:
    """Whether the element is displayed and lies wholly inside the window as the page opens."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); if (!e) return false;"
        "const r = e.getBoundingClientRect();"
        "return r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0"
        " && r.bottom <= window.innerHeight && r.right <= window.innerWidth;", selector)


def test_leadership_page_at_1366x900_shows_headline_rank_and_map_without_scrolling(
        browser, history_server):
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1366, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    log_in(browser, history_server, "lead")
    browser.get(history_server + "/")
    assert browser.execute_script("return [innerWidth, innerHeight]") == [1366, 900]
    for selector in ("#national-rate", "#change-1", "#change-30", "#to-fix", "#target",
                     "#map svg.map", "#ranking tbody tr:first-child td.rank"):
        assert visible_without_scrolling(browser, selector), selector
    rate = browser.find_element(By.ID, "national-rate").text
    assert re.fullmatch(r"\d{2},\d{2} %", rate)
    first = browser.find_element(By.CSS_SELECTOR, "#ranking tbody tr:first-child td.rank")
    assert first.text.replace("\xa0", " ") == "1 / 63"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map rect.tile")) == 63
    SCREENSHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "leadership_1366x900.png"))

    browser.find_element(By.ID, "scheme-34").click()
    wait_for(lambda: "scheme=34" in browser.current_url, "the 34-scheme ranking")
    first = browser.find_element(By.CSS_SELECTOR, "#ranking tbody tr:first-child td.rank")
    assert first.text.replace("\xa0", " ") == "1 / 34"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map rect.tile")) == 34
    assert visible_without_scrolling(browser, "#map svg.map")
    browser.save_screenshot(str(SCREENSHOTS / "leadership_34_1366x900.png"))

    # printed for a meeting: no navigation, no switches, the headline and map still there
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert not browser.find_element(By.ID, "scheme-switch").is_displayed()
    assert not browser.find_element(By.ID, "export-xlsx").is_displayed()
    assert browser.find_element(By.ID, "national-rate").is_displayed()
    assert browser.find_element(By.ID, "map").is_displayed()
    browser.save_screenshot(str(SCREENSHOTS / "leadership_print.png"))
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
