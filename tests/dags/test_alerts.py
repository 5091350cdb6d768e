"""The night's e-mail alerts, sent through Airflow's SMTP notifier to a real SMTP server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime

import pandas as pd
import pytest
import yaml
from airflow_env import DAGS, airflow_env, migrate, python
from smtp_server import airflow_connection, smtp_server, text_of

from pipelines import alerts
from popsync.synthetic import generate_nation, write_nation

LOGICAL_DATE = "2026-11-20T18:00:00"  # 01:00 on 21 November in Hồ Chí Minh City
RUN_DATE = "2026-11-21"
TO = "night-watch@vss.example"


def _config(tmp_path, nation_dir) -> dict:
    return {
        "registry": {"source": str(nation_dir / "registry.parquet")},
        "population": {"source": str(nation_dir / "population.parquet")},
        "output": {"dir": str(tmp_path / "out")},
        "alerts": {"to": [TO], "from": "popsync@vss.example"},
    }


@pytest.mark.slow
def test_a_gate_stop_sends_one_email_naming_the_gate_and_run_date_without_personal_data(
        tmp_path):
    nation = generate_nation(300, seed=11)
    # one participant registered twice under the same code: the key gate stops the night
    twice = nation.registry.iloc[[7]]
    registry = pd.concat([nation.registry, twice], ignore_index=True)
    write_nation(dataclasses.replace(nation, registry=registry), tmp_path / "nation", force=True)
    config_path = tmp_path / "popsync.yaml"
    config_path.write_text(yaml.safe_dump(_config(tmp_path, tmp_path / "nation")), "utf-8")

    with smtp_server() as (port, inbox):
        env = airflow_env(tmp_path / "airflow", POPSYNC_CONFIG=str(config_path),
                          AIRFLOW_CONN_SMTP_DEFAULT=airflow_connection(port))
        migrate(env)
        runner = str(DAGS.parent / "tests" / "dags" / "dag_test_runner.py")
        done = python([runner, LOGICAL_DATE, str(DAGS)], env, timeout=900)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        dag_run = json.loads(next(x for x in done.stdout.splitlines()
                                  if x.startswith("DAGRUN "))[len("DAGRUN "):])
        assert dag_run["state"] == "failed"
        assert dag_run["tasks"]["check_keys"] == "failed"  # at once: a gate stop is not retried
        assert dag_run["tasks"]["publish"] == "upstream_failed"
        messages = list(inbox)

    assert len(messages) == 1, [m["Subject"] for m in messages]
    message = messages[0]
    assert message["To"] == TO
    text = message["Subject"] + "\n" + text_of(message)
    assert "check_keys" in text and RUN_DATE in text
    assert "duplicate" in text.lower() or "unique" in text.lower()
    row = twice.iloc[0]
    for personal in (row["vss_code"], row["full_name"], row["national_id"], row["birth_date"]):
        if isinstance(personal, str) and personal:
            assert personal not in text, "an alert must not carry personal data"


def _metrics(rates: dict[str, tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"scheme": "63", "line": "all", "province_code": code,
                          "synchronized": synced, "participants": participants}
                         for code, (synced, participants) in rates.items()])


def test_rate_drops_national_and_provinces_beyond_the_threshold():
    previous = _metrics({"01": (980, 1000), "79": (950, 1000), "48": (900, 1000)})
    night = _metrics({"01": (975, 1000), "79": (900, 1000), "48": (905, 1000)})
    drops = alerts.rate_drops(night, previous, points=2.0, scheme="63")
    assert [where for where, *_ in drops] == ["province 79"]  # national: -1.67 points
    drops = alerts.rate_drops(night, previous, points=1.0, scheme="63")
    assert [where for where, *_ in drops] == ["national", "province 79"]
    assert alerts.rate_drops(night, None, points=1.0, scheme="63") == []
    alert = alerts.rate_dropped(RUN_DATE, drops, 1.0)
    assert RUN_DATE in alert.subject and "95.00% -> 90.00%" in alert.body


def test_the_deadline_alert_emails_through_the_smtp_connection(tmp_path, monkeypatch):
    """The coroutine Airflow's triggerer awaits when the night misses 06:00."""
    config_path = tmp_path / "popsync.yaml"
    config_path.write_text(yaml.safe_dump(_config(tmp_path, tmp_path)), "utf-8")
    context = {
        "dag_run": {"dag_id": "popsync_nightly", "logical_date": LOGICAL_DATE + "+00:00",
                    "conf": {}},
        "deadline": {"id": "x", "deadline_time": datetime(2026, 11, 20, 23, 0, tzinfo=UTC)},
    }
    with smtp_server() as (port, inbox):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", airflow_connection(port))
        monkeypatch.setenv("POPSYNC_CONFIG", str(config_path))
        asyncio.run(alerts.deadline_missed(context))
        messages = list(inbox)
    assert len(messages) == 1
    assert messages[0]["Subject"] == (
        f"popsync {RUN_DATE}: not published by 06:00 Asia/Ho_Chi_Minh")


class _PublishTask:
    """What publish's success callback reads of its task instance: the start task's output."""

    task_id = "publish"
    map_index = -1

    def __init__(self, work_dir: str):
        self.work_dir = work_dir

    def xcom_pull(self, task_ids: str) -> str:
        assert task_ids == "start"
        return self.work_dir


def test_a_rate_drop_after_publish_sends_one_email(tmp_path, monkeypatch):
    from pipelines import cli

    nation = generate_nation(600, seed=3)
    write_nation(nation, tmp_path / "nation", force=True)
    config = _config(tmp_path, tmp_path / "nation")
    config_path = tmp_path / "popsync.yaml"
    config_path.write_text(yaml.safe_dump(config), "utf-8")
    assert cli.main(["run", "--config", str(config_path), "--run-date", "2026-11-20"]) == 0
    # the next night, a third of the registry comes without personal IDs: rates fall
    registry = nation.registry.copy()
    registry.loc[registry.index % 3 == 0, "national_id"] = None
    registry.to_parquet(tmp_path / "nation" / "registry.parquet", index=False)
    assert cli.main(["run", "--config", str(config_path), "--run-date", RUN_DATE]) == 0
    work_dir = max((tmp_path / "out" / "work").glob(f"{RUN_DATE}-r*"))

    with smtp_server() as (port, inbox):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", airflow_connection(port))
        alerts.on_published({"ti": _PublishTask(str(work_dir))})
        messages = list(inbox)
    assert len(messages) == 1
    text = messages[0]["Subject"] + "\n" + text_of(messages[0])
    assert RUN_DATE in text and "national" in text and "points" in text
    for personal in nation.registry["full_name"].head(50):
        assert personal not in text
