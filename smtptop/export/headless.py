"""``smtptop -r FILE --save OUT [--select TEXT]``: save the frames of chosen conversations without the UI.

The engine's frame store is bounded, so the frames of a large file are not
all in memory when the file ends. Instead, ``FrameSelection`` (the engine's
``on_finished`` hook) notes the frame numbers of each SMTP conversation that
passes the text filter, one bit per frame. ``save_capture`` then reads the
file a second time with the same BPF filter, so frame numbers match the
engine's, and writes the noted frames. Memory stays at one bit per frame of
the file.

The engine also drops packet records from the middle of a conversation past
``EngineConfig.max_packets_per_conversation``. Their frame numbers are lost,
but they lie between two kept records, so the second read decodes the frames
in that range and takes those of the conversation's TCP connection.

Stdin cannot be read twice, so its frames come from the engine's store, and
frames whose bytes left memory are counted as not written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from smtptop.capture.files import CaptureReader, Frame, compile_frame_filter, open_capture
from smtptop.decode.packet import Decoder
from smtptop.engine.conversation import Conversation, FlowKey
from smtptop.engine.engine import Engine, conversation_row, flow_key
from smtptop.export.pcap import write_pcap
from smtptop.export.select import row_selected

log = logging.getLogger(__name__)

MAX_FRAME_NO = 2**63  # the end of a cut that reaches past the conversation's last kept record


@dataclass(frozen=True, slots=True)
class SaveSummary:
    """The counts of one ``save_capture`` call."""

    path: str
    conversations: int  # selected SMTP conversations
    packets_written: int
    packets_not_written: (
        int  # packets of selected conversations whose bytes could not be read again
    )
    from_memory: bool = (
        False  # the input was stdin, so the frames came from the engine's bounded store
    )

    def line(self) -> str:
        """Return the one-line summary for stderr."""
        noun = "conversation" if self.conversations == 1 else "conversations"
        text = f"saved {self.packets_written:,} packets of {self.conversations:,} {noun} to {self.path}"
        if not self.packets_not_written:
            return text
        if self.from_memory:
            return (
                f"{text}; {self.packets_not_written:,} packets not written because their bytes had left memory"
                " (stdin cannot be read twice, so save the stream to a file and use -r FILE --save)"
            )
        return f"{text}; {self.packets_not_written:,} packets not found in the second read (did the file change?)"


class FrameSelection:
    """The frame numbers of the SMTP conversations that pass a text filter, collected as the engine reports them.

    Pass an instance as the engine's ``on_finished`` hook (or call it from the
    hook): the engine reports every SMTP conversation once, when it is evicted
    or when the input ends, so none is missed however many the file holds.
    """

    def __init__(self, text: str = "", reveal: bool = False, packet_limit: int = 20_000) -> None:
        self.text = text
        # The engine's setting, because building a row caches it on the conversation.
        self.reveal = reveal
        self.packet_limit = packet_limit  # the engine's max_packets_per_conversation
        self.keys: list[int] = []
        self._marked = 0  # frames whose bit is set
        self._bits = bytearray()  # bit n is set when frame n belongs to a selected conversation
        # Per trimmed conversation's key: its flow key and the frame numbers of the kept
        # records around the cut, and how many records the engine dropped there.
        self.cuts: dict[int, tuple[FlowKey, int, int]] = {}
        self._not_kept: dict[int, int] = {}

    @property
    def packets(self) -> int:
        """Count the packets of the selected conversations."""
        return self._marked + sum(self._not_kept.values())

    def __call__(self, conversation: Conversation) -> None:
        if not conversation.is_smtp:
            return
        if not row_selected(conversation_row(conversation, self.reveal), self.text):
            return
        self.keys.append(conversation.key)
        self.add_packets(conversation)

    def add_packets(self, conversation: Conversation) -> None:
        """Note the frames of a selected conversation; frames noted before are not counted again."""
        for record in conversation.packets:
            self._add(record.frame_no)
        self._add_cut(conversation)

    def _add_cut(self, conversation: Conversation) -> None:
        packets = conversation.packets
        if not conversation.packets_not_kept or conversation.flow_key is None or not packets:
            return
        # trim_packets keeps the first packet_limit // 2 records and cuts right after them.
        head = min(self.packet_limit // 2, len(packets))
        before = packets[head - 1].frame_no if head > 0 else 0
        after = packets[head].frame_no if head < len(packets) else MAX_FRAME_NO
        self.cuts[conversation.key] = (conversation.flow_key, before, after)
        self._not_kept[conversation.key] = conversation.packets_not_kept

    def _add(self, frame_no: int) -> None:
        index, bit = divmod(frame_no, 8)
        if index >= len(self._bits):
            # Grow geometrically, so marking a whole file costs amortised constant time per frame.
            self._bits.extend(bytes(max(index + 1 - len(self._bits), len(self._bits))))
        if not self._bits[index] >> bit & 1:
            self._bits[index] |= 1 << bit
            self._marked += 1

    def __contains__(self, frame_no: int) -> bool:
        index, bit = divmod(frame_no, 8)
        return index < len(self._bits) and bool(self._bits[index] >> bit & 1)

    def cut_key(self, frame_no: int) -> FlowKey | None:
        """Return the flow key of the trimmed conversation whose cut contains ``frame_no``, if any."""
        for key, before, after in self.cuts.values():
            if before < frame_no < after:
                return key
        return None


def save_capture(
    engine: Engine,
    selection: FrameSelection,
    read_file: str,
    out_path: str,
    bpf_filter: str | None = None,
) -> SaveSummary:
    """Write the selected conversations' frames of ``read_file`` to ``out_path`` after the engine read it all.

    ``bpf_filter`` must be the filter the engine's input was read with.
    Raises ``ExportError`` when ``out_path`` cannot be written and
    ``CaptureError`` when the file cannot be read again.
    """
    if read_file == "-":
        return _save_from_memory(engine, selection, out_path)

    # Packets that reached a selected conversation after the engine reported it.
    with engine.lock:
        for key in selection.keys:
            conversation = engine.conversations.get(key)
            if conversation is not None:
                selection.add_packets(conversation)

    reader = open_capture(read_file)
    try:
        if bpf_filter:
            reader.frame_filter = compile_frame_filter(bpf_filter, reader.link_type)
        written = write_pcap(
            out_path, reader.link_type, reader.snaplen, _selected_frames(reader, selection)
        )
    finally:
        reader.close()
    # NOTE: a file that changed between the two reads gives other frames under the same
    # numbers. Only a changed count of selected frames shows it.
    return SaveSummary(out_path, len(selection.keys), written, selection.packets - written)


def _selected_frames(reader: CaptureReader, selection: FrameSelection) -> Iterator[Frame]:
    decoder = Decoder(reader.link_type)
    number = 0
    for batch in reader.batches():
        for frame in batch:
            number += 1
            # The bitmap decides most frames. Only frames inside a trimmed conversation's cut are decoded again.
            if number in selection or (
                selection.cuts and _in_cut(decoder, number, frame, selection)
            ):
                yield frame


def _in_cut(decoder: Decoder, number: int, frame: Frame, selection: FrameSelection) -> bool:
    """Check whether a frame inside a trimmed conversation's cut belongs to that conversation's connection."""
    key = selection.cut_key(number)
    if key is None:
        return False
    segment = decoder.decode(frame[0], number, frame[1])
    return segment is not None and flow_key(segment) == key


def _save_from_memory(engine: Engine, selection: FrameSelection, out_path: str) -> SaveSummary:
    frames, dropped = engine.frames_for(selection.keys)
    written = write_pcap(out_path, engine.link_type, 0, frames)
    log.debug("stdin: %d selected frames had left the frame store", dropped)
    # Conversations evicted before the end are no longer listed, so their frames count as not written too.
    return SaveSummary(
        out_path, len(selection.keys), written, selection.packets - written, from_memory=True
    )
