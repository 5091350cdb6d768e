"""What the leadership view shows, assembled from the publication database: the national
headline, the ranking with each province's trend and count to fix, the tile map, the breakdowns
and the coverage; and the same figures as one xlsx workbook."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import openpyxl
import sqlalchemy as sa
from openpyxl.styles import Font, PatternFill

from popsync.contracts import LINES
from popsync.reference.provinces import tile_positions, to_34
from portal import charts, i18n, publication, security
from portal.security import User

MAP_OF = ("sync", "coverage")


@dataclass(frozen=True)
class Viewer:
    """All the view shows of the person asking: the provinces they may open, whether the bars
    mark those (an office's, not leadership's) and their own province to outline. Nothing else
    of the user reaches ``for_viewer``."""

    may_open: frozenset[str] = frozenset()
    marks_open: bool = False
    own: str | None = None


def viewer_of(user: User | None, scheme: str) -> Viewer:
    if user is None:
        return Viewer()
    return Viewer(
        frozenset(code for code in publication.provinces_of(scheme)
                  if security.may_access_province(user, scheme, code)),
        not user.is_leadership, _own_code(user, scheme))


def _own_code(user: User, scheme: str) -> str | None:
    """An office's own province in ``scheme`` (its unit in the 34 scheme); None for leadership,
    or an office of the 34 scheme looking at the 63 (its unit is several provinces)."""
    if user.is_leadership or user.province_code is None:
        return None
    if user.scheme == scheme:
        return user.province_code
    return to_34(user.province_code) if scheme == "34" else None


@dataclass(frozen=True)
class Figures:
    """One request's choice: publication, scheme, line, what the map shows, and who asks (as
    a ``Viewer``, read by ``for_viewer`` only); hashable, so it keys what the portal keeps per
    run state."""

    run_date: str | None
    scheme: str
    line: str
    map_of: str
    viewer: Viewer
    lang: str
    target: float
    trend_runs: int


def _rate(lang: str) -> Callable[[float], str]:
    return lambda value: i18n.format_rate(value, lang, 1)


def ranking_rows(engine: sa.Engine, f: Figures) -> tuple[list[dict], dict]:
    """The ranking's rows (rank out of the scheme's provinces, count to fix, trend) and every
    province's trend, from two queries."""
    result = publication.ranking(engine, f.run_date, f.scheme, f.line)
    trends = publication.province_trends(engine, f.run_date, f.scheme, f.line, f.trend_runs)
    out_of = len(publication.provinces_of(f.scheme))
    for row in result.provinces:
        row["rank_of"] = out_of
        row["to_fix"] = row["participants"] - row["synchronized"]
        row["trend"] = trends.get(row["code"], [])
    return result.provinces, trends


def page(engine: sa.Engine, f: Figures) -> dict:
    """The ranking page's figures and charts that are the same for everyone (``f.viewer`` is
    not read): the portal keeps them once per run state; ``for_viewer`` adds the rest."""
    rows, trends = ranking_rows(engine, f)
    rate = _rate(f.lang)
    label = lambda key: i18n.label(key, f.lang)  # noqa: E731
    national = publication.national_trend(engine, f.run_date, f.scheme, f.line,
                                          f.trend_runs + 1)
    head = publication.headline(national, f.run_date)
    shown = national[-f.trend_runs:]
    trend_chart = charts.line_chart(
        [(p["run_date"], p["sync_rate"]) for p in shown if p["sync_rate"] is not None],
        label("national_trend"), rate, height=150)
    every_rate = [r for points in trends.values() for _, r in points if r is not None]
    low = min(every_rate, default=0.0)
    high = max(every_rate, default=1.0)
    for row in rows:
        first = row["trend"][0][1] if row["trend"] else None
        row["sparkline"] = charts.sparkline(
            row["trend"], low, high,
            f"{row['name']}: " + " → ".join(rate(v) for v in (first, row["sync_rate"])
                                            if v is not None))
    coverage_line = f.line
    coverage_rows = publication.coverage(engine, f.run_date, f.scheme, coverage_line)
    for row in coverage_rows:
        row["rank_of"] = len(publication.provinces_of(f.scheme))
    if f.map_of == "coverage":
        values = {r["code"]: r["coverage_rate"] for r in coverage_rows}
        map_title = f"{label('coverage_rate')} ({label('line_' + coverage_line)})"
    else:
        values = {r["code"]: r["sync_rate"] for r in rows}
        map_title = f"{label('sync_rate')} ({label('line_' + f.line)})"
    return {
        "rows": rows,
        "headline": head,
        "target": f.target,
        "trend_chart": trend_chart,
        "map_values": values,
        "map_title": map_title,
        "map_empty": not values,
        "breakdowns": publication.breakdowns(engine, f.run_date, f.scheme, f.line),
        "coverage": coverage_rows,
        "coverage_total": _coverage_total(coverage_rows),
    }


