#!/usr/bin/env bash
# Prepare a Debian machine for developing and testing smtptop.
#
# Installs the system packages the tests drive (tshark, tcpdump, swaks,
# Postfix's smtp-sink/smtp-source, openssl), the libpcap headers that pypcap
# builds against, then a virtual environment in .venv with smtptop installed
# in editable mode with its test extras. Safe to run again: apt is skipped
# when every package is installed, and pip is skipped while pyproject.toml is
# unchanged since the last successful install.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

apt_packages=(
    libpcap-dev   # headers and libpcap.so for building pypcap
    tshark        # the independent oracle in tests
    tcpdump       # records the demo capture
    swaks         # SMTP client in tests and the demo
    postfix       # smtp-sink and smtp-source
    openssl
    iproute2      # ip netns for the demo recording and the loss tests
    nftables      # packet loss inside the loss tests' own namespace
    python3-venv
)

current_step=""
step() {
    current_step="$1"
    echo "setup: $current_step"
}
trap 'status=$?; if [ "$status" -ne 0 ]; then echo "setup: FAILED at step: $current_step (exit status $status)" >&2; fi' EXIT

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "setup: this step needs root and sudo is not installed; run as root: $*" >&2
        return 1
    fi
}

missing_packages() {
    local package status
    for package in "${apt_packages[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)"
        if [ "$status" != "installed" ]; then
            echo "$package"
        fi
    done
}

step "check system packages"
mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup: all system packages already installed, skipping apt"
else
    step "preseed debconf so postfix and wireshark install without questions"
    # "No configuration" installs the Postfix binaries (smtp-sink, smtp-source)
    # without writing main.cf, so no MTA starts and port 25 stays free.
    as_root debconf-set-selections <<'SEL'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string localhost
wireshark-common wireshark-common/install-setuid boolean false
SEL
    step "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    step "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
fi

step "check python3 on PATH"
python_bin="$(command -v python3 || true)"
if [ -z "$python_bin" ]; then
    echo "setup: python3 not found on PATH; install Python 3.11 or newer" >&2
    exit 1
fi
"$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "setup: $python_bin is $("$python_bin" --version 2>&1); smtptop needs Python 3.11 or newer" >&2
    exit 1
}

if [ ! -x .venv/bin/python ]; then
    step "create .venv with $python_bin ($("$python_bin" --version 2>&1))"
    "$python_bin" -m venv .venv
else
    echo "setup: .venv exists, keeping it"
fi

# The stamp records the pyproject.toml that the venv was last installed from;
# an editable install picks up source changes without reinstalling.
stamp_file=.venv/.smtptop-installed-from
wanted_stamp="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$wanted_stamp" ] \
    && .venv/bin/python -c 'import smtptop, pcap, aiosmtpd' 2>/dev/null; then
    echo "setup: .venv is up to date with pyproject.toml, skipping pip"
else
    step "pip install -e '.[test]' into .venv"
    rm -f "$stamp_file"
    .venv/bin/python -m pip install --disable-pip-version-check -q -e '.[test]'
    step "check that pypcap imports"
    .venv/bin/python -c 'import pcap'
    echo "$wanted_stamp" > "$stamp_file"
fi

current_step=""
echo "setup: done"
