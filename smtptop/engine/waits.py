"""Who a conversation waits on, since when, and what the TCP layer shows about the wait.

During the TCP handshake the wait comes from the TCP stage; after it, from
the SMTP machine (``SmtpConversation.waiting_on``, ``waiting_since`` and
``waiting_for``). ``SideTrail`` follows each direction's newest data and the
peer's ACKs in O(1) per segment, so that the stall line can say whether the
move that is owed is held up by the network (a segment not yet ACKed or
retransmitted, a zero window) or by the peer itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from smtptop.decode.segment import ACK, Segment
from smtptop.direction import Direction
from smtptop.smtp.conversation import SmtpConversation
from smtptop.tcp.connection import TcpConnection, TcpStage
from smtptop.tcp.seq import SEQ_MASK, seq_diff
from smtptop.text.timefmt import format_duration

SIDE_NAMES = {Direction.CLIENT_TO_SERVER: "client", Direction.SERVER_TO_CLIENT: "server"}
# The side that sends in a direction owes moves in it.
_SIDE_DIRECTIONS = {name: direction for direction, name in SIDE_NAMES.items()}


# Not frozen: built whenever the owed move changes, several times per conversation, and a
# frozen dataclass sets each field through object.__setattr__. Nothing changes one after it
# is made; unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True)
class Wait:
    """A move one side owes: ``side`` is "client" or "server", ``owed`` names the move, e.g. "reply to EHLO"."""

    side: str
    since: float | None  # capture time the move became owed; None when the capture does not show it
    owed: str


class SideTrail:
    """The newest data one direction sent and how far the peer ACKed it."""

    __slots__ = ("acked", "data_end", "data_ts", "resent", "window")

    def __init__(self) -> None:
        self.data_end: int | None = None  # sequence number after the newest data byte sent
        self.data_ts: float | None = None
        self.resent = 0  # segments since then that carried no new byte
        self.acked: int | None = None  # highest ACK number the peer sent
        self.window: int | None = None  # the newest advertised receive window, unscaled

    def on_segment(self, seg: Segment) -> None:
        """Note a segment this direction sent."""
        self.window = seg.window
        if seg.payload_len <= 0:
            return
        end = (seg.seq + seg.payload_len) & SEQ_MASK
        if self.data_end is None or seq_diff(end, self.data_end) > 0:
            self.data_end = end
            self.data_ts = seg.ts
            self.resent = 0
        else:
            self.resent += 1

    def on_peer_ack(self, ack: int) -> None:
        """Note an ACK number the other direction sent."""
        if self.acked is None or seq_diff(ack, self.acked) > 0:
            self.acked = ack

    @property
    def data_acked(self) -> bool:
        """True when the peer ACKed every data byte this direction sent."""
        if self.data_end is None:
            return True
        return self.acked is not None and seq_diff(self.acked, self.data_end) >= 0


def note_segment(trails: dict[Direction, SideTrail], direction: Direction, seg: Segment) -> None:
    """Update both trails for one segment travelling in ``direction``."""
    trails[direction].on_segment(seg)
    if seg.flags & ACK:
        trails[direction.reverse].on_peer_ack(seg.ack)


_NO_WAIT: tuple[str | None, float | None, str] = (None, None, "")
_SYN_SENT = TcpStage.SYN_SENT
_SYN_ACK = TcpStage.SYN_ACK


def current_wait(tcp: TcpConnection, smtp: SmtpConversation | None) -> Wait | None:
    """Return the move owed now, or None when nobody owes one (closed, inside TLS, not SMTP)."""
    side, since, owed = current_wait_fields(tcp, smtp)
    if side is None:
        return None
    return Wait(side, since, owed)


def current_wait_fields(
    tcp: TcpConnection, smtp: SmtpConversation | None
) -> tuple[str | None, float | None, str]:
    """Return the fields of ``current_wait`` as a tuple, with side None when no side owes a move.

    This runs once per packet, and the wait often stays the same from one packet to
    the next, so the caller builds a ``Wait`` only when the fields differ from its last one.
    """
    if tcp.closed:
        return _NO_WAIT
    stage = tcp.stage
    if stage is _SYN_SENT:
        return "server", tcp.syn_ts, "SYN-ACK"
    if stage is _SYN_ACK:
        return "client", tcp.synack_ts, "handshake ACK"
    if smtp is None:
        return _NO_WAIT
    direction, since, owed = smtp.waiting()
    if direction is None:
        return _NO_WAIT
    return SIDE_NAMES[direction], since, owed


def stall_text(wait: Wait | None, trails: dict[Direction, SideTrail], now: float) -> str:
    """Describe a wait in one line, e.g. "server has not replied to EHLO for 12 s; client's last segment was ACKed"."""
    if wait is None:
        return ""
    if wait.since is None:
        duration = "since before the capture started"
    else:
        duration = f"for {format_duration(max(0.0, now - wait.since))}"
    text = f"{wait.side} {_owed_action(wait.owed)} {duration}"
    notes = _tcp_notes(_SIDE_DIRECTIONS[wait.side], trails)
    return "; ".join([text, *notes])


def _owed_action(owed: str) -> str:
    if owed.startswith("reply to "):
        return f"has not replied to {owed.removeprefix('reply to ')}"
    if owed == "TLS handshake":
        return "has not continued the TLS handshake"
    if owed == "rest of message body":
        return "has not sent the rest of the message body"
    return f"has not sent the {owed}"


def _tcp_notes(owing: Direction, trails: dict[Direction, SideTrail]) -> list[str]:
    """Say what TCP shows about the peer's last move, which the owing side should have received."""
    peer = owing.reverse
    peer_name = SIDE_NAMES[peer]
    trail = trails[peer]
    notes = []
    if trail.data_end is not None:
        acked = trail.data_acked
        if trail.resent:
            times = "once" if trail.resent == 1 else f"{trail.resent} times"
            state = "then ACKed" if acked else "not yet ACKed"
            notes.append(f"{peer_name}'s last segment was retransmitted {times}, {state}")
        elif acked:
            notes.append(f"{peer_name}'s last segment was ACKed")
        else:
            notes.append(f"{peer_name}'s last segment is not yet ACKed")
    if trail.window == 0:
        # The owing side cannot send while its peer's receive window is closed (RFC 9293, section 3.8.6.1).
        notes.append(f"{peer_name} advertises a zero window")
    return notes
