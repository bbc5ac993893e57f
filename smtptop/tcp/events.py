"""Output of a direction's reassembler: in-order bytes, or a hole."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class GapReason(Enum):
    """Reason bytes are missing from a reassembled stream."""

    LOST = "lost"  # never captured: the peer acknowledged them, or the stream ended past them
    NOT_CAPTURED = "not-captured"  # on the wire, but the snaplen cut them off


# Not frozen: built per packet or per line, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one after it is made; unsafe_hash keeps it hashable.
@dataclass(slots=True, unsafe_hash=True)
class StreamData:
    """In-order bytes of one direction, delivered exactly once.

    ``ts`` is the capture time of the packet that made the bytes deliverable
    (for bytes released by a late segment that fills a hole, that segment's time).
    """

    data: bytes
    ts: float


@dataclass(frozen=True, slots=True)
class StreamGap:
    """A hole of ``length`` bytes in one direction's stream; never zero-filled."""

    length: int
    ts: float
    reason: GapReason