def for_viewer(shown: dict, f: Figures) -> dict:
    """``page``'s figures as ``f.viewer`` sees them: the provinces they may open linked, an
    office's marked in the bars and its own outlined on the map and in the headline. New rows
    and charts: ``shown`` is shared by every viewer and stays as it is."""
    rate = _rate(f.lang)
    label = lambda key: i18n.label(key, f.lang)  # noqa: E731
    may_open = f.viewer.may_open
    rows = [dict(row, allowed=row["code"] in may_open) for row in shown["rows"]]
    coverage_rows = [dict(row, allowed=row["code"] in may_open) for row in shown["coverage"]]
    bars = charts.bar_chart(
        [(f"{p['code']} {p['name']}", p["sync_rate"], p["allowed"] and f.viewer.marks_open)
         for p in sorted(rows, key=lambda r: r["rank"])],
        label("province_bars"), rate, target=f.target,
        target_label=f"{label('target')}: {rate(f.target)}")
    names = {code: p.name for code, p in publication.provinces_of(f.scheme).items()}
    links = {r["code"]: f"/provinces/{r['code']}?scheme={f.scheme}" for r in rows if r["allowed"]}
    mine = next((row for row in rows if row["code"] == f.viewer.own), None)
    tile_map = charts.tile_map(tile_positions(f.scheme), shown["map_values"], names,
                               shown["map_title"], rate, links,
                               size=22 if f.scheme == "63" else 28,
                               highlighted=mine["code"] if mine else None)
    return dict(shown, rows=rows, coverage=coverage_rows, mine=mine, bar_chart=bars,
                tile_map=tile_map)


def _coverage_total(rows: list[dict]) -> dict | None:
    residents = sum(r["residents"] for r in rows)
    if not residents:
        return None
    covered = sum(r["covered"] for r in rows)
    return {"residents": residents, "covered": covered, "uncovered": residents - covered,
            "coverage_rate": covered / residents}


def api(engine: sa.Engine, f: Figures) -> dict:
    """The ranking API's leadership figures: headline, target, each province's rank out of the
    scheme, count to fix and trend."""
    rows, _ = ranking_rows(engine, f)
    national = publication.national_trend(engine, f.run_date, f.scheme, f.line,
                                          f.trend_runs + 1)
    for row in rows:
        row["trend"] = [{"run_date": d, "sync_rate": r} for d, r in row["trend"]]
    return {
        "headline": publication.headline(national, f.run_date),
        "target": f.target,
        "national_trend": national[-f.trend_runs:],
        "provinces": rows,
    }


def workbook(engine: sa.Engine, f: Figures) -> bytes:
    """The ranking, the breakdowns (nation and each province) and the coverage of every line, one
    sheet each, with Vietnamese or English headers as the page."""
    label = lambda key: i18n.label(key, f.lang)  # noqa: E731
    book = openpyxl.Workbook()
    book.remove(book.active)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")

    def sheet(title: str, keys: list[str], rows: list[list]) -> None:
        headers = [label(key) for key in keys]
        ws = book.create_sheet(label(title))
        ws.append(headers)
        for cell in ws[1]:
            cell.font, cell.fill = bold, fill
        for row in rows:
            ws.append(row)
        for column, header in zip(ws.columns, headers, strict=True):
            width = max([len(str(header))] + [len(str(c.value or "")) for c in column[1:200]])
            ws.column_dimensions[column[0].column_letter].width = min(width + 2, 40)
        ws.freeze_panes = "A2"

    ranking = []
    for line in LINES:
        result = publication.ranking(engine, f.run_date, f.scheme, line)
        out_of = len(publication.provinces_of(f.scheme))
        ranking += [[f.run_date, label("line_" + line), p["rank"], out_of, p["code"], p["name"],
                     p["participants"], p["synchronized"], p["participants"] - p["synchronized"],
                     p["sync_rate"], p["change"]] for p in result.provinces]
    sheet("sheet_ranking", ["run_date", "line", "rank", "out_of", "code", "province",
                            "participants", "synchronized", "to_fix", "sync_rate", "change"],
          ranking)
    groups = []
    every = publication.breakdowns(engine, f.run_date, f.scheme, None, by_province=True)
    codes = [None, *publication.provinces_of(f.scheme)]
    for line in LINES:
        for code in codes:
            for dimension, values in every.get(line, {}).get(code, {}).items():
                groups += [[f.run_date, label("line_" + line), code or label("nation"),
                            label("dim_" + dimension), label_of(v["value"], f.lang),
                            v["participants"], v["synchronized"],
                            v["participants"] - v["synchronized"], v["sync_rate"]]
                           for v in values]
    sheet("sheet_breakdowns", ["run_date", "line", "code", "dimension", "group", "participants",
                               "synchronized", "to_fix", "sync_rate"], groups)
    cover = []
    for line in LINES:
        out_of = len(publication.provinces_of(f.scheme))
        cover += [[f.run_date, label("line_" + line), r["rank"], out_of, r["code"], r["name"],
                   r["residents"], r["covered"], r["uncovered"], r["coverage_rate"]]
                  for r in publication.coverage(engine, f.run_date, f.scheme, line)]
    sheet("sheet_coverage", ["run_date", "line", "rank", "out_of", "code", "province",
                             "residents", "covered", "uncovered", "coverage_rate"], cover)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def label_of(value: str, lang: str) -> str:
    """A breakdown group's label (age band, gender or unknown)."""
    return i18n.label(f"group_{value}", lang)
