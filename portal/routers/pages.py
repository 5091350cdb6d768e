"""The HTML pages: the public ranking (leadership's view), a province's page, the audit log and
the API documentation."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from popsync.contracts import LINES, STATUSES
from popsync.reference import codes_63_of, province_name, to_34
from popsync.text import folded_name
from portal import charts, i18n, leadership, publication, security
from portal.dependencies import CurrentUser, PageProvince, identify
from portal.web import (
    LISTS,
    Lang,
    Line,
    MapOf,
    Scheme,
    audit_entries,
    downloads_of,
    figures_of,
    page_lang,
    portal_of,
    province_detail_of,
    province_extra_of,
    render,
    run_state,
    state_context,
    url,
    work_counts_of,
)

if TYPE_CHECKING:
    from portal.app import Portal
    from portal.security import User

SORT_KEYS = ("rank", "code", "name", "participants", "synchronized", "to_fix", "sync_rate",
             "change")

router = APIRouter(dependencies=[Depends(identify)], include_in_schema=False)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def ranking_page(
    request: Request,
    user: CurrentUser,
    scheme: Scheme = "63",
    line: Line = "all",
    sort: Annotated[Literal[SORT_KEYS], Query()] = "rank",  # type: ignore[valid-type]
    order: Annotated[Literal["asc", "desc"], Query()] = "asc",
    map: MapOf = "sync",
    lang: Lang = None,
):
    portal = portal_of(request)
    lang = page_lang(request, lang)
    state = run_state(request)

    def context() -> dict:
        shown = leadership_page(portal, state, scheme, line, map, user, lang)
        # leadership sees each province's work list beside its rate (live: clerks change it)
        work = work_counts_of(portal, state, scheme) if user and user.is_leadership else None
        return dict(shown, rows=sorted_provinces(shown["rows"], sort, order == "desc"),
                    work=work)

    # the page of anonymous visitors, when the URL holds nothing but its own parameters
    shared = None
    if set(request.query_params) <= {"scheme", "line", "sort", "order", "map", "lang"}:
        shared = (state, tuple(sorted(request.query_params.items())))
    return render(
        request, "ranking.html", lang, shared=shared, context_of=context,
        scheme=scheme, line=line, sort=sort, order=order, lines=list(LINES),
        sort_keys=SORT_KEYS, map_of=map, map_choices=leadership.MAP_OF,
        map_param=None if map == "sync" else map,
        export_url=url("/exports/leadership.xlsx", scheme=scheme, lang=lang), state=state,
    )


@router.get("/provinces/{code}", response_class=HTMLResponse, include_in_schema=False)
def province_page(request: Request, province: PageProvince, lang: Lang = None):
    code, scheme, name, user = province.code, province.scheme, province.name, province.user
    lang = page_lang(request, lang)
    portal = portal_of(request)
    context = state_context(request)
    state = context["state"]
    detail, files, chart = None, {}, None
    if state.run_date:
        detail = province_detail_of(portal, state, scheme, code)
        chart = portal.of_state(state, ("province_chart", scheme, code, lang), lambda: (
            charts.line_chart(
                [(p["run_date"], p["sync_rate"]) for p in detail["trend"]],
                i18n.label("trend", lang), lambda v: i18n.format_rate(v, lang, 1),
            )))
        files = downloads_of(portal, state, scheme, code, LISTS)
    extra = {}
    if state.run_date:
        extra = province_extra_of(portal, state, scheme, code)
    if scheme == "63":
        unit = to_34(code)
        related = [("merged_into", "34", unit, province_name(unit, "34"))]
    else:
        related = [("merged_from", "63", old, province_name(old, "63"))
                   for old in codes_63_of(code)]
    related = [
        (key, s, c, n, security.may_access_province(user, s, c)) for key, s, c, n in related
    ]
    # the work list's counts change with every clerk's change: they are part of the key
    work = work_counts_of(portal, state, scheme).get(code) if state.run_date else None
    # the content names no user: only which related provinces this one may open
    shared_content = (state, (request.url.path, scheme,
                              tuple(allowed for *_, allowed in related),
                              tuple(sorted(work.items())) if work else None))
    return render(
        request, "province.html", lang, shared_content=shared_content,
        code=code, scheme=scheme, name=name, detail=detail, files=files, trend_chart=chart,
        related=related, statuses=STATUSES, lines=list(LINES), work=work,
        worklist_url=url(f"/provinces/{code}/worklist", scheme=scheme), **extra, **context,
    )


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(request: Request, user: CurrentUser,
               limit: Annotated[int, Query(ge=1, le=5000)] = 200, lang: Lang = None):
    if user is None:
        return RedirectResponse(url("/login", next="/audit"), status_code=303)
    if not user.is_leadership:
        raise HTTPException(403, "only leadership may read the audit log")
    entries = audit_entries(portal_of(request).engine, limit)
    return render(request, "audit.html", page_lang(request, lang), entries=entries)


@router.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request, lang: Lang = None):
    spec = request.app.openapi()
    operations = [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]
    return render(request, "api_docs.html", page_lang(request, lang), operations=operations)


def sorted_provinces(provinces: list[dict], column: str, descending: bool) -> list[dict]:
    """Provinces by ``column``; missing values (no previous night) go last whichever the order."""
    if column == "name":
        return sorted(provinces, key=lambda row: folded_name(row["name"]), reverse=descending)
    present = [row for row in provinces if row[column] is not None]
    missing = [row for row in provinces if row[column] is None]
    return sorted(present, key=lambda row: row[column], reverse=descending) + missing


def leadership_page(portal: Portal, state: publication.RunState, scheme: str, line: str,
                     map_of: str, user: User | None, lang: str) -> dict:
    """The ranking page's figures and charts: what is the same for everyone made once per run
    state (``leadership.page``, kept without a viewer), the links, marks and own province of
    the user added for each request (``leadership.for_viewer``)."""
    figures = figures_of(portal, state.run_date, scheme, line, map_of, user, lang)
    anyone = replace(figures, viewer=leadership.Viewer())
    shown = portal.of_state(state, ("leadership_page", anyone),
                            lambda: leadership.page(portal.engine, anyone))
    return leadership.for_viewer(shown, figures)
