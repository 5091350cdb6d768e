"""The clerks' work list of a province: its rows to fix as a server-side paginated table (search,
filters, sort), a row's page (the registry's values beside the population database's, each
reason with the action to take, the work status and its history), and the status changes; as
pages with forms (``pages``) and as JSON (``api``). Each router checks, once for all its routes,
that the caller may see the province the path names; a row is found only in that province's
list, so another province's row is refused by any route."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from popsync import reasons, worklist
from popsync.contracts import STATUSES, SYNCHRONIZED
from popsync.reference.provinces import SCHEME_63_TO_34
from portal import publication
from portal.dependencies import (
    ApiProvince,
    PageProvince,
    Province,
    api_csrf,
    form_csrf,
    province_api,
    province_page,
)
from portal.web import (
    Lang,
    listed_of,
    page_lang,
    portal_of,
    render,
    run_state,
    url,
    work_counts_of,
)

pages = APIRouter(dependencies=[Depends(province_page)], include_in_schema=False)
api = APIRouter(tags=["worklist"], dependencies=[Depends(province_api)],
                responses={401: {"description": "not authenticated"},
                           403: {"description": "another office's province"},
                           404: {"description": "unknown province, or no such row in its list"}})

LISTED = tuple(s for s in STATUSES if s != SYNCHRONIZED)
VssCode = Annotated[str, PathParam(pattern=r"^\d{10}$", description="10-digit VSS code")]
# the list's columns, in order (labels in portal/i18n.py, ``col_<name>``)
COLUMNS = ("vss_code", "full_name", "birth_date", "gender", "national_id", "status", "reasons",
           "work_status", "ward_code", "employer_code", "employer_name")
# the row page's comparison: field label, the registry's column, the population's value
COMPARED = (("full_name", "full_name", "suggested_full_name"),
            ("birth_date", "birth_date", "suggested_birth_date"),
            ("gender", "gender", "suggested_gender"),
            ("national_id", "national_id", "suggested_national_id"))


class ListParams(BaseModel):
    """A search, filters, an order and a page of a province's list (query parameters)."""

    q: str = Field("", max_length=100, description="VSS code, personal ID, or the start of a "
                   "name (case and diacritics ignored)")
    status: Literal["", *LISTED] | None = None  # type: ignore[valid-type]
    reason: Literal["", *reasons.CODES] | None = None  # type: ignore[valid-type]
    line: Literal["", *worklist.LINES] | None = None  # type: ignore[valid-type]
    employer: str | None = Field(None, max_length=32)
    ward: str | None = Field(None, max_length=16)
    work: Literal["", *worklist.WORK_STATUSES] | None = None  # type: ignore[valid-type]
    sort: Literal[tuple(worklist.SORTS)] = "vss_code"  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = "asc"
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(50, ge=1, le=max(worklist.PAGE_SIZES))

    def query(self) -> worklist.ListQuery:
        values = self.model_dump()
        # an empty select of the filter form ("") means "any"
        return worklist.ListQuery(**{k: (v or None) if k in (
            "status", "reason", "line", "employer", "ward", "work") else v
            for k, v in values.items()})

    def params(self, **changes) -> dict:
        """The non-default parameters (for links), with ``changes``."""
        defaults = ListParams()
        values = self.model_dump() | changes
        return {k: v for k, v in values.items() if v not in (None, "") and (
            k in changes or v != getattr(defaults, k))}


# a dependency: its fields are query parameters beside the route's own (scheme, lang)
Params = Annotated[ListParams, Depends()]


class StatusChange(BaseModel):
    status: Literal[worklist.CLERK_STATUSES]  # type: ignore[valid-type]
    note: str | None = Field(None, max_length=worklist.MAX_NOTE)


def _run_id(request: Request) -> tuple[publication.RunState, int | None]:
    state = run_state(request)
    return state, state.run_id


def _listed_row(request: Request, province: Province, vss_code: str) -> dict:
    """The row of the publication shown, if it is in this province's list; 404 otherwise (a row
    of another province is not told apart from no row)."""
    _, run_id = _run_id(request)
    found = worklist.row(portal_of(request).engine, run_id, vss_code) if run_id else None
    if found is None or not _in_scope(province, found["province_code"]):
        raise HTTPException(404, "no such row in this province's list")
    return found


