"""Fixtures of the portal tests: a published data folder, accounts, and live servers."""

from __future__ import annotations

import shutil
import tempfile

import httpx
import pytest
from browser_helpers import CHROMEDRIVER, CHROMIUM
from portal_fixtures import RUN_DATES, live_server, make_accounts, publish_nights
from worklist_fixtures import NIGHTS, make_nation, run_night

from popsync import store
from portal.app import PortalSettings, create_app


@pytest.fixture(scope="session")
def published(tmp_path_factory):
    """A data folder with three published nights, its database, and the test accounts."""
    data = tmp_path_factory.mktemp("published")
    db_url = store.default_db_url(data)
    engine = publish_nights(data, db_url, RUN_DATES)
    make_accounts(engine)
    return data, db_url


@pytest.fixture(scope="session")
def server(published):
    data, db_url = published
    app = create_app(PortalSettings(db_url=db_url, data_dir=data))
    with live_server(app) as base_url:
        yield base_url


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server, timeout=30, follow_redirects=True) as c:
        yield c


@pytest.fixture(scope="session")
def worklist_nation(tmp_path_factory):
    """A generated nation and its first real night published (the work list's rows loaded),
    with the test accounts: (nation folder, output folder). Tests that change it copy it."""
    nation = make_nation(tmp_path_factory.mktemp("worklist_nation"))
    out = tmp_path_factory.mktemp("worklist_published")
    run_night(nation, out, NIGHTS[0])
    make_accounts(store.engine_for(store.default_db_url(out)))
    return nation, out


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="popsync-chromium-")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,1900", "--lang=vi"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
    })
    # An explicit driver path: selenium-manager never runs, so nothing is downloaded.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(30)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
