"""``popsync demo`` on a taken port stops before any work, and its "serve again" hint runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from pipelines import cli, demo


def test_a_taken_port_is_said_before_any_work_or_password(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["demo", "--port", str(port), "--out", str(tmp_path / "demo")])
    captured = capsys.readouterr()
    assert code == 2
    assert f"127.0.0.1:{port}" in captured.err and f"PORT={port + 1}" in captured.err
    assert demo.LEADERSHIP_USER not in captured.out + captured.err  # no address, no password
    assert not (tmp_path / "demo" / "published").exists()  # nothing done, nothing replaced


def test_the_serve_again_hint_runs_as_printed(tmp_path):
    for path in (os.environ.get("PATH", ""), "/usr/bin:/bin"):  # the venv on the PATH or not
        env = {**os.environ, "PATH": path}
        command = subprocess.run(
            [sys.executable, "-c",
             "from pipelines.demo import popsync_command; print(popsync_command())"],
            env=env, capture_output=True, text=True, cwd=tmp_path)
        hint = command.stdout.strip()
        done = subprocess.run(f"{hint} serve --help", shell=True, env=env, capture_output=True,
                              text=True, cwd=tmp_path)
        assert done.returncode == 0, (hint, done.stderr)
        if path == "/usr/bin:/bin":
            assert hint != "popsync"  # not on that PATH: the full path is shown
