#!/usr/bin/env bash
# Set up the environment (scripts/setup.sh) and run the test suite.
# Extra arguments go to pytest, for example: scripts/test.sh -k tshark -x
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

scripts/setup.sh

echo "test: .venv/bin/python -m pytest -q -ra -p no:cacheprovider $*"
status=0
.venv/bin/python -m pytest -q -ra -p no:cacheprovider "$@" || status=$?

if [ "$status" -eq 5 ]; then
    # pytest exits with 5 when it collected nothing, and a run that tested
    # nothing must not pass.
    echo "test: FAILED: pytest collected no tests (check the arguments and tests/)" >&2
    exit 1
fi
exit "$status"
