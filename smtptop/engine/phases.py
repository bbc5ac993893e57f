"""The timed phases of one conversation, from the SYN to the newest reply, for the detail view and JSON.

The TCP connect is split in two: "SYN-ACK" (SYN to SYN-ACK) and "handshake
ACK" (SYN-ACK to the client's ACK). "greeting" runs from the handshake to the
server's 220. The SMTP machine's ``phase_latencies`` supplies the rest: each
command to its reply, the DATA body, and the TLS handshake.
"""

from __future__ import annotations

from smtptop.engine.snapshot import PhaseLatency
from smtptop.smtp.conversation import SmtpConversation
from smtptop.tcp.connection import TcpConnection, TcpStage

_HANDSHAKE = frozenset((TcpStage.SYN_SENT, TcpStage.SYN_ACK))


def conversation_phases(tcp: TcpConnection, smtp: SmtpConversation | None) -> tuple[PhaseLatency, ...]:
    """List the phases of a conversation in time order; a phase still waiting has ``complete`` None."""
    phases = _connect_phases(tcp)
    greeting = _greeting_phase(tcp, smtp)
    if greeting is not None:
        phases.append(greeting)
    if smtp is not None:
        phases.extend(
            PhaseLatency(phase.phase, phase.start, phase.first_byte_latency, phase.latency)
            for phase in smtp.phase_latencies()
        )
    return tuple(phases)


def _connect_phases(tcp: TcpConnection) -> list[PhaseLatency]:
    phases = []
    syn, synack, established = tcp.syn_ts, tcp.synack_ts, tcp.established_ts
    if syn is not None:
        if synack is not None:
            phases.append(PhaseLatency("SYN-ACK", syn, None, synack - syn))
        elif not tcp.closed:
            phases.append(PhaseLatency("SYN-ACK", syn, None, None))
    if synack is not None:
        if established is not None and tcp.stage not in _HANDSHAKE and established >= synack:
            phases.append(PhaseLatency("handshake ACK", synack, None, established - synack))
        elif tcp.stage is TcpStage.SYN_ACK:
            phases.append(PhaseLatency("handshake ACK", synack, None, None))
    return phases


def _greeting_phase(tcp: TcpConnection, smtp: SmtpConversation | None) -> PhaseLatency | None:
    """Time the banner wait from the handshake; only when the capture saw the handshake."""
    established = tcp.established_ts
    if smtp is None or established is None or (tcp.syn_ts is None and tcp.synack_ts is None):
        return None
    greeting = smtp.greeting
    if greeting is not None:
        return PhaseLatency("greeting", established, greeting.first_ts - established, greeting.ts - established)
    if smtp.waiting_for == "greeting":
        return PhaseLatency("greeting", established, None, None)
    return None
