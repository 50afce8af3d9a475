#!/usr/bin/env bash
# One command for a run: set up .venv if needed (scripts/bootstrap.sh; a no-op when up to date),
# then run Snakemake from it with your arguments, e.g.
#   scripts/run.sh                              # the embedded default (profiles/default: all cores)
#   scripts/run.sh --config rounds=5            # five rounds
#   scripts/run.sh -n                           # dry run: what would run
#   scripts/run.sh --profile profiles/slurm     # on a SLURM cluster
# Runs in the repository root, which holds the Snakefile, config/ and the results.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/snakemake "$@"
