"""What the data engineers are told by e-mail about a night: that it failed, that a validation
gate stopped it, or that a rate dropped. An alert names the run date, the step or gate and the
figures; never a participant's data (no names, IDs, or values quoted from rows).

The Airflow callbacks at the end send them through the SMTP provider's notifier, to the
recipients of the run configuration's ``alerts`` section, over the Airflow connection it names.
"""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from popsync.errors import GateStop, RunStopped

if TYPE_CHECKING:  # pandas is imported where used: the DAG file imports this module
    import pandas as pd

log = logging.getLogger("popsync.alerts")
TIMEZONE = "Asia/Ho_Chi_Minh"


@dataclass(frozen=True)
class Alert:
    subject: str
    body: str  # plain text


def gate_stopped(run_date: str, stop: GateStop) -> Alert:
    lines = "\n".join(f"- {figure}" for figure in stop.figures)
    return Alert(
        f"popsync {run_date}: gate {stop.gate} stopped the night",
        f"Run date {run_date}: the validation gate {stop.gate} stopped the night; nothing was "
        f"published and the previous publication stays.\n\nFailed checks:\n{lines}\n\n"
        "The validation results are in the run's work folder (validation/); fix the sources "
        "and rerun the night.",
    )


def not_published(run_date: str, deadline: str) -> Alert:
    return Alert(
        f"popsync {run_date}: not published by {deadline}",
        f"Run date {run_date}: the night had not published by {deadline}; the offices still see "
        "the previous publication. Airflow shows which step is still running or failed.",
    )


def night_failed(run_date: str, step: str, reason: str) -> Alert:
    return Alert(
        f"popsync {run_date}: the night failed at {step}",
        f"Run date {run_date}: the step {step} failed ({reason}); nothing was published and the "
        "previous publication stays.\n\nThe step's log in Airflow says why; rerun the night "
        "once fixed.",
    )


def rate_drops(night: pd.DataFrame, previous: pd.DataFrame | None, points: float,
               scheme: str) -> list[tuple[str, float, float]]:
    """(where, previous rate, rate) for the national rate and each province's rate (line
    ``all`` of ``scheme``) that fell by more than ``points`` percentage points since the
    previous publication."""
    if previous is None or not len(previous):
        return []

    def rates(metrics: pd.DataFrame) -> pd.DataFrame:
        mine = metrics[(metrics["scheme"] == scheme) & (metrics["line"] == "all")]
        return mine.set_index("province_code")[["synchronized", "participants"]]

    now, before = rates(night), rates(previous)
    drops = []
    if len(now) and len(before):
        national = (now["synchronized"].sum() / now["participants"].sum(),
                    before["synchronized"].sum() / before["participants"].sum())
        if (national[1] - national[0]) * 100 > points:
            drops.append(("national", national[1], national[0]))
    both = now.merge(before, left_index=True, right_index=True, suffixes=("", "_before"))
    rate = both["synchronized"] / both["participants"]
    rate_before = both["synchronized_before"] / both["participants_before"]
    for code in both.index[(rate_before - rate) * 100 > points]:
        drops.append((f"province {code}", float(rate_before[code]), float(rate[code])))
    return drops


def rate_dropped(run_date: str, drops: list[tuple[str, float, float]], points: float) -> Alert:
    lines = "\n".join(f"- {where}: {before:.2%} -> {now:.2%} ({(now - before) * 100:+.2f} points)"
                      for where, before, now in drops)
    return Alert(
        f"popsync {run_date}: sync rate dropped in {len(drops)} place(s)",
        f"Run date {run_date}: the night published, but these synchronization rates fell by "
        f"more than {points:g} points since the previous publication:\n{lines}",
    )


# --- Airflow callbacks --------------------------------------------------------------------------


def notifier(alert: Alert, settings: dict):
    """The SMTP provider's notifier for ``alert`` (over the connection ``smtp_conn_id``), or
    None when the run config names no recipient."""
    if not settings.get("to"):
        log.warning("alert not sent (alerts.to is empty in the run config): %s", alert.subject)
        return None
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    # Jinja renders the notifier's fields: the alert's text goes in raw, never as a template.
    return SmtpNotifier(
        to=settings["to"], from_email=settings["from"], smtp_conn_id=settings["smtp_conn_id"],
        subject="{% raw %}" + alert.subject + "{% endraw %}",
        html_content="<pre>{% raw %}" + html.escape(alert.body) + "{% endraw %}</pre>",
    )


