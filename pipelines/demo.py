"""``popsync demo``: generate a synthetic nation, run two nights, create demo accounts and serve
the portal — the README's first command. Rerunning reuses the nation and replaces the nights."""

from __future__ import annotations

import argparse
import json
import secrets
import string
from datetime import date, timedelta
from pathlib import Path

from popsync.errors import PopsyncError

LEADERSHIP_USER = "lanhdao"
OFFICE_USER = "hcm79"
OFFICE_PROVINCE = ("79", "63")  # TP Hồ Chí Minh in the 63 scheme
# Share of the fixable registry errors that offices correct between the two nights, so that the
# second night shows a change and the trend moves.
CORRECTED_SHARE = 0.4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--people", type=int, default=20000,
                        help="people in the synthetic population (default 20000)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    parser.add_argument("--out", type=Path, default=Path("./demo-data"),
                        help="demo folder (default ./demo-data)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-serve", action="store_true",
                        help="prepare everything but do not start the portal")


def check_port_free(host: str, port: int) -> None:
    """PopsyncError when ``host:port`` cannot be served on (another demo or program has it)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PopsyncError(
                f"cannot serve the portal on {host}:{port} ({exc.strerror}): another program, "
                f"perhaps an earlier demo, uses it; stop it or choose another port, e.g. "
                f"`make demo PORT={port + 1}` or `popsync demo --port {port + 1}`"
            ) from None


def popsync_command() -> str:
    """``popsync`` when that is this installation on the PATH, else its full path."""
    import shutil
    import sys

    here = Path(sys.executable).parent / "popsync"
    found = shutil.which("popsync")
    if found and here.exists() and Path(found).resolve() == here.resolve():
        return "popsync"
    return str(here) if here.exists() else f"{sys.executable} -m pipelines.cli"


def _popsync(argv: list[str]) -> None:
    from pipelines.cli import main

    code = main(argv)
    if code != 0:
        raise PopsyncError(f"`popsync {' '.join(argv)}` failed with exit code {code}")


def _nation(folder: Path, people: int, seed: int) -> None:
    """Generate the nation unless this folder already holds the one asked for."""
    marker = folder / "demo.json"
    wanted = {"people": people, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == wanted and all(
        (folder / f"{name}.parquet").is_file() for name in ("registry", "population", "truth")
    ):
        print(f"demo: reusing the synthetic nation in {folder}")
        return
    _popsync(["generate", "--people", str(people), "--seed", str(seed), "--out", str(folder),
              "--force"])
    marker.write_text(json.dumps(wanted))


def corrected_registry(nation: Path, target: Path, seed: int) -> int:
    """The registry after offices fixed part of their lists: for a share of the participants
    whose records carry an error and who exist in the population data, take the population's
    ID, name, birth date and gender. Returns how many records were corrected."""
    import pandas as pd

    registry = pd.read_parquet(nation / "registry.parquet")
    truth = pd.read_parquet(nation / "truth.parquet")
    population = pd.read_parquet(nation / "population.parquet")
    tags = truth["error_tags"].fillna("")
    # Duplicates and deaths are not fixed by editing a record's fields.
    fixable = truth[(tags != "") & truth["personal_id"].notna()
                    & ~tags.str.contains("duplicate|deceased", regex=True)]
    chosen = fixable.sample(frac=CORRECTED_SHARE, random_state=seed)
    people = population.set_index("personal_id")
    fixes = chosen.join(people[["full_name", "birth_date", "gender"]], on="personal_id")
    fixes = fixes.dropna(subset=["full_name"]).set_index("vss_code")
    index = registry.set_index("vss_code").index
    rows = index.isin(fixes.index)
    corrected = registry.copy()
    source = fixes.reindex(index[rows])
    corrected.loc[rows, "national_id"] = source["personal_id"].to_numpy()
    for column in ("full_name", "birth_date", "gender"):
        corrected.loc[rows, column] = source[column].to_numpy()
    target.mkdir(parents=True, exist_ok=True)
    corrected.to_parquet(target / "registry.parquet", index=False)
    return int(rows.sum())


def main(args: argparse.Namespace) -> int:
    from popsync import store
    from portal import security

    if args.people < 100:
        raise PopsyncError("--people must be at least 100 for a meaningful demo")
    if not args.no_serve:  # before any work, and before the demo passwords are replaced
        check_port_free(args.host, args.port)
    out: Path = args.out
    nation, night2, data = out / "nation", out / "night2", out / "published"
    out.mkdir(parents=True, exist_ok=True)
    _nation(nation, args.people, args.seed)
    fixed = corrected_registry(nation, night2, args.seed)
    today = date.today()
    nights = [
        (today - timedelta(days=1), nation / "registry.parquet"),
        (today, night2 / "registry.parquet"),
    ]
    for run_date, registry in nights:
        print(f"demo: night of {run_date.isoformat()} ({registry})", flush=True)
        _popsync(["run", "--registry", str(registry), "--population",
                  str(nation / "population.parquet"), "--out", str(data),
                  "--run-date", run_date.isoformat()])
    print(f"demo: {fixed} records were corrected by offices between the two nights")

    engine = store.engine_for(store.default_db_url(data))
    # Letters and digits only, so the password copies cleanly from a terminal.
    password = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    security.save_user(engine, LEADERSHIP_USER, password, "leadership", replace=True)
    security.save_user(engine, OFFICE_USER, password, "office", *OFFICE_PROVINCE, replace=True)
    url = f"http://{args.host}:{args.port}/"
    print()
    print(f"  portal:      {url}")
    print(f"  leadership:  {LEADERSHIP_USER} / {password}")
    print(f"  office 79:   {OFFICE_USER} / {password}   (TP Hồ Chí Minh, 63-province scheme)")
    print(f"  serve again: {popsync_command()} serve --data {data} --port {args.port}")
    print(flush=True)
    if args.no_serve:
        return 0
    _popsync(["serve", "--data", str(data), "--host", args.host, "--port", str(args.port)])
    return 0
