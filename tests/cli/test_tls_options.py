"""The TLS options on the command line: keys that work, keys that cannot, and what the user is told."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_cli import json_lines, run_smtptop
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import run_tshark

STARTTLS = PUBLIC_CAPTURES / "starttls-keylog-port25.pcapng"
STARTTLS_KEYS = PUBLIC_CAPTURES / "starttls-keylog-port25.keys"
RSA_CAPTURE = PUBLIC_CAPTURES / "tls12-rsa-pcapfs.pcap"
RSA_KEY = PUBLIC_CAPTURES / "tls12-rsa-pcapfs.key"
USAGE_ERROR = 2


def test_keylog_decrypts_in_json() -> None:
    inside = run_tshark(
        STARTTLS, "-o", f"tls.keylog_file:{STARTTLS_KEYS}", "-Y", "tls and smtp.req", "-T", "fields",
        "-e", "smtp.req.command",
    ).split()  # fmt: skip
    result = run_smtptop("-r", str(STARTTLS), "--keylog", str(STARTTLS_KEYS), "--json")

    assert result.returncode == 0
    (record,) = json_lines(result)
    decrypted = [command["verb"] for command in record["commands"] if command["decrypted"]]  # type: ignore[index]
    assert decrypted == inside
    assert record["tls"]["decrypted"] is True  # type: ignore[index]


def test_report_shows_version_and_decryption() -> None:
    result = run_smtptop("-r", str(STARTTLS), "--keylog", str(STARTTLS_KEYS), "--report")

    assert result.returncode == 0
    assert "starttls 1.2 dec" in result.stdout.decode()


def test_keylog_from_environment_is_named_when_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.keys"
    environment = dict(os.environ, SSLKEYLOGFILE=str(missing))
    result = subprocess.run(
        [sys.executable, "-m", "smtptop", "-r", str(STARTTLS), "--json"],
        env=environment, capture_output=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == USAGE_ERROR
    message = result.stderr.decode()
    assert f"SSLKEYLOGFILE={missing}" in message
    assert "Traceback" not in message


def test_keylog_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = run_smtptop("-r", str(STARTTLS), "--keylog", str(tmp_path), "--json")

    assert result.returncode == USAGE_ERROR
    assert "is a directory" in result.stderr.decode()


def test_rsa_keys_list_without_this_server(tmp_path: Path) -> None:
    listing = tmp_path / "rsa_keys.txt"
    listing.write_text(f"10.0.0.1,443,http,{RSA_KEY}\n")
    result = run_smtptop("-r", str(RSA_CAPTURE), "--port", "443", "--rsa-keys", str(listing), "--json")

    assert result.returncode == 0
    records = json_lines(result)
    assert records
    for record in records:
        error = record["tls"]["decrypt_error"]  # type: ignore[index]
        assert error is not None
        assert "no RSA key is listed for 127.0.0.1:443" in error


def test_garbage_rsa_key_is_a_usage_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"not a key\n")
    result = run_smtptop("-r", str(RSA_CAPTURE), "--rsa-key", str(garbage), "--json")

    assert result.returncode == USAGE_ERROR
    message = result.stderr.decode()
    assert str(garbage) in message
    assert "--rsa-keys" in message
    assert "Traceback" not in message
