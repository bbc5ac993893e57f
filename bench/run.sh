#!/bin/sh
# Run the smtptop benchmark with the repository's virtualenv; see docs/PERFORMANCE.md.
# Live capture needs root, so run it as root or with sudo. Options: --quick, --messages N, --repeats N.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    echo "bench: .venv is missing; run ./scripts/setup.sh first" >&2
    exit 2
fi
if [ ! -x .venv/bin/py-spy ]; then
    # The profile step needs py-spy in the same virtualenv; the other steps run without it.
    .venv/bin/pip install --quiet py-spy || echo "bench: installing py-spy failed; the profile step is skipped" >&2
fi
exec .venv/bin/python -m bench.run "$@"