def _in_scope(province: Province, office: str) -> bool:
    """Whether a row of a 63-scheme office belongs to the province (or unit) of the path."""
    return (SCHEME_63_TO_34.get(office, office) if province.scheme == "34" else office
            ) == province.code


def _page_of(request: Request, province: Province, params: ListParams) -> dict:
    portal = portal_of(request)
    state, run_id = _run_id(request)
    query = params.query()
    rows, total = ([], 0)
    if run_id is not None:
        listed = sum(n for office, n in listed_of(portal, state).items()
                     if _in_scope(province, office))
        rows, total = worklist.page(portal.engine, run_id, province.scheme, province.code,
                                    query, listed)
    # a search's or filter's matches are counted up to the cap: "more than"
    more = worklist.narrowed(query) and total > worklist.COUNT_CAP
    total = min(total, worklist.COUNT_CAP) if more else total
    return {"run_date": state.run_date, "rows": rows, "total": total, "more": more,
            "page": query.page, "per_page": query.per_page,
            "pages": max(1, math.ceil(total / query.per_page))}


def explained(found: dict, lang: str) -> list[dict]:
    """Each reason of a row in plain words with the action to take (popsync.reasons), in the
    page's language; a duplicate registration names the person's other VSS codes."""
    pick = 0 if lang == "vi" else 1
    out = []
    for code in found["reasons"]:
        reason = reasons.BY_CODE.get(code)
        out.append({"code": code,
                    "label": reason.label[pick] if reason else code,
                    "action": reason.action[pick] if reason else "",
                    "other_vss_codes": found["other_vss_codes"]
                    if code == "duplicate_registration" else []})
    return out


def compared(found: dict) -> list[dict]:
    """The registry's values beside the population database's: a field differs where the
    night suggests the population's value; an unlinked row has no population value."""
    linked = found["personal_id"] is not None
    out = []
    for field, registry, suggested in COMPARED:
        population = found[suggested]
        if population is None and linked:
            population = found["personal_id"] if field == "national_id" else found[registry]
        out.append({"field": field, "registry": found[registry], "population": population,
                    "differs": found[suggested] is not None or (
                        field == "national_id" and linked
                        and found["national_id"] != found["personal_id"])})
    return out


def _history_json(entries: list[dict]) -> list[dict]:
    return [{**e, "changed_at": e["changed_at"].replace(tzinfo=e["changed_at"].tzinfo or UTC)
             .isoformat()} for e in entries]


# --- pages -------------------------------------------------------------------------------------


@pages.get("/provinces/{code}/worklist")
def worklist_page(request: Request, province: PageProvince, params: Params,
                  lang: Lang = None):
    lang = page_lang(request, lang)
    portal = portal_of(request)
    state, run_id = _run_id(request)
    shown = _page_of(request, province, params)
    # the wards and employers of the night's list: once per publication
    choices = {column: portal.of_state(state, ("worklist_choices", province.scheme,
                                               province.code, column), lambda column=column: (
        worklist.choices(portal.engine, run_id, province.scheme, province.code, column)
        if run_id else []))
        for column in ("ward_code", "employer_code")}
    base = f"/provinces/{province.code}/worklist"
    scheme = province.scheme
    return render(
        request, "worklist.html", lang, state=state, province=province, params=params,
        shown=shown, columns=COLUMNS, statuses=LISTED, reason_codes=reasons.CODES,
        lines=worklist.LINES, work_statuses=worklist.WORK_STATUSES, sorts=worklist.SORTS,
        page_sizes=worklist.PAGE_SIZES, choices=choices,
        loaded=run_id is not None and worklist.loaded(portal.engine, run_id),
        counts=work_counts_of(portal, state, scheme).get(province.code) if run_id else None,
        link=lambda **changes: url(base, scheme=scheme, **params.params(**changes)),
        row_url=lambda vss: url(f"{base}/{vss}", scheme=scheme),
        download=lambda fmt: url(f"{base}.{fmt}", scheme=scheme, **params.params()),
        province_url=url(f"/provinces/{province.code}", scheme=scheme),
    )


