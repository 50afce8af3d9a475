"""``python -m evovlm.train --job FILE``: run one training job (a JSON file written by the
``train_policy`` rule); ``accelerate launch --module evovlm.train --job FILE`` runs it on several
processes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evovlm.train", description=__doc__)
    parser.add_argument("--job", required=True, help="the job's JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    from evovlm.train.job import run_job

    run_job(json.loads(Path(args.job).read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
