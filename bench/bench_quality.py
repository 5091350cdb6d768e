"""Quality of a published night against the generator's truth, at any size: precision, recall,
rows sent to review, recall per injected error kind, and the calibration of the published
probabilities (reliability per decile). DuckDB joins the two Parquet files under a memory
limit, so a national night's 95 M results are scored in bounded memory.

    .venv/bin/python bench/bench_quality.py --results OUT/publications/DATE/results.parquet \
        --truth NATION/truth.parquet [--json FILE]

A row counts as linked when its status is synchronized or needs_correction; a link is right
when its personal ID is the truth's. Recall is over the registry rows whose person is in the
population (truth personal ID not null). Calibration takes every row that carries a candidate
and a probability (links and rows in review alike): among those published with probability in
a decile (the top one split at 0.99 and 0.999, where most links are), the share whose
candidate is the true person; links at probability 1 are a row of their own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb

LINKED = ("synchronized", "needs_correction")
NEEDS_REVIEW = "needs_review"


def _connect(memory: str, scratch: Path | None) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(f"SET memory_limit = '{memory}'")
    connection.execute("SET preserve_insertion_order = false")
    if scratch is not None:
        connection.execute(f"SET temp_directory = '{scratch}'")
    return connection


def evaluate(results: Path, truth: Path, memory: str = "2GB",
             scratch: Path | None = None) -> dict:
    """The night's figures against the truth (see the module's docstring)."""
    sql = _connect(memory, scratch)
    linked = ", ".join(f"'{s}'" for s in LINKED)
    sql.execute(f"""
        CREATE TEMP TABLE scored AS
        SELECT r.status IN ({linked}) AS linked,
               r.status = '{NEEDS_REVIEW}' AS review,
               r.personal_id IS NOT NULL AND r.personal_id = t.personal_id AS right_person,
               t.personal_id IS NOT NULL AS present,
               r.personal_id IS NOT NULL AS candidate,
               r.match_probability AS probability,
               coalesce(t.error_tags, '') AS tags,
               -- the night's own view: a row not linked is the missed link of one of its
               -- candidates with their probabilities' sum (its best's when it lists none)
               least(coalesce(list_sum(CAST(json_extract(r.candidates, '$[*].probability')
                                            AS DOUBLE[])), r.match_probability, 0), 1)
                   AS present_probability,
               r.candidates IS NOT NULL AND t.personal_id IS NOT NULL
                   AND contains(r.candidates, '"personal_id":"' || t.personal_id || '"')
                   AS person_listed
        FROM read_parquet('{results}') r LEFT JOIN read_parquet('{truth}') t USING (vss_code)
    """)
    rows, links, right, present, review = sql.execute("""
        SELECT count(*), count_if(linked), count_if(linked AND right_person), count_if(present),
               count_if(review) FROM scored""").fetchone()
    expected_false, expected_missed = sql.execute("""
        SELECT sum(CASE WHEN linked THEN 1 - coalesce(probability, 0) ELSE 0 END),
               sum(CASE WHEN linked THEN 0 ELSE present_probability END) FROM scored""").fetchone()
    review_present, review_listed = sql.execute("""
        SELECT count_if(review AND present), count_if(review AND present AND person_listed)
        FROM scored""").fetchone()
    per_error = {
        tag: {"rows": int(n), "recall": float(found / n) if n else None}
        for tag, n, found in sql.execute("""
            SELECT tag, count_if(present), count_if(present AND linked AND right_person)
            FROM (SELECT unnest(string_split(tags, ',')) AS tag, present, linked, right_person
                  FROM scored WHERE tags <> '')
            WHERE tag <> '' GROUP BY tag ORDER BY tag""").fetchall()}
    calibration = [
        {"bin": label, "rows": int(n), "mean_probability": float(mean),
         "right": float(share), "linked": int(n_linked)}
        for label, n, mean, share, n_linked in sql.execute("""
            SELECT CASE WHEN probability >= 1 THEN '1 (exact)'
                        WHEN probability >= 0.999 THEN '0.999-1'
                        WHEN probability >= 0.99 THEN '0.99-0.999'
                        WHEN probability >= 0.9 THEN '0.9-0.99'
                        ELSE printf('%.1f-%.1f', floor(probability * 10) / 10,
                                    floor(probability * 10) / 10 + 0.1) END AS label,
                   count(*), avg(probability), avg(right_person::DOUBLE), count_if(linked)
            FROM scored WHERE candidate AND probability IS NOT NULL
            GROUP BY label ORDER BY label""").fetchall()]
    return {
        "rows": int(rows), "links": int(links), "true_links": int(right),
        "false_links": int(links - right), "missed": int(present - right),
        "precision": right / links if links else 1.0,
        "recall": right / present if present else 1.0,
        "needs_review": int(review), "needs_review_share": review / rows if rows else 0.0,
        "per_error": per_error, "calibration": calibration,
        # fastLink-style estimates from the probabilities against the truth's rates
        "false_link_rate": {"true": (links - right) / links if links else None,
                            "estimated": expected_false / links if links else None},
        "missed_link_rate": {
            "true": (present - right) / present if present else None,
            "estimated": (expected_missed / (links - expected_false + expected_missed)
                          if links or expected_missed else None)},
        # rows in review whose person is in the population: how many list that person
        "review_person_listed": {"rows": int(review_present), "listed": int(review_listed),
                                 "share": review_listed / review_present
                                 if review_present else None},
    }


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.6f}"


def report(figures: dict) -> str:
    lines = [
        f"precision {figures['precision']:.6f} ({figures['false_links']:,} false links), "
        f"recall {figures['recall']:.6f} ({figures['missed']:,} missed), needs_review "
        f"{figures['needs_review']:,} ({figures['needs_review_share']:.3%}) of "
        f"{figures['rows']:,} rows",
        f"false-link rate: true {_rate(figures['false_link_rate']['true'])}, estimated "
        f"{_rate(figures['false_link_rate']['estimated'])}; missed-link rate: true "
        f"{_rate(figures['missed_link_rate']['true'])}, estimated "
        f"{_rate(figures['missed_link_rate']['estimated'])}",
        f"rows in review whose person is in the population: "
        f"{figures['review_person_listed']['rows']:,}, that person among the candidates "
        f"shown: {figures['review_person_listed']['listed']:,} "
        f"({_rate(figures['review_person_listed']['share'])})",
        "", "| error kind | rows (in the population) | recall |", "|---|---|---|",
    ]
    lines += [f"| {tag} | {v['rows']:,} | {v['recall']:.4f} |" if v["recall"] is not None
              else f"| {tag} | 0 | – |" for tag, v in figures["per_error"].items()]
    lines += ["", "| published probability | rows | mean probability | candidate right | "
              "of them linked |", "|---|---|---|---|---|"]
    lines += [f"| {c['bin']} | {c['rows']:,} | {c['mean_probability']:.4f} | {c['right']:.4f} "
              f"| {c['linked']:,} |" for c in figures["calibration"]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True, help="a night's results.parquet")
    parser.add_argument("--truth", type=Path, required=True, help="the nation's truth.parquet")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--memory", default="2GB", help="DuckDB memory limit (default 2GB)")
    args = parser.parse_args()
    for path in (args.results, args.truth):
        if not path.is_file():
            print(f"bench_quality: {path}: no such file", file=sys.stderr)
            return 2
    figures = evaluate(args.results, args.truth, args.memory, args.results.parent)
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
