"""The night's validation report: one self-contained HTML page (no CDN, opens offline) built from
the suites' outcomes, linked from the publication folder."""

from __future__ import annotations

import html
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:2em;width:100%}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}
th{background:#eef3fa}.ok{color:#17692b}.fail{color:#b00020;font-weight:bold}
.row{color:#9a6700;font-weight:bold}code{font-size:13px}
"""


def _status(finding: dict[str, Any]) -> str:
    if finding["success"]:
        return '<span class="ok">passed</span>'
    if finding["severity"] == "row":
        return '<span class="row">rows quarantined</span>'
    return '<span class="fail">FAILED</span>'


def render(run: dict[str, Any], suites: list[dict[str, Any]]) -> str:
    """``run``: run_date, run_id, verdict...; ``suites``: SuiteOutcome.as_dict() of each suite."""
    esc = html.escape
    parts = [
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'>",
        f"<title>popsync validation {esc(str(run.get('run_date', '')))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Validation report, run date {esc(str(run.get('run_date', '')))}</h1>",
        "<p>" + " · ".join(f"{esc(str(k))}: <b>{esc(str(v))}</b>" for k, v in run.items()) + "</p>",
    ]
    for suite in suites:
        verdict = "passed" if suite["success"] else "FAILED"
        parts.append(
            f"<h2>{esc(suite['suite'])}: {verdict}</h2><p>{suite['rows']:,} rows checked "
            f"in {suite['seconds']} s</p>"
        )
        parts.append(
            "<table><tr><th>expectation</th><th>column</th><th>severity</th><th>reason</th>"
            "<th>result</th><th>unexpected</th><th>observed</th><th>expected</th>"
            "<th>samples (masked)</th></tr>"
        )
        for f in suite["findings"]:
            percent = f["unexpected_percent"]
            unexpected = f"{f['unexpected_count']:,}" + (
                f" ({percent:.3f} %)" if isinstance(percent, (int, float)) and percent else ""
            )
            parts.append(
                f"<tr><td><code>{esc(f['expectation'])}</code></td>"
                f"<td>{esc(str(f['column'] or ''))}</td><td>{esc(f['severity'])}</td>"
                f"<td>{esc(f['reason'])}</td><td>{_status(f)}</td><td>{unexpected}</td>"
                f"<td>{esc(str(f['observed'] if f['observed'] is not None else ''))}</td>"
                f"<td>{esc(f.get('expected', ''))}</td>"
                f"<td>{esc(', '.join(f['samples']))}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
