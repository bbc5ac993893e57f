"""TCP analysis results as the snapshot records show them, read from a connection's ``TcpAnalysis``.

The analysis itself lives in ``smtptop.tcp.analysis``. The engine copies each
segment's tags into its packet record and reads the counters here only when
it rebuilds a row or the open conversation's detail.
"""

from __future__ import annotations

from smtptop.direction import Direction
from smtptop.engine.snapshot import TcpDirectionHealth, TcpHealth
from smtptop.tcp.analysis import ACKED_UNSEEN, LOST_SEGMENT
from smtptop.tcp.connection import TcpConnection

__all__ = ["ACKED_UNSEEN", "LOST_SEGMENT", "direction_health", "row_counters", "tcp_health"]


def direction_health(tcp: TcpConnection, direction: Direction) -> TcpDirectionHealth:
    """Return the analysis counters, windows and RTTs of the segments ``direction`` sent."""
    return tcp.analysis.stats(direction)


def tcp_health(tcp: TcpConnection) -> TcpHealth:
    """Build the TCP panel record of a connection: both directions and Zeek's summary."""
    analysis = tcp.analysis
    return TcpHealth(
        client=direction_health(tcp, Direction.CLIENT_TO_SERVER),
        server=direction_health(tcp, Direction.SERVER_TO_CLIENT),
        initial_rtt=analysis.initial_rtt,
        zeek_state=analysis.zeek_state(),
        history=analysis.history(),
    )


def row_counters(tcp: TcpConnection) -> tuple[int, int]:
    """Return the duplicate ACKs and zero windows of both directions, for the table row."""
    client = tcp.analysis.stats(Direction.CLIENT_TO_SERVER)
    server = tcp.analysis.stats(Direction.SERVER_TO_CLIENT)
    return client.duplicate_acks + server.duplicate_acks, client.zero_windows + server.zero_windows
