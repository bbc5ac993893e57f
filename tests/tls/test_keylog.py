"""NSS key log reading: the public key logs, a file that grows, shrinks or is replaced, and errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from smtptop.tls.keylog import KeyLog, KeyLogError
from tests.support import PUBLIC_CAPTURES
from tests.support.tshark import tshark_path
from tests.tls import tshark_tls

needs_tshark = pytest.mark.skipif(tshark_path() is None, reason="tshark is not installed")

RANDOM_A = bytes(range(32))
RANDOM_B = bytes(range(100, 132))
MASTER_A = bytes(range(1, 49))
MASTER_B = bytes(range(51, 99))
LINE_A = f"CLIENT_RANDOM {RANDOM_A.hex()} {MASTER_A.hex()}\n"
LINE_B = f"CLIENT_RANDOM {RANDOM_B.hex()} {MASTER_B.hex()}\n"


def read(path: Path) -> KeyLog:
    keylog = KeyLog(str(path))
    keylog.refresh()
    return keylog


@needs_tshark
def test_allciphers_last_line_without_newline() -> None:
    keys = PUBLIC_CAPTURES / "tls12-allciphers-pcapfs.keys"
    assert not keys.read_bytes().endswith(b"\n")
    hellos = tshark_tls.all_hellos(PUBLIC_CAPTURES / "tls12-allciphers-pcapfs.pcap")

    keylog = read(keys)

    assert len(hellos) == 31
    for stream, hello in hellos.items():
        assert keylog.master_secret(hello.client_random) is not None, stream
    assert keylog.bad_lines == 0


@needs_tshark
def test_tls13_labels_and_comment() -> None:
    keys = PUBLIC_CAPTURES / "tls12-tls13-scapy-nss.keys"
    hellos = tshark_tls.all_hellos(PUBLIC_CAPTURES / "tls12-tls13-scapy-nss.pcap")

    keylog = read(keys)
    tls13 = keylog.tls13_secrets(hellos[1].client_random)

    assert keylog.master_secret(hellos[0].client_random) is not None
    assert set(tls13) == {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    }
    # TLS_AES_256_GCM_SHA384: secrets are SHA-384 sized.
    assert all(len(secret) == 48 for secret in tls13.values())
    assert keylog.tls13_secrets(hellos[0].client_random) == {}
    assert keylog.bad_lines == 0


@needs_tshark
def test_many_unrelated_entries() -> None:
    hellos = tshark_tls.all_hellos(
        PUBLIC_CAPTURES / "tls13-chacha20-hotplace.pcapng", ["-d", "tcp.port==9000,tls"]
    )

    keylog = read(PUBLIC_CAPTURES / "tls13-chacha20-hotplace.keys")

    assert len(keylog.tls13_secrets(hellos[0].client_random)) >= 4
    assert keylog.bad_lines == 0


@needs_tshark
def test_rsa_premaster_line() -> None:
    hellos = tshark_tls.all_hellos(PUBLIC_CAPTURES / "tls12-rsa-pcapfs.pcap")

    keylog = read(PUBLIC_CAPTURES / "tls12-rsa-pcapfs.keys")

    premaster = keylog.premaster_for_encrypted(hellos[2].encrypted_premaster[:8])
    assert premaster is not None
    assert len(premaster) == 48
    assert keylog.master_secret(hellos[0].client_random) is not None
    assert keylog.premaster_for_encrypted(hellos[1].encrypted_premaster[:8]) is None


def test_rsa_session_id_line(tmp_path: Path) -> None:
    session_id = bytes(range(32))
    path = tmp_path / "keys"
    path.write_text(f"RSA Session-ID:{session_id.hex()} Master-Key:{MASTER_A.hex()}\n")

    keylog = read(path)

    assert keylog.session_master_secret(session_id) == MASTER_A
    assert keylog.session_master_secret(bytes(32)) is None


def test_partial_line_waits_for_completion(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(LINE_A[:60])
    keylog = KeyLog(str(path))

    assert keylog.refresh() is False
    assert keylog.master_secret(RANDOM_A) is None

    with path.open("a") as stream:
        stream.write(LINE_A[60:])

    assert keylog.refresh() is True
    assert keylog.master_secret(RANDOM_A) == MASTER_A
    assert keylog.bad_lines == 0


def test_appended_lines_only_are_read(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# written by a test\n" + LINE_A)
    keylog = read(path)

    assert keylog.refresh() is False
    with path.open("a") as stream:
        stream.write(LINE_B)

    assert keylog.refresh() is True
    assert keylog.master_secret(RANDOM_A) == MASTER_A
    assert keylog.master_secret(RANDOM_B) == MASTER_B


def test_unfinished_complete_line_then_newline(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(LINE_A.rstrip("\n"))
    keylog = read(path)

    assert keylog.master_secret(RANDOM_A) == MASTER_A
    with path.open("a") as stream:
        stream.write("\n" + LINE_B)

    assert keylog.refresh() is True
    assert keylog.master_secret(RANDOM_B) == MASTER_B
    assert keylog.bad_lines == 0


def test_garbage_partial_line_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(LINE_A + "CLIENT_RANDOM 00ff")
    keylog = read(path)

    assert keylog.bad_lines == 0
    keylog.refresh()
    keylog.refresh()

    assert keylog.bad_lines == 1


def test_truncated_file_read_again(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(LINE_A + LINE_B)
    keylog = read(path)

    path.write_text(f"CLIENT_RANDOM {bytes(32).hex()} {MASTER_B.hex()}\n")

    assert keylog.refresh() is True
    assert keylog.master_secret(bytes(32)) == MASTER_B
    # Secrets learned before the truncation stay usable.
    assert keylog.master_secret(RANDOM_A) == MASTER_A


def test_rewritten_larger_file_read_again(tmp_path: Path) -> None:
    # Truncated and rewritten in place (same inode) beyond the old size.
    path = tmp_path / "keys"
    path.write_text(LINE_A)
    keylog = read(path)

    path.write_text(LINE_B + "#" * 300 + "\n")

    assert keylog.refresh() is True
    assert keylog.master_secret(RANDOM_B) == MASTER_B
    assert keylog.bad_lines == 0


def test_replaced_file_read_again(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(LINE_A)
    keylog = read(path)

    replacement = tmp_path / "keys.new"
    replacement.write_text(LINE_B + LINE_A)
    os.replace(replacement, path)

    assert keylog.refresh() is True
    assert keylog.master_secret(RANDOM_B) == MASTER_B


def test_malformed_and_unknown_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_bytes(
        b"\n"
        b"# comment\n"
        + LINE_A.replace("\n", "\r\n").encode()
        + b"CLIENT_RANDOM 00 11\n"  # wrong lengths
        + b"CLIENT_RANDOM "
        + RANDOM_B.hex().encode()
        + b"\n"  # missing field
        + b"CLIENT_HANDSHAKE_TRAFFIC_SECRET "
        + RANDOM_B.hex().encode()
        + b" "
        + b"zz" * 32
        + b"\n"
        + b"RSA 0011 2233\n"
        + b"FUTURE_LABEL "
        + RANDOM_B.hex().encode()
        + b" 00\n"
    )

    keylog = read(path)

    assert keylog.master_secret(RANDOM_A) == MASTER_A
    assert keylog.bad_lines == 4
    assert keylog.unknown_lines == 1


def test_missing_file_error_names_path(tmp_path: Path) -> None:
    path = tmp_path / "no-such-keylog.txt"
    keylog = KeyLog(str(path))

    with pytest.raises(KeyLogError) as caught:
        keylog.refresh()

    message = str(caught.value)
    assert str(path) in message
    assert "check the path and that it is readable" in message


def test_file_appearing_later(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    keylog = KeyLog(str(path))
    with pytest.raises(KeyLogError):
        keylog.refresh()

    path.write_text(LINE_A)

    assert keylog.refresh() is True
    assert keylog.master_secret(RANDOM_A) == MASTER_A


def test_directory_error_names_path(tmp_path: Path) -> None:
    with pytest.raises(KeyLogError, match=str(tmp_path)):
        KeyLog(str(tmp_path)).refresh()


def test_secrets_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys"
    broken_secret = MASTER_B.hex()[:90]
    path.write_text(LINE_A + f"CLIENT_RANDOM {RANDOM_B.hex()} {broken_secret}\n")
    caplog.set_level(logging.DEBUG, logger="smtptop.tls.keylog")

    keylog = read(path)
    path.write_text("")
    keylog.refresh()

    assert keylog.bad_lines == 1
    assert caplog.records
    for text in [caplog.text, repr(keylog)]:
        assert MASTER_A.hex() not in text
        assert broken_secret not in text
        assert RANDOM_A.hex() not in text
