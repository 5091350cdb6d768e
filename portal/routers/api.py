"""The JSON API: health, rankings, a province's figures, breakdowns, coverage and the audit
log. ``/api/health`` answers without identifying the caller (a monitor's probe must not fail
for a credential); every other route identifies it first."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from popsync import store
from popsync.contracts import AGE_BANDS, UNKNOWN
from portal import leadership, publication, security
from portal.dependencies import ApiProvince, CurrentUser, identify
from portal.web import (
    LISTS,
    RETRY_AFTER_SECONDS,
    Line,
    Scheme,
    audit_entries,
    downloads_of,
    figures_of,
    json_of_state,
    portal_of,
    province_detail_of,
    province_or_404,
    run_state,
    state_json,
    unauthorized,
    work_counts_of,
)

log = logging.getLogger("popsync.portal")

public = APIRouter(tags=["api"])  # answers without identifying the caller
router = APIRouter(tags=["api"], dependencies=[Depends(identify)])


@public.get(
    "/api/health", tags=["api"], summary="Liveness, database and publication state",
    description="`ok`; `degraded` (still 200) when the latest publication's folder is "
    "missing or incomplete and an earlier, complete one is served; 503 with `error` when the "
    "publication database cannot be reached.",
)
def health(request: Request):
    try:
        state = run_state(request)
    except sa.exc.SQLAlchemyError as exc:
        detail = "database unreachable" if store.database_down(exc) else "database error"
        log.warning("health: %s (%s)", detail, store.first_line(exc))
        return JSONResponse({"status": "error", "detail": detail}, 503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    body = {"status": "ok", **state_json(state)}
    if state.incomplete:
        folders = ", ".join(store.publication_path(d) for d in state.incomplete)
        body["status"] = "degraded"
        body["detail"] = (
            f"{folders}: folder missing or without its manifest (a publication interrupted "
            f"between its renames?); serving {state.run_date or 'nothing'} instead. The next "
            "run's recovery puts the folder back; or rerun that date."
        )
    return body


@router.get("/api/rankings", tags=["api"], summary="Every province's public figures")
def rankings(request: Request, scheme: Scheme = "63", line: Line = "all"):
    portal = portal_of(request)
    state = run_state(request)

    def body():
        figures = figures_of(portal, state.run_date, scheme, line, "sync", None, "en")
        return {"scheme": scheme, "line": line, "run_date": state.run_date,
                **state_json(state), **leadership.api(portal.engine, figures)}

    return json_of_state(request, state, ("rankings", scheme, line), body, private=False)


@router.get(
    "/api/provinces/{code}",
    tags=["api"],
    summary="A province's figures by line, status and reason, its trend and its lists",
    responses={401: {"description": "not authenticated"},
               403: {"description": "another office's province"},
               404: {"description": "unknown province code"}},
)
def province_api(request: Request, province: ApiProvince):
    code, scheme, name = province.code, province.scheme, province.name
    portal = portal_of(request)
    state = run_state(request)

    def body():
        if state.run_date is None:
            return {"code": code, "scheme": scheme, "name": name, "run_date": None,
                    "lines": {}, "reasons": [], "trend": [], "lists": {},
                    **state_json(state)}
        return {**province_detail_of(portal, state, scheme, code),
                "lists": downloads_of(portal, state, scheme, code, LISTS),
                **state_json(state)}

    return json_of_state(request, state, ("province", scheme, code), body, private=True)


@router.get("/api/audit", tags=["api"],
         summary="The audit log: list downloads, failed and refused logins (leadership only)",
         responses={401: {"description": "not authenticated"},
                    403: {"description": "not a leadership account"}})
def audit_api(request: Request, user: CurrentUser,
              limit: Annotated[int, Query(ge=1, le=5000)] = 200):
    if user is None:
        raise unauthorized()
    if not user.is_leadership:
        raise HTTPException(403, "only leadership may read the audit log")
    return {"entries": audit_entries(portal_of(request).engine, limit)}


@router.get("/api/breakdowns", tags=["api"],
         summary="Participants and sync rate by age band and gender, nation or a province")
def breakdowns_api(request: Request, scheme: Scheme = "63", line: Line = "all",
                   code: Annotated[str | None, Query(description="a province, else the "
                                                     "nation")] = None):
    if code is not None:
        province_or_404(code, scheme)
    state = run_state(request)

    def body():
        return {"scheme": scheme, "line": line, "code": code, "run_date": state.run_date,
                "groups": publication.breakdowns(portal_of(request).engine, state.run_date,
                                                 scheme, line, code)}

    return json_of_state(request, state, ("breakdowns", scheme, line, code), body,
                          private=False)


@router.get("/api/coverage", tags=["api"],
         summary="Residents linked to a registration, per province of residence, ranked")
def coverage_api(request: Request, scheme: Scheme = "63", line: Line = "all",
                 age_band: Annotated[Literal["all", *AGE_BANDS, UNKNOWN],  # type: ignore
                                     Query(description="age band")] = "all"):
    state = run_state(request)

    def body():
        return {"scheme": scheme, "line": line, "age_band": age_band,
                "run_date": state.run_date,
                "provinces": publication.coverage(portal_of(request).engine, state.run_date,
                                                  scheme, line, age_band)}

    return json_of_state(request, state, ("coverage", scheme, line, age_band), body,
                          private=False)



@router.get("/api/worklist/summary", tags=["worklist"],
            summary="Each province's work list: open, in progress, closed in 7 days, "
            "corrections not effective",
            description="Leadership: every province of the scheme; an office: the provinces it "
            "may see.", responses={401: {"description": "not authenticated"}})
def worklist_summary(request: Request, user: CurrentUser, scheme: Scheme = "63"):
    if user is None:
        raise unauthorized()
    state = run_state(request)
    counts = work_counts_of(portal_of(request), state, scheme)
    return {"scheme": scheme, "run_date": state.run_date, "provinces": {
        code: figures for code, figures in sorted(counts.items())
        if security.may_access_province(user, scheme, code)}}
