"""``popsync users`` and ``popsync serve``: accounts from the command line, a real server."""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from portal_fixtures import publish_nights

from popsync import store
from popsync.errors import PopsyncError
from portal import security, users_cli
from portal.security import User

ROOT = Path(__file__).resolve().parents[2]


def users(argv: list[str], stdin: str = "", monkeypatch=None) -> int:
    parser = argparse.ArgumentParser()
    users_cli.add_arguments(parser)
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return users_cli.main(parser.parse_args(argv))


def test_users_add_list_remove(tmp_path, monkeypatch, capsys):
    data = ["--data", str(tmp_path)]
    assert users(["add", "lead", "--role", "leadership", "--password-stdin", *data],
                 "a long password\n", monkeypatch) == 0
    assert users(["add", "hcm", "--role", "office", "--province", "79", "--scheme", "34",
                  "--password-stdin", *data], "another password\n", monkeypatch) == 0
    users(["list", *data])
    listing = capsys.readouterr().out
    assert "lead\tleadership" in listing and "hcm\toffice\t79\t34" in listing
    engine = store.engine_for(store.default_db_url(tmp_path))
    throttle = security.Throttle()
    assert security.authenticate(engine, throttle, "hcm", "another password", "t") == User(
        "hcm", "office", "79", "34")
    assert "another password" not in (tmp_path / store.DB_FILE).read_bytes().decode("latin-1")
    assert users(["remove", "hcm", *data]) == 0
    with pytest.raises(PopsyncError, match="no user 'hcm'"):
        users(["remove", "hcm", *data])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["add", "o", "--role", "office", "--password-stdin"], "needs --province"),
        (["add", "o", "--role", "office", "--province", "74", "--scheme", "34",
          "--password-stdin"], "unknown 34-scheme province code '74'"),
        (["add", "o", "--role", "leadership", "--province", "79", "--password-stdin"],
         "do not give --province"),
        (["add", "o", "--role", "leadership"], "--password-stdin"),
    ],
)
def test_users_add_rejects_bad_accounts(tmp_path, monkeypatch, argv, message):
    with pytest.raises(PopsyncError, match=message):
        users([*argv, "--data", str(tmp_path)], "a long password\n", monkeypatch)


def test_users_add_uses_a_given_database_url(tmp_path, monkeypatch):
    db_url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    users(["add", "lead", "--role", "leadership", "--password-stdin", "--db-url", db_url],
          "a long password\n", monkeypatch)
    assert security.list_users(store.engine_for(db_url)) == [User("lead", "leadership")]
    assert not (tmp_path / store.DB_FILE).exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_popsync_serve_and_users_through_the_popsync_command(tmp_path, workers):
    publish_nights(tmp_path, store.default_db_url(tmp_path), ["2026-11-20"],
                   lists_for_latest=False)
    command = [sys.executable, "-m", "pipelines.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    added = subprocess.run(
        [*command, "users", "add", "lead", "--role", "leadership", "--password-stdin",
         "--data", str(tmp_path)], input="a long password\n", text=True, capture_output=True,
        env=env, cwd=ROOT, timeout=300)
    assert added.returncode == 0, added.stderr
    port = _free_port()
    server = subprocess.Popen(
        [*command, "serve", "--data", str(tmp_path), "--port", str(port), "--workers",
         str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "popsync serve did not start"
                time.sleep(0.5)
        assert health.json()["latest_publication"] == "2026-11-20"
        audit = httpx.get(f"http://127.0.0.1:{port}/api/audit",
                          auth=("lead", "a long password"))
        assert audit.status_code == 200
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert output.count("Started server process") == workers


@pytest.mark.slow
def test_user_errors_exit_with_code_2(tmp_path, monkeypatch, capsys):
    from pipelines.cli import main

    argv = ["users", "add", "lead", "--role", "leadership", "--password-stdin",
            "--data", str(tmp_path)]
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    assert main(argv) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    assert main(argv) == 2
    assert "popsync users: error: user 'lead' already exists" in capsys.readouterr().err


def test_serve_refuses_a_missing_data_folder(tmp_path):
    from portal import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    with pytest.raises(PopsyncError, match="does not exist"):
        cli.main(parser.parse_args(["--data", str(tmp_path / "nowhere")]))


def test_serve_passes_trusted_proxies_and_leaves_forwarded_for_to_the_portal(
        tmp_path, monkeypatch):
    import ipaddress

    import uvicorn

    from portal import cli

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app, **options))
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv = ["--data", str(tmp_path), "--trusted-proxy", "10.0.0.5",
            "--trusted-proxy", "fd00::/64"]
    assert cli.main(parser.parse_args(argv)) == 0
    assert served["proxy_headers"] is False  # uvicorn would believe 127.0.0.1's header
    assert served["app"].state.portal.trusted_proxies == (
        ipaddress.ip_network("10.0.0.5/32"), ipaddress.ip_network("fd00::/64"))
    served.clear()
    with pytest.raises(PopsyncError, match="trusted proxy 'proxy.internal' is not an IP"):
        cli.main(parser.parse_args(["--data", str(tmp_path), "--trusted-proxy",
                                    "proxy.internal"]))
    assert not served


def test_a_bad_province_names_the_province_table_of_its_scheme(tmp_path, monkeypatch, capsys):
    from pipelines.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    assert main(["users", "add", "o", "--role", "office", "--province", "74", "--scheme", "34",
                 "--password-stdin", "--data", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "unknown 34-scheme province code '74'" in error
    assert "see popsync/reference/data/provinces_34.csv" in error and "{scheme}" not in error
    assert (ROOT / "popsync/reference/data/provinces_34.csv").is_file()


def test_serve_draws_the_target_line_it_is_given(tmp_path, monkeypatch):
    import uvicorn

    from portal import cli

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app))
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.main(parser.parse_args(["--data", str(tmp_path), "--target", "99.5"])) == 0
    assert served["app"].state.portal.settings.target_rate == pytest.approx(0.995)
    assert cli.main(parser.parse_args(["--data", str(tmp_path)])) == 0
    assert served["app"].state.portal.settings.target_rate == 1.0
    with pytest.raises(PopsyncError, match="--target must be a percentage"):
        cli.main(parser.parse_args(["--data", str(tmp_path), "--target", "150"]))


def test_every_worker_draws_the_target_line_it_is_given(tmp_path, monkeypatch):
    import uvicorn

    from portal import cli

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app, **options))
    monkeypatch.setenv(cli.SETTINGS_VARIABLE, "")  # restored after the test
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    arguments = ["--data", str(tmp_path), "--target", "95", "--workers", "2"]
    assert cli.main(parser.parse_args(arguments)) == 0
    assert served["app"] == "portal.cli:app_from_environment" and served["workers"] == 2
    assert cli.app_from_environment().state.portal.settings.target_rate == pytest.approx(0.95)
