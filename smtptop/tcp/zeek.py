"""Zeek's connection summary: the ``conn_state`` code and the ``history`` letters.

The codes and letters are those of the ``conn_state`` and ``history``
fields of Zeek's conn.log. The originator is the client, the side
that sent the SYN or, mid-stream, the side that ``TcpConnection.open``
chose. History letters are upper case for the originator and lower case for
the responder.

Each endpoint moves through the states inactive, SYN sent, SYN-ACK sent,
partial (seen only mid-stream), established, closed (sent a FIN) and reset
(sent a RST), and ``conn_state`` derives the code from the pair.
NOTE: the tests check the codes against their documented meanings, not
against Zeek's own output on the same packets.
Must not import anything that does I/O.
"""

from __future__ import annotations

import re
from enum import Enum

from smtptop.decode.segment import ACK, FIN, RST, SYN
from smtptop.direction import Direction


class EndpointState(Enum):
    """The progress of one endpoint through its handshake and teardown."""

    INACTIVE = "inactive"
    SYN_SENT = "SYN sent"
    SYN_ACK_SENT = "SYN-ACK sent"
    PARTIAL = "partial"
    ESTABLISHED = "established"
    CLOSED = "closed"
    RESET = "reset"

    # Members are singletons: identity hashing is correct and runs in C, not in Enum's __hash__.
    __hash__ = object.__hash__


# Module names for the members and directions: on Python 3.11 reading an Enum member
# through its class costs several times a global lookup, and these run per segment.
_INACTIVE = EndpointState.INACTIVE
_SYN_SENT = EndpointState.SYN_SENT
_SYN_ACK_SENT = EndpointState.SYN_ACK_SENT
_PARTIAL = EndpointState.PARTIAL
_ESTABLISHED = EndpointState.ESTABLISHED
_CLOSED = EndpointState.CLOSED
_RESET = EndpointState.RESET
_C2S = Direction.CLIENT_TO_SERVER
_S2C = Direction.SERVER_TO_CLIENT

_HANDSHAKING = frozenset((EndpointState.SYN_SENT, EndpointState.SYN_ACK_SENT))
_QUIET = frozenset((EndpointState.INACTIVE, EndpointState.PARTIAL))
# Zeek repeats these letters each time their count reaches 1, 10, 100, ...
_LOGARITHMIC = frozenset("TW")
_CONTROL = SYN | FIN | RST
_RSTOS0_HISTORY = re.compile(r"\^?S[^HAFGIQ]*R.*")


class ZeekSummary:
    """Zeek's conn_state and history of one connection, built one segment at a time."""

    __slots__ = (
        "_client_bytes",
        "_letters",
        "_repeats",
        "_server_bytes",
        "_states",
    )

    def __init__(self) -> None:
        self._states = {
            _C2S: _INACTIVE,
            _S2C: _INACTIVE,
        }
        self._client_bytes = 0
        self._server_bytes = 0
        self._letters: list[str] = []
        self._repeats: dict[str, int] = {}

    def observe(
        self,
        flags: int,
        payload_len: int,
        direction: Direction,
        retransmission: bool,
        zero_window: bool,
    ) -> None:
        """Update the endpoint states and history from one segment."""
        if direction is _C2S:
            self._client_bytes += payload_len
        else:
            self._server_bytes += payload_len
        plain = not (flags & _CONTROL or retransmission or zero_window)
        if plain and self._states[direction] is _ESTABLISHED:
            # Most segments are an ACK or data of an established endpoint, which changes no
            # state and adds at most one letter, A or D, that appears only once.
            self._note_plain(flags, payload_len, direction)
            return
        self._update_state(flags, direction)
        for letter in self._letters_of(flags, payload_len, retransmission, zero_window):
            self._record(letter, direction)

    def _note_plain(self, flags: int, payload_len: int, direction: Direction) -> None:
        """Record the A or D letter of a segment without SYN, FIN or RST, as ``_record`` does."""
        if payload_len > 0:
            recorded = "D" if direction is _C2S else "d"
        elif flags & ACK:
            recorded = "A" if direction is _C2S else "a"
        else:
            return
        if recorded not in self._letters:
            self._letters.append(recorded)

    def history(self) -> str:
        """Return the history letters recorded so far, such as ``ShADadFf``."""
        return "".join(self._letters)

    def state(self) -> str:
        """Return Zeek's conn_state code for what was seen so far."""
        origin = self._states[_C2S]
        responder = self._states[_S2C]
        origin_quiet = origin in _QUIET
        responder_quiet = responder in _QUIET
        if responder is _RESET:
            no_payload = not (self._client_bytes or self._server_bytes)
            if origin in _HANDSHAKING or (origin is _RESET and no_payload):
                return "REJ"
            return "RSTRH" if origin_quiet else "RSTR"
        if origin is _RESET:
            if responder_quiet:
                return "RSTOS0" if _RSTOS0_HISTORY.fullmatch(self.history()) else "OTH"
            return "RSTO"
        if origin is _CLOSED and responder is _CLOSED:
            return "SF"
        if origin is _CLOSED:
            return "SH" if responder_quiet else "S2"
        if responder is _CLOSED:
            return "SHR" if origin_quiet else "S3"
        if origin is _SYN_SENT and responder is _INACTIVE:
            return "S0"
        if origin is _ESTABLISHED and responder is _ESTABLISHED:
            return "S1"
        return "OTH"

    def _update_state(self, flags: int, direction: Direction) -> None:
        states = self._states
        mine = states[direction]
        peer = states[direction.reverse]
        if mine is _RESET:
            return
        if flags & RST:
            states[direction] = _RESET
            return
        if flags & SYN:
            if mine in (_INACTIVE, _SYN_SENT):
                states[direction] = (
                    _SYN_ACK_SENT if flags & ACK else _SYN_SENT
                )
        elif mine is _INACTIVE:
            states[direction] = _PARTIAL
        elif flags & ACK and mine in _HANDSHAKING and peer in _HANDSHAKING and mine is not peer:
            # The ACK that completes the handshake (or data that implies it).
            states[direction] = _ESTABLISHED
            states[direction.reverse] = _ESTABLISHED
        if flags & FIN and states[direction] is not _RESET:
            states[direction] = _CLOSED

    @staticmethod
    def _letters_of(
        flags: int, payload_len: int, retransmission: bool, zero_window: bool
    ) -> list[str]:
        letters: list[str] = []
        control = flags & (SYN | FIN | RST)
        if control not in (0, SYN, FIN, RST):
            # Zeek's "inconsistent" letter covers SYN+FIN, SYN+RST and FIN+RST.
            letters.append("I")
        elif flags & SYN:
            letters.append("H" if flags & ACK else "S")
        if flags & ACK and not control and payload_len == 0:
            letters.append("A")
        if payload_len > 0:
            letters.append("D")
        if flags & FIN and control == FIN:
            letters.append("F")
        if flags & RST and control == RST:
            letters.append("R")
        if retransmission:
            letters.append("T")
        if zero_window:
            letters.append("W")
        return letters

    def _record(self, letter: str, direction: Direction) -> None:
        recorded = letter if direction is _C2S else letter.lower()
        if letter in _LOGARITHMIC:
            count = self._repeats.get(recorded, 0) + 1
            self._repeats[recorded] = count
            if _is_power_of_ten(count):
                self._letters.append(recorded)
            return
        # A letter that is not logarithmic appears once, so the short history itself shows
        # whether it was seen.
        if recorded not in self._letters:
            self._letters.append(recorded)


def _is_power_of_ten(count: int) -> bool:
    while count % 10 == 0:
        count //= 10
    return count == 1
