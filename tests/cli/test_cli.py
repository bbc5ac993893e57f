"""The command line as a user runs it: files, stdin, headless output, and every usage error."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from smtptop.cli import parse_config
from smtptop.config import SMTP_PORTS, default_filter
from tests.support import DEMO_CAPTURE, PUBLIC_CAPTURES
from tests.support.tshark import smtp_dialogue

MULTI_MAIL = PUBLIC_CAPTURES / "smtp-sv-multi-mail.pcap"


def run_smtptop(*arguments: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "smtptop", *arguments],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def json_lines(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_json_record_fields_match_tshark() -> None:
    result = run_smtptop("-r", str(MULTI_MAIL), "--json")
    assert result.returncode == 0, result.stderr
    records = json_lines(result)
    assert len(records) == 1
    record = records[0]
    (conversation, items), = smtp_dialogue(MULTI_MAIL).items()
    assert record["client"] == f"{conversation.client_ip}:{conversation.client_port}"
    assert record["server"] == f"{conversation.server_ip}:{conversation.server_port}"
    verbs = [c["verb"] for c in record["commands"] if c["kind"] == "command"]  # type: ignore[index]
    assert verbs == [verb for side, verb in items if side == "C"]
    assert record["tls"]["mode"] == "plaintext"  # type: ignore[index]
    assert record["greeting"]["code"] == 220  # type: ignore[index]
    assert record["tcp"]["stage"] == "closed (FIN)"  # type: ignore[index]
    # Zeek's state for a connection opened and closed normally with FIN both ways.
    assert record["tcp"]["state"] == "SF"  # type: ignore[index]
    assert [len(t["rcpt"]) for t in record["transactions"]] == [1, 1, 2]  # type: ignore[index]
    assert all(t["result_code"] == 250 for t in record["transactions"])  # type: ignore[index]


def test_gzip_file_and_stdin_give_same_records(tmp_path: Path) -> None:
    compressed = tmp_path / "multi.pcap.gz"
    compressed.write_bytes(gzip.compress(MULTI_MAIL.read_bytes()))
    from_file = json_lines(run_smtptop("-r", str(MULTI_MAIL), "--json"))
    from_gzip = json_lines(run_smtptop("-r", str(compressed), "--json"))
    from_stdin = json_lines(run_smtptop("-r", "-", "--json", stdin=MULTI_MAIL.read_bytes()))
    assert from_gzip == from_file
    assert from_stdin == from_file


def test_pcapng_is_read() -> None:
    result = run_smtptop("-r", str(PUBLIC_CAPTURES / "smtp-zeek-bdat-invalid.pcapng"), "--json")
    assert result.returncode == 0, result.stderr
    assert len(json_lines(result)) == 3


def test_filter_expression_selects_frames_from_file() -> None:
    capture = str(PUBLIC_CAPTURES / "smtp-zeek-auth-multi.pcap")
    everything = json_lines(run_smtptop("-r", capture, "--json"))
    filtered = json_lines(run_smtptop("-r", capture, "--json", "tcp", "port", "1470"))
    assert len(everything) == 2
    assert [record["client"] for record in filtered] == ["10.10.1.4:1470"]


def test_report_lists_each_conversation() -> None:
    result = run_smtptop("-r", str(PUBLIC_CAPTURES / "smtp-zeek-auth-multi.pcap"), "--report")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["start", "client", "server"]
    assert "10.10.1.4:1470" in lines[1]
    assert lines[-1] == "2 SMTP conversations"


def test_report_masks_auth_and_json_reveals_on_request() -> None:
    capture = str(PUBLIC_CAPTURES / "smtp-zeek-auth-multi.pcap")
    masked = run_smtptop("-r", capture, "--json").stdout.decode()
    revealed = run_smtptop("-r", capture, "--json", "--show-secrets").stdout.decode()
    # The base64 user name this public sample sends after AUTH LOGIN.
    assert "Z3VycGFydGFwQHBhdHJpb3RzLmlu" not in masked
    assert "Z3VycGFydGFwQHBhdHJpb3RzLmlu" in revealed


def test_corrupt_file_reports_what_was_read_then_fails() -> None:
    result = run_smtptop("-r", str(PUBLIC_CAPTURES / "smtp-sv-corrupt-record.pcap"), "--json")
    assert result.returncode == 2
    assert len(json_lines(result)) == 1
    assert b"record 19" in result.stderr
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["-r", "/nonexistent/x.pcap"], b"-r /nonexistent/x.pcap: no such file"),
        (["-r", str(PUBLIC_CAPTURES / "starttls-keylog-port25.keys")], b"not a pcap or pcapng capture"),
        (["-r", str(PUBLIC_CAPTURES / "link-dlt182-unsupported.pcap")], b"unsupported link-layer header type 182"),
        (["-i", "nosuch0"], b"-i nosuch0: no such interface"),
        (["-i", "lo", "tcp", "port", "and"], b"invalid capture filter 'tcp port and'"),
        (["-r", str(MULTI_MAIL), "tcp", "port", "and"], b"invalid capture filter 'tcp port and'"),
        (["-s", "0"], b"-s 0: the snaplen must be between"),
        (["-B", "0"], b"-B 0: the buffer size must be at least 1 KiB"),
        (["--port", "70000"], b"--port 70000: a TCP port is between 1 and 65535"),
        (["--stall", "0"], b"--stall: '0': the stall threshold must be a positive number"),
        (["--stall", "nan"], b"--stall: 'nan': the stall threshold must be a positive number"),
        (["--stall", "10s"], b"--stall: '10s' is not a number of seconds"),
        (["--demo", "-r", str(MULTI_MAIL)], b"--demo replays the bundled capture"),
        (["-r", str(MULTI_MAIL), "-i", "lo"], b"are exclusive"),
        (["--json", "--report", "-r", str(MULTI_MAIL)], b"--json and --report are exclusive"),
    ],
)
def test_usage_error_names_value_and_exits_2(arguments: list[str], message: bytes) -> None:
    result = run_smtptop(*arguments, "--json")
    assert result.returncode == 2
    assert message in result.stderr
    assert b"Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_live_defaults_follow_tcpdump() -> None:
    config, _ = parse_config([])
    assert config.capture.interface == "any"
    assert config.capture.bpf_filter == default_filter(SMTP_PORTS)
    assert config.capture.bpf_filter == "tcp port 25 or tcp port 465 or tcp port 587 or tcp port 2525"
    assert config.capture.buffer_kib == 64 * 1024


def test_trailing_expression_replaces_live_filter() -> None:
    config, _ = parse_config(["-i", "eth0", "--port", "2526", "host", "192.0.2.1"])
    assert config.capture.bpf_filter == "host 192.0.2.1"
    assert 2526 in config.engine.smtp_ports


def test_extra_port_joins_default_filter() -> None:
    config, _ = parse_config(["--port", "10025"])
    assert "tcp port 10025" in (config.capture.bpf_filter or "")


def test_files_have_no_default_filter() -> None:
    config, _ = parse_config(["-r", "x.pcap"])
    assert config.capture.bpf_filter is None
    assert config.capture.interface is None


def test_cut_short_gzip_reports_cleanly(tmp_path: Path) -> None:
    compressed = gzip.compress((PUBLIC_CAPTURES / "smtp-sv-data-rejected.pcap").read_bytes())
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(compressed[:3000])
    result = run_smtptop("-r", str(cut), "--report")
    assert result.returncode == 2
    assert b"the compressed capture is cut short or damaged" in result.stderr
    assert b"Traceback" not in result.stderr
    assert b"SMTP conversation" in result.stdout


def test_json_into_closed_pipe_exits_quietly() -> None:
    command = f"{sys.executable} -m smtptop -r {PUBLIC_CAPTURES / 'smtp-zeek-auth-multi.pcap'} --json | head -1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr == b""


def test_stdin_dashboard_without_terminal_is_refused() -> None:
    # A new session has no controlling terminal, so the dashboard has nowhere to read keys.
    result = subprocess.run(
        [sys.executable, "-m", "smtptop", "-r", "-"],
        input=MULTI_MAIL.read_bytes(),
        capture_output=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )
    assert result.returncode == 2
    assert b"-r - with the dashboard needs a terminal" in result.stderr


def test_report_counts_only_accepted_messages() -> None:
    result = run_smtptop("-r", str(PUBLIC_CAPTURES / "smtp-sv-errors-mixed.pcap"), "--report")
    row = next(line for line in result.stdout.decode().splitlines() if "10.7.29.101:49740" in line)
    cells = row.split()
    # The MAIL command got 472, so no message was accepted on this connection.
    assert cells[cells.index("220") + 1] == "0"
    assert "501 Unknown command" in row


def test_report_escapes_binary_in_replies() -> None:
    result = run_smtptop("-r", str(PUBLIC_CAPTURES / "smtp-sv-errors-mixed.pcap"), "--report")
    assert all(line.isprintable() for line in result.stdout.decode().splitlines())


def test_report_into_closed_pipe_exits_quietly() -> None:
    command = f"{sys.executable} -m smtptop -r {PUBLIC_CAPTURES / 'smtp-sv-errors-mixed.pcap'} --report | head -1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0
    assert result.stderr == b""


def test_conversation_limit_defaults_by_front_end() -> None:
    dashboard, _ = parse_config(["-r", str(MULTI_MAIL)])
    headless, _ = parse_config(["-r", str(MULTI_MAIL), "--json"])
    chosen, _ = parse_config(["-r", str(MULTI_MAIL), "--report", "--max-conversations", "50"])

    assert dashboard.engine.max_conversations == 10_000
    assert headless.engine.max_conversations == 1_000
    assert chosen.engine.max_conversations == 50


def test_small_conversation_limit_keeps_every_record() -> None:
    demo = str(DEMO_CAPTURE)
    everything = run_smtptop("-r", demo, "--json")
    squeezed = run_smtptop("-r", demo, "--json", "--max-conversations", "2")

    assert everything.returncode == 0, everything.stderr
    assert squeezed.returncode == 0, squeezed.stderr
    assert len(json_lines(everything)) == 15
    assert sorted(everything.stdout.splitlines()) == sorted(squeezed.stdout.splitlines())
