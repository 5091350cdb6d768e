"""Downloads: a province's lists (participants to fix, residents without health insurance), its
employers' workbooks (Mẫu 02 / Mẫu 01) and the leadership workbook. Every province file asked
for is audited, granted or refused."""

from __future__ import annotations

import contextlib
import zipfile
from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response, StreamingResponse

from popsync import worklist
from portal import leadership, publication, security, worklist_files
from portal.dependencies import identify
from portal.routers.worklist import Params
from portal.web import (
    FILE_TYPES,
    MEDIA_TYPES,
    Code,
    Lang,
    Scheme,
    audit_access,
    current_user,
    figures_of,
    page_lang,
    portal_of,
    province_or_404,
    run_state,
    unauthorized,
)

router = APIRouter(dependencies=[Depends(identify)])


@router.get(
    "/provinces/{code}/lists/unsynchronized.{fmt}",
    summary="Download a province's list of unsynchronized participants",
    description="The latest good publication's list of the province, as Excel or CSV. "
    "401 without credentials (HTTP Basic or a session), 403 for a province the account may "
    "not see, 404 for an unknown province or when there is no list. Every call is audited.",
    responses={
        200: {"content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}}},
        401: {"description": "not authenticated"},
        403: {"description": "another office's province"},
        404: {"description": "unknown province, nothing published, or no list"},
    },
    tags=["lists"],
)
def download_list(
    request: Request,
    code: Code,
    fmt: Annotated[Literal["xlsx", "csv"], PathParam(description="file format")],
    scheme: Scheme = "63",
):
    return _province_file(request, code, scheme, fmt, "download_list",
                          publication.list_file, "unsynchronized")


@router.get("/exports/leadership.xlsx", tags=["exports"],
         summary="The ranking, breakdowns and coverage of every line as one workbook",
         responses={200: {"content": {MEDIA_TYPES["xlsx"]: {}}}})
def leadership_workbook(request: Request, scheme: Scheme = "63", lang: Lang = None):
    portal = portal_of(request)
    state = run_state(request)
    if state.run_date is None:
        raise HTTPException(404, "nothing has been published yet")
    # the workbook holds public figures only: one per run state, scheme and language
    figures = figures_of(portal, state.run_date, scheme, "all", "sync", None,
                       page_lang(request, lang))
    return Response(
        portal.of_state(state, ("leadership_workbook", figures),
                        lambda: leadership.workbook(portal.engine, figures)),
        media_type=MEDIA_TYPES["xlsx"],
        headers={"Content-Disposition": "attachment; filename="
                 f'"popsync_{scheme}_{state.run_date}_leadership.xlsx"'})


@router.get(
    "/provinces/{code}/coverage/uninsured.{fmt}",
    summary="Download a province's living residents without health insurance",
    description="By ward and age band, children under 6 first and flagged (the state pays "
    "their health insurance). Same access as the province's lists: 401 without credentials, "
    "403 for another office's province; audited.",
    responses={200: {"content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}}},
               401: {"description": "not authenticated"},
               403: {"description": "another office's province"},
               404: {"description": "unknown province, nothing published, or no list"}},
    tags=["lists"],
)
def download_uninsured(
    request: Request, code: Code,
    fmt: Annotated[Literal["xlsx", "csv"], PathParam(description="file format")],
    scheme: Scheme = "63",
):
    return _province_file(request, code, scheme, fmt, "download_uninsured",
                          publication.uninsured_file, "uninsured")


@router.get(
    "/provinces/{code}/employers.{fmt}",
    summary="Download a province's employer workbooks (Mẫu 02, Mẫu 01) or their index",
    description="`zip`: one workbook per employer (đơn vị), Mẫu 02 (participants to fix, "
    "with reason and action) and Mẫu 01 (participants synchronized, for the employer to "
    "sign); `csv`: the index (employer code and name, rows of each form, workbook name). "
    "Written only when the night runs with `output.employer_workbooks`. Same access as the "
    "lists: 401, 403 for another office's province, 404 when there are none; audited.",
    responses={200: {"content": {FILE_TYPES["zip"]: {}, MEDIA_TYPES["csv"]: {}}},
               401: {"description": "not authenticated"},
               403: {"description": "another office's province"},
               404: {"description": "unknown province, nothing published, or no workbooks"}},
    tags=["lists"],
)
def download_employers(
    request: Request, code: Code,
    fmt: Annotated[Literal["zip", "csv"], PathParam(description="file format")],
    scheme: Scheme = "63",
):
    return _province_file(request, code, scheme, fmt, "download_employers",
                          publication.employer_file, "employers")


@router.get(
    "/provinces/{code}/employer.xlsx",
    summary="Download one employer's workbook (Mẫu 02, Mẫu 01, Thông tin)",
    description="The workbook of the employer `employer` (its code, as in the index) of the "
    "province, out of the province's zip. Same access as the lists; audited.",
    responses={200: {"content": {MEDIA_TYPES["xlsx"]: {}}},
               401: {"description": "not authenticated"},
               403: {"description": "another office's province"},
               404: {"description": "unknown province or employer, or no workbooks"}},
    tags=["lists"],
)
def download_employer(
    request: Request, code: Code,
    employer: Annotated[str, Query(min_length=1, max_length=64,
                                   description="the employer's code (mã đơn vị)")],
    scheme: Scheme = "63",
):
    state = _allowed(request, code, scheme, "xlsx", "download_employer")
    try:
        found = publication.employer_workbook(portal_of(request).settings.data_dir, state.path,
                                              scheme, code, employer)
    except FileNotFoundError:
        found = None
    content = None
    if found is not None and found[0].is_file():
        with zipfile.ZipFile(found[0]) as archive, contextlib.suppress(KeyError):
            content = archive.read(found[1])
    if content is None:
        raise HTTPException(404, "no workbook for this employer in the latest publication")
    return Response(content, media_type=MEDIA_TYPES["xlsx"], headers={
        "Content-Disposition": f'attachment; filename="{found[1]}"'})


@router.get(
    "/provinces/{code}/worklist.{fmt}",
    summary="Download a province's work list as filtered",
    description="The rows to fix of the publication shown that the query parameters of "
    "`/api/provinces/{code}/worklist` select (search, filters, order; every page), as Excel or "
    "CSV, headers in the page's language. Same access as the lists; audited.",
    responses={200: {"content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}}},
               401: {"description": "not authenticated"},
               403: {"description": "another office's province"},
               404: {"description": "unknown province, or nothing published"}},
    tags=["lists"],
)
def download_worklist(
    request: Request, code: Code,
    fmt: Annotated[Literal["xlsx", "csv"], PathParam(description="file format")],
    params: Params, scheme: Scheme = "63", lang: Lang = None,
):
    state = _allowed(request, code, scheme, fmt, "download_worklist")
    lang = page_lang(request, lang)
    engine = portal_of(request).engine
    query = replace(params.query(), page=1)
    batches = worklist.stream(engine, state.run_id, scheme, code, query)
    name = f"popsync_{scheme}_{code}_{state.run_date}_worklist.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        return StreamingResponse(worklist_files.csv_chunks(batches, lang),
                                 media_type=MEDIA_TYPES[fmt], headers=disposition)
    return Response(worklist_files.xlsx_bytes(batches, lang), media_type=MEDIA_TYPES[fmt],
                    headers=disposition)


def _allowed(request: Request, code: str, scheme: str, fmt: str, action: str
             ) -> publication.RunState:
    """The publication shown, for an account that may see the province (401, 403 otherwise;
    404 for an unknown province or nothing published); granted or refused, audited."""
    province_or_404(code, scheme)
    user = current_user(request)  # identified by the router's dependency: read, not redone
    if user is None:
        raise unauthorized()
    state = run_state(request)
    allowed = security.may_access_province(user, scheme, code)
    audit_access(request, user, scheme, code, fmt, state.run_date, allowed, action)
    if not allowed:
        raise HTTPException(403, "this account may not download this province's lists")
    if state.run_date is None:
        raise HTTPException(404, "nothing has been published yet")
    return state


def _province_file(request: Request, code: str, scheme: str, fmt: str, action: str,
                   locate, name: str) -> FileResponse:
    """A province's file of the latest publication (``locate(data_dir, publication path, scheme,
    code, fmt)``) for an account that may see the province; every call audited as ``action``."""
    state = _allowed(request, code, scheme, fmt, action)
    portal = portal_of(request)
    try:
        path = locate(portal.settings.data_dir, state.path, scheme, code, fmt)
    except FileNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise HTTPException(404, "no list for this province in the latest publication")
    return FileResponse(path, media_type=FILE_TYPES[fmt],
                        filename=f"popsync_{scheme}_{code}_{state.run_date}_{name}.{fmt}")
