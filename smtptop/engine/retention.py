"""Memory bounds of the engine: frame bytes, closed conversations and packet records.

Three bounds keep a long capture from growing without limit:

- ``FrameStore``: the captured bytes of frames, kept for the hex view within
  a byte budget. Past the budget the oldest frames lose their bytes (their
  ``PacketRecord`` stays) and are counted as dropped.
- ``ClosedConversations``: the closed conversations in ``last_seen`` order,
  so that the engine can evict the oldest one when a new conversation
  arrives over its limit. Open conversations are never in it.
- ``trim_packets``: the packet records of one conversation, bounded by
  keeping its first packets and its newest packets.

The engine calls these under its lock; nothing here is thread-safe on its own.
"""

from __future__ import annotations

import heapq
from collections import deque

from smtptop.engine.conversation import Conversation, PacketRecord

# The frame deque is rebuilt once this share of its records has lost its bytes
# by other means than the budget (an evicted conversation, a trimmed packet).
COMPACT_DEAD_SHARE = 0.5
COMPACT_MIN_DEAD = 1024


class FrameStore:
    """Captured frame bytes of recent packets, at most ``budget`` bytes in total."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0  # frame bytes in memory now
        self.dropped = 0  # frames whose bytes the budget pushed out
        # Every record whose ``frame`` is set, oldest first, plus "dead" records
        # whose frame was released out of order and that wait for the next compaction.
        self._records: deque[PacketRecord] = deque()
        self._dead = 0

    def keep(self, record: PacketRecord) -> None:
        """Take a new record's frame into the store, then drop the oldest frames past the budget.

        The new frame goes too when it alone is larger than the budget, so
        ``size`` never stays above ``budget``.
        """
        frame = record.frame
        if frame is None:
            return
        self.size += len(frame)
        self._records.append(record)
        while self.size > self.budget and self._records:
            oldest = self._records.popleft()
            if oldest.frame is None:
                self._dead -= 1
                continue
            self.size -= len(oldest.frame)
            oldest.frame = None
            self.dropped += 1

    def release(self, records: list[PacketRecord]) -> None:
        """Free the frames of records the engine no longer keeps; they are not counted as dropped."""
        for record in records:
            if record.frame is not None:
                self.size -= len(record.frame)
                record.frame = None
                self._dead += 1
        self._compact()

    def _compact(self) -> None:
        """Rebuild the deque without dead records once they are many, so they cannot pile up.

        Without this, a store whose frames leave by eviction before the budget
        is reached would hold every dead record of the capture.
        """
        dead = self._dead
        if dead < COMPACT_MIN_DEAD or dead < len(self._records) * COMPACT_DEAD_SHARE:
            return
        self._records = deque(record for record in self._records if record.frame is not None)
        self._dead = 0


class ClosedConversations:
    """Closed conversations, to find the one with the oldest ``last_seen`` in O(log n).

    A closed conversation can still receive packets (a late ACK, a
    retransmitted FIN), which moves its ``last_seen`` on. The heap keeps the
    time it had when it was pushed, and ``pop_oldest`` pushes an entry again
    when that time is out of date.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Conversation]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, conversation: Conversation) -> None:
        # The key breaks ties, so two conversations are never compared.
        heapq.heappush(self._heap, (conversation.last_seen, conversation.key, conversation))

    def pop_oldest(self) -> Conversation | None:
        """Remove and return the closed conversation seen least recently, or None when there is none."""
        heap = self._heap
        while heap:
            last_seen, key, conversation = heapq.heappop(heap)
            if conversation.last_seen == last_seen:
                return conversation
            heapq.heappush(heap, (conversation.last_seen, key, conversation))
        return None


def trim_packets(conversation: Conversation, limit: int) -> list[PacketRecord]:
    """Drop packet records from the middle of a conversation past ``limit``, and return the dropped ones.

    The first ``limit // 2`` records stay: they hold the handshake, the
    greeting and the start of the dialogue. Past the limit, the oldest of the
    newer records go, one chunk at a time, so the list is shifted once per
    chunk rather than once per packet. At most ``limit`` records are kept.
    """
    packets = conversation.packets
    if len(packets) <= limit:
        return []

    head = limit // 2
    chunk = max(1, (limit - head) // 8)
    keep = max(head + 1, limit - chunk)
    cut = len(packets) - keep
    dropped = packets[head : head + cut]
    del packets[head : head + cut]
    conversation.packets_not_kept += cut
    return dropped