def send(alert: Alert, settings: dict, context) -> None:
    email = notifier(alert, settings)
    if email is not None:
        email(context)
        log.info("alert sent to %d recipient(s): %s", len(settings["to"]), alert.subject)


def _night(context):
    """(run date, run config or None) of the night a callback is about."""
    from pipelines.config import load_config
    from pipelines.context import RunContext
    from pipelines.steps import run_date_of

    ti = context.get("ti")
    work_dir = None
    if ti is not None and ti.task_id != "start":
        try:
            work_dir = ti.xcom_pull(task_ids="start")
        except Exception as exc:  # the callback must still alert
            log.warning("could not read the run's work folder: %s", exc)
    if work_dir:
        ctx = RunContext.load(work_dir)
        return ctx.run_date, ctx.config
    dag_run = context.get("dag_run")
    when = context.get("logical_date") or getattr(dag_run, "run_after", None)
    run_date = run_date_of(when) if when else "unknown"
    path = (context.get("params") or {}).get("config") or os.environ.get("POPSYNC_CONFIG")
    try:
        return run_date, load_config(path) if path else None
    except Exception as exc:  # a broken config is what failed: say so in the log
        log.warning("alert not sent: the run config cannot be read: %s", exc)
        return run_date, None


def on_task_failure(context) -> None:
    """A task failed for good: a gate stop, or a failed night."""
    exc = context.get("exception")
    stop = getattr(exc, "__cause__", None) or exc
    if isinstance(stop, RunStopped):
        return  # stopped because another step failed for good: that failure alerted
    run_date, config = _night(context)
    if config is None:
        return
    ti = context["ti"]
    if isinstance(stop, GateStop):
        alert = gate_stopped(run_date, stop)
    else:
        step = ti.task_id + (f"[{ti.map_index}]" if getattr(ti, "map_index", -1) >= 0 else "")
        # the exception's type, not its message: a message may quote a row's values
        alert = night_failed(run_date, step, type(exc).__name__ if exc else "failed")
    send(alert, config.alerts, context)


def on_night_failure(context) -> None:
    """The night failed without a task failing (its dagrun_timeout): task failures alert on
    their own."""
    if context.get("reason") == "task_failure":
        return
    run_date, config = _night(context)
    if config is not None:
        send(night_failed(run_date, "the run", str(context.get("reason") or "failed")),
             config.alerts, context)


def on_published(context) -> None:
    """After publish: alert when the national or a province's sync rate dropped."""
    import pandas as pd

    from pipelines import publish
    from pipelines.context import RunContext

    ctx = RunContext.load(context["ti"].xcom_pull(task_ids="start"))
    points = ctx.config.alerts["rate_drop_points"]
    scheme = ctx.config.province_schemes[0]
    night = pd.read_parquet(ctx.path("metrics.parquet"))
    drops = rate_drops(night, publish.previous_metrics(ctx.engine, ctx.run_date), points, scheme)
    if drops:
        send(rate_dropped(ctx.run_date, drops, points), ctx.config.alerts, context)


async def deadline_missed(context, **_) -> None:
    """Airflow's deadline alert (run by the triggerer): the night has not published in time.
    ``context`` holds only the run (``dag_run``) and the deadline."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from pipelines.config import load_config
    from pipelines.steps import run_date_of

    dag_run = context.get("dag_run") or {}
    when = dag_run.get("logical_date") or dag_run.get("run_after")
    run_date = run_date_of(datetime.fromisoformat(str(when))) if when else "unknown"
    deadline = (context.get("deadline") or {}).get("deadline_time")
    if isinstance(deadline, str):
        deadline = datetime.fromisoformat(deadline)
    shown = (deadline.astimezone(ZoneInfo(TIMEZONE)).strftime(f"%H:%M {TIMEZONE}")
             if isinstance(deadline, datetime) else "the deadline")
    path = (dag_run.get("conf") or {}).get("config") or os.environ.get("POPSYNC_CONFIG")
    if not path:
        log.warning("deadline alert not sent: no run config (POPSYNC_CONFIG)")
        return
    email = notifier(not_published(run_date, shown), load_config(path).alerts)
    if email is not None:
        email.render_template_fields(context)  # as __call__ does for the sync notify
        await email.async_notify(context)
