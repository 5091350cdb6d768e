"""The engineers' run pages: each night's attempts, their steps (durations, attempts, hosts),
gate outcomes, quarantine counts by reason and the validation report. Engineers only: offices
and leadership are refused."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from portal import runs
from portal.dependencies import CurrentUser, identify
from portal.web import Lang, page_lang, portal_of, render, url

router = APIRouter(dependencies=[Depends(identify)], include_in_schema=False)


def _engineer(user, path: str) -> RedirectResponse | None:
    """A redirect to the login page for a visitor; 403 for an account that is not an engineer's."""
    if user is None:
        return RedirectResponse(url("/login", next=path), status_code=303)
    if not user.is_engineer:
        raise HTTPException(403, "only data engineers may read the runs' pages")
    return None


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, user: CurrentUser,
              limit: Annotated[int, Query(ge=1, le=1000)] = 60, lang: Lang = None):
    if (login := _engineer(user, "/runs")) is not None:
        return login
    return render(request, "runs.html", page_lang(request, lang),
                  runs=runs.recent_runs(portal_of(request).engine, limit))


def _detail(request: Request, run_id: int) -> runs.RunDetail:
    portal = portal_of(request)
    detail = runs.run_detail(portal.engine, portal.settings.data_dir, run_id)
    if detail is None:
        raise HTTPException(404, f"no run {run_id}")
    return detail


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: int, user: CurrentUser, lang: Lang = None):
    if (login := _engineer(user, f"/runs/{run_id}")) is not None:
        return login
    return render(request, "run.html", page_lang(request, lang), detail=_detail(request, run_id))


@router.get("/runs/{run_id}/validation_report.html")
def run_report(request: Request, run_id: int, user: CurrentUser):
    if (login := _engineer(user, f"/runs/{run_id}/validation_report.html")) is not None:
        return login
    report = _detail(request, run_id).report
    if report is None:
        raise HTTPException(404, f"run {run_id} left no validation report")
    return FileResponse(report, media_type="text/html")
