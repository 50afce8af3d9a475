#!/usr/bin/env bash
# The test command of the README (and of CI): set up .venv if needed, then lint and test.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check src tests bench scripts workflow/scripts
ruff format --check src tests bench scripts workflow/scripts
snakefmt --check Snakefile workflow/rules/
snakemake --lint --cores 1 >/dev/null
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$rc"
