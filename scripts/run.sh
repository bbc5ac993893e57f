#!/usr/bin/env bash
# Set up the environment (scripts/setup.sh) and run smtptop with the given arguments.
# With no arguments it captures live on all interfaces (-i any), which needs root
# or CAP_NET_RAW; without them smtptop prints what to do, and --demo needs neither:
#   scripts/run.sh            live capture of SMTP on ports 25, 465, 587 and 2525
#   scripts/run.sh --demo     replay the bundled demo capture
#   scripts/run.sh -r FILE    read a pcap or pcapng file
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo_root/scripts/setup.sh" >&2

smtptop="$repo_root/.venv/bin/smtptop"
wants_live=true
for argument in "$@"; do
    case "$argument" in
        -r|--demo|-h|--help|--version) wants_live=false ;;
    esac
done

# Live capture needs privileges; elevate only when sudo can provide them.
if "$wants_live" && [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    exec sudo "$smtptop" "$@"
fi
exec "$smtptop" "$@"
