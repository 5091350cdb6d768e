"""``popsync generate``: write a synthetic nation (population, registry, truth) as Parquet."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from popsync.synthetic.nation import check_request, generate_chunks, write_chunks
from popsync.synthetic.profiles import ERROR_PROFILES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--people", type=int, required=True, metavar="N",
                        help="number of people in the population")
    parser.add_argument("--seed", type=int, required=True, metavar="S",
                        help="random seed: the same seed gives the same bytes")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder for population/registry/truth.parquet")
    parser.add_argument("--profile", default="default", metavar="NAME",
                        help="error profile: " + ", ".join(ERROR_PROFILES) + " (default: default)")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty output folder, replacing the three files")


def main(args: argparse.Namespace) -> int:
    check_request(args.people, args.seed, args.profile)
    # A progress bar on a terminal; nothing when output goes to a log or a pipe.
    with tqdm(total=args.people, unit="people", unit_scale=True, desc="generate",
              disable=not sys.stderr.isatty()) as progress:
        out = write_chunks(generate_chunks(args.people, args.seed, args.profile), args.out,
                           force=args.force, on_chunk=progress.update)
    print(f"wrote {out}/population.parquet, registry.parquet, truth.parquet "
          f"({args.people} people, seed {args.seed}, profile {args.profile})")
    return 0
