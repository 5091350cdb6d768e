"""Fixtures of the portal tests: a published data folder, accounts, and live servers."""

from __future__ import annotations

import httpx
import pytest
from portal_fixtures import RUN_DATES, live_server, make_accounts, publish_nights

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