@pages.get("/provinces/{code}/worklist/{vss_code}")
def row_page(request: Request, province: PageProvince, vss_code: VssCode,
             lang: Lang = None, saved: bool = False):
    lang = page_lang(request, lang)
    portal = portal_of(request)
    try:
        found = _listed_row(request, province, vss_code)
    except HTTPException:
        # a row the province worked on that is no longer to fix: its status and history
        item = worklist.item(portal.engine, vss_code)
        if item is None or not _in_scope(province, item["province_code"]):
            raise
        return render(
            request, "worklist_row.html", lang, state=run_state(request), province=province,
            row=None, item=item, history=worklist.history(portal.engine, vss_code),
            list_url=url(f"/provinces/{province.code}/worklist", scheme=province.scheme))
    base = f"/provinces/{province.code}/worklist"
    return render(
        request, "worklist_row.html", lang, state=run_state(request), province=province,
        row=found, compared=compared(found), explained=explained(found, lang),
        history=worklist.history(portal.engine, vss_code), saved=saved,
        clerk_statuses=worklist.CLERK_STATUSES,
        action=url(f"{base}/{vss_code}/status", scheme=province.scheme),
        list_url=url(base, scheme=province.scheme),
        row_url=lambda vss: url(f"{base}/{vss}", scheme=province.scheme),
    )


@pages.post("/provinces/{code}/worklist/{vss_code}/status", dependencies=[Depends(form_csrf)])
def set_status_form(
    request: Request, province: PageProvince, vss_code: VssCode,
    status: Annotated[Literal[worklist.CLERK_STATUSES], Form()],  # type: ignore[valid-type]
    note: Annotated[str, Form(max_length=worklist.MAX_NOTE)] = "",
):
    found = _listed_row(request, province, vss_code)
    _, run_id = _run_id(request)
    worklist.set_status(portal_of(request).engine, run_id, found["vss_code"], status, note,
                        province.user.username, datetime.now(UTC))
    target = url(f"/provinces/{province.code}/worklist/{vss_code}", scheme=province.scheme,
                 saved="1")
    return RedirectResponse(target + "#history", status_code=303)


# --- JSON API ----------------------------------------------------------------------------------


@api.get("/api/provinces/{code}/worklist",
         summary="A page of a province's rows to fix, with their work status",
         description="Search (`q`: VSS code, personal ID, or the start of a name, case and "
         "diacritics ignored), filters, sort and page of the publication shown.")
def worklist_api(request: Request, province: ApiProvince, params: Params):
    return {"code": province.code, "scheme": province.scheme,
            **_page_of(request, province, params)}


@api.get("/api/provinces/{code}/worklist/{vss_code}",
         summary="A row to fix: values compared, reasons with their actions, status history")
def row_api(request: Request, province: ApiProvince, vss_code: VssCode, lang: Lang = None):
    found = _listed_row(request, province, vss_code)
    return {"row": {k: v for k, v in found.items() if k != "work"},
            "compared": compared(found),
            "reasons": explained(found, page_lang(request, lang)),
            "history": _history_json(worklist.history(portal_of(request).engine, vss_code))}


@api.post("/api/provinces/{code}/worklist/{vss_code}/status",
          summary="Set a row's work status, with a note",
          description="JSON body `{status, note}`; with a session cookie, its CSRF token in "
          "`X-CSRF-Token`. The change is kept with who and when in the row's history.",
          dependencies=[Depends(api_csrf)])
def set_status_api(request: Request, province: ApiProvince, vss_code: VssCode,
                   change: StatusChange):
    found = _listed_row(request, province, vss_code)
    _, run_id = _run_id(request)
    worklist.set_status(portal_of(request).engine, run_id, found["vss_code"], change.status,
                        change.note, province.user.username, datetime.now(UTC))
    return {"vss_code": vss_code, "work_status": change.status,
            "history": _history_json(worklist.history(portal_of(request).engine, vss_code))}

