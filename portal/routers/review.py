"""The reviewers' queue: the rows a person must decide (``needs_review``, or a link a clerk
disputed), each beside its best candidate with the weight each field gave it, and the three
decisions the next night applies (popsync.decisions): same person, not this person, not in the
population database. Reviewers only, each within their province or the nation."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from popsync import decisions, worklist
from popsync.contracts import DECISIONS, NOT_IN_POPULATION
from portal import charts, i18n, review, security
from portal.dependencies import CurrentUser, form_csrf, identify
from portal.routers.worklist import VssCode, compared, explained
from portal.web import Lang, page_lang, portal_of, render, run_state, url

router = APIRouter(dependencies=[Depends(identify)], include_in_schema=False)
FIELDS = ("name", "birth_date", "gender", "national_id", "province")


def _reviewer(user, path: str) -> RedirectResponse | None:
    if user is None:
        return RedirectResponse(url("/login", next=path), status_code=303)
    if not user.is_reviewer:
        raise HTTPException(403, "only reviewers may read the review queue")
    return None


def _scope(user) -> review.Scope:
    return review.Scope(user.province_code, user.scheme)


def _queued_row(request: Request, user, vss_code: str) -> tuple[dict, int]:
    """The row of the publication shown, if the reviewer may review it; 404 otherwise (a row
    of another province is not told apart from no row)."""
    run_id = run_state(request).run_id
    found = worklist.row(portal_of(request).engine, run_id, vss_code) if run_id else None
    if found is None or not security.may_review(user, found["province_code"]):
        raise HTTPException(404, "no such row in your review queue")
    return found, run_id


@router.get("/review", response_class=HTMLResponse)
def queue_page(request: Request, user: CurrentUser,
               page: Annotated[int, Query(ge=1, le=100_000)] = 1, lang: Lang = None):
    if (login := _reviewer(user, "/review")) is not None:
        return login
    run_id = run_state(request).run_id
    shown, total = review.queue(portal_of(request).engine, run_id, _scope(user), page) \
        if run_id else ([], 0)
    return render(request, "review.html", page_lang(request, lang), state=run_state(request),
                  rows=shown, total=total, page=page, page_size=review.PAGE)


@router.get("/review/decisions", response_class=HTMLResponse)
def decisions_page(request: Request, user: CurrentUser,
                   page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                   standing: Annotated[bool, Query()] = False, lang: Lang = None):
    """The decisions of the reviewer's scope, newest first, each standing one revocable."""
    if (login := _reviewer(user, "/review/decisions")) is not None:
        return login
    shown, total = review.decision_log(portal_of(request).engine, _scope(user),
                                       standing_only=standing, page=page)
    return render(request, "review_decisions.html", page_lang(request, lang),
                  state=run_state(request), decisions=shown, total=total, page=page,
                  page_size=review.PAGE, standing=standing)


@router.post("/review/decisions/{decision_id}/revoke", dependencies=[Depends(form_csrf)])
def revoke(
    request: Request, decision_id: int, user: CurrentUser,
    note: Annotated[str, Form(max_length=worklist.MAX_NOTE)] = "",
    back: Annotated[Literal["log", "row"], Form()] = "log",
):
    """Revoke a standing decision of the reviewer's scope: the next night no longer applies
    it, and the row's history keeps who revoked it, when and why."""
    if (login := _reviewer(user, "/review/decisions")) is not None:
        return login
    engine = portal_of(request).engine
    found = review.decision_in_scope(engine, decision_id, _scope(user))
    if found is None:
        raise HTTPException(404, "no such decision in your scope")
    try:
        decisions.revoke(engine, decision_id, user.username, note.strip() or None)
    except decisions.DecisionError as error:
        raise HTTPException(409, str(error)) from error
    target = f"/review/{found['vss_code']}" if back == "row" else "/review/decisions"
    return RedirectResponse(target, status_code=303)


@router.get("/review/{vss_code}", response_class=HTMLResponse)
def item_page(request: Request, vss_code: VssCode, user: CurrentUser, lang: Lang = None):
    if (login := _reviewer(user, f"/review/{vss_code}")) is not None:
        return login
    lang = page_lang(request, lang)
    found, _ = _queued_row(request, user, vss_code)
    label = i18n.LABELS
    pick = 0 if lang == "vi" else 1
    labels = {"prior": label["review_prior"][pick],
              **{f: label[f"review_field_{f}"][pick] for f in FIELDS}}
    def chart(explanation) -> str | None:
        steps = review.waterfall_steps(explanation, labels)
        return charts.waterfall(steps, label["review_waterfall"][pick],
                                label["review_total"][pick]) if steps else None

    candidates = [{**c, "chart": chart(c["explanation"])}
                  for c in review.candidates(found)[1:]]  # the first is the best, above
    return render(request, "review_item.html", lang, state=run_state(request), row=found,
                  compared=compared(found), explained=explained(found, lang),
                  chart=chart(found.get("explanation")), candidates=candidates,
                  decisions=review.standing_decisions(portal_of(request).engine, vss_code),
                  choices=DECISIONS)


@router.post("/review/{vss_code}", dependencies=[Depends(form_csrf)])
def decide(
    request: Request, vss_code: VssCode, user: CurrentUser,
    decision: Annotated[Literal[DECISIONS], Form()],  # type: ignore[valid-type]
    note: Annotated[str, Form(max_length=worklist.MAX_NOTE)] = "",
    personal_id: Annotated[str | None, Form(pattern=r"^\d{12}$")] = None,
):
    """A decision on the row's best candidate, or on another of its candidates
    (``personal_id``)."""
    if (login := _reviewer(user, f"/review/{vss_code}")) is not None:
        return login
    found, run_id = _queued_row(request, user, vss_code)
    person = found["personal_id"]
    if personal_id is not None and personal_id != person:
        if personal_id not in {c["personal_id"] for c in review.candidates(found)}:
            raise HTTPException(409, "that person is not one of this row's candidates")
        person = personal_id
    if person is None and decision != NOT_IN_POPULATION:
        raise HTTPException(409, "this row has no candidate to confirm or reject")
    engine = portal_of(request).engine
    decisions.record(engine, vss_code, person, decision, user.username, note.strip() or None,
                     province_code=found["province_code"], unit_34=found["unit_34"])
    following = review.next_in_queue(engine, run_id, _scope(user), vss_code)
    return RedirectResponse(f"/review/{following}" if following else "/review", status_code=303)
