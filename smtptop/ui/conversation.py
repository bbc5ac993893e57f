"""The conversation screen: one conversation's packets, bytes, SMTP dialogue, timeline, phases, TCP health and TLS.

The app calls ``ConversationScreen.show_detail`` on every refresh with the
newest ``ConversationDetail``. New packets and transcript lines are appended
to their tables in place, so the cursor and the hex dump stay where the user
left them. Moving the cursor on the timeline selects the packet that
completed the command or reply under it, in the Packets tab as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from smtptop.direction import Direction
from smtptop.engine.snapshot import ConversationDetail, PacketRow, TranscriptLine
from smtptop.text.hexdump import hexdump
from smtptop.text.printable import printable
from smtptop.text.timefmt import TimeDisplay, format_latency, format_time
from smtptop.ui.keyed_table import Column, KeyedTable
from smtptop.ui.rows import TLS_LABELS
from smtptop.ui.save import SaveScope, SaveScreen, notify_saved
from smtptop.ui.tcp_panel import tagged_summary, tcp_panel
from smtptop.ui.timeline import (
    PHASE_COLUMNS,
    TIMELINE_COLUMNS,
    TimelineEvent,
    phase_rows,
    timeline_events,
    timeline_rows,
)
from smtptop.ui.tls_panel import TlsPanel

if TYPE_CHECKING:
    from smtptop.ui.app import SmtpTopApp

PACKET_COLUMNS = (
    Column("no.", "number", 7),
    Column(TimeDisplay.ABSOLUTE.value, "time", 15),
    Column("dir", "direction", 3),
    Column("flags", "flags", 5),
    Column("seq", "seq", 10),
    Column("ack", "ack", 10),
    Column("len", "length", 6),
    Column("summary", "summary"),
)

TRANSCRIPT_COLUMNS = (
    Column(TimeDisplay.ABSOLUTE.value, "time", 15),
    Column("latency", "latency", 8),
    Column("line", "line"),
)

DIRECTION_STYLES = {
    Direction.CLIENT_TO_SERVER: "cyan",
    Direction.SERVER_TO_CLIENT: "yellow",
}
NOTE_STYLE = "dim italic"
STALL_STYLE = "bold yellow"
TRANSCRIPT_PREFIXES = {Direction.CLIENT_TO_SERVER: "C: ", Direction.SERVER_TO_CLIENT: "S: "}


def _cell(value: str, style: str) -> Text:
    return Text(printable(value), style=style, no_wrap=True, overflow="ellipsis", end="")


def packet_cells(
    packet: PacketRow, display: TimeDisplay, start: float, previous: float | None
) -> list[Text]:
    """Build the packet list cells of one packet. TCP analysis tags lead the summary, and a bare ACK without tags is dimmed."""
    style = DIRECTION_STYLES.get(packet.direction, "")
    if packet.length == 0 and packet.summary == "[ACK]" and not packet.tags:
        style = f"dim {style}".strip()
    values = (
        str(packet.frame_no),
        format_time(display, packet.ts, start, previous),
        packet.direction.arrow,
        packet.flags,
        str(packet.seq),
        str(packet.ack),
        str(packet.length),
    )
    return [_cell(value, style) for value in values] + [tagged_summary(packet.tags, packet.summary, style)]


def transcript_cells(
    line: TranscriptLine, display: TimeDisplay, start: float, previous: float | None
) -> list[Text]:
    """Build the transcript cells of one line: time, reply latency, and ``C:``/``S:`` text.

    Lines read from decrypted TLS records are marked in their prefix, ``C (TLS):``.
    """
    if line.direction is None:
        style, prefix = NOTE_STYLE, "-- "
    else:
        style = DIRECTION_STYLES.get(line.direction, "")
        prefix = TRANSCRIPT_PREFIXES[line.direction]
        if line.decrypted:
            prefix = prefix.replace(":", " (TLS):")
    return [
        _cell(format_time(display, line.ts, start, previous), style),
        _cell(format_latency(line.latency), style),
        _cell(prefix + line.text, style),
    ]


def title_text(detail: ConversationDetail, tracked: bool, secrets_shown: bool = False) -> Text:
    """Build the title lines: endpoints, TLS mode, TCP stage, SMTP stage, and any anomalies."""
    row = detail.row
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{printable(row.client)} → {printable(row.server)}", style="bold")
    text.append(f"  TLS {TLS_LABELS.get(row.tls_mode, printable(row.tls_mode))}")
    text.append(f"  TCP {printable(detail.tcp_stage)}")
    text.append(f"  stage {printable(row.stage)}")
    # Payload bytes, where the dashboard header counts whole frames.
    text.append(f"  packets {row.packets:,}  payload bytes {row.bytes:,}")
    text.append(f"  msgs {row.messages}  retrans {row.retransmissions}")
    text.append(f"  dup ACKs {row.duplicate_acks}  zero windows {row.zero_windows}")
    if row.closed:
        text.append("  closed", style="dim")
    if not tracked:
        text.append("  no longer tracked: showing the last detail", style="bold yellow")
    if secrets_shown:
        text.append("  SECRETS SHOWN", style="bold reverse red")
    if detail.capabilities:
        capabilities = " ".join(printable(item) for item in detail.capabilities)
        text.append(f"\ncapabilities: {capabilities}", style="dim")
    if detail.anomalies:
        anomalies = ", ".join(printable(item) for item in detail.anomalies)
        text.append(f"\nanomalies: {anomalies}", style="yellow")
    return text


def frame_dump(packet: PacketRow | None, from_disk: tuple[bytes | None, str] | None = None) -> Text:
    """Build the hex + ASCII dump of a packet's captured bytes, with a one-line heading.

    ``from_disk`` contains the bytes read back from the recorded files, or the reason
    they are not there, for a packet whose bytes left memory.
    """
    if packet is None:
        return Text("No packet selected.", style="dim")
    frame, origin = packet.frame, ""
    if frame is None and from_disk is not None:
        frame, reason = from_disk
        origin = ", read back from the recording"
        if frame is None:
            return Text(f"Frame {packet.frame_no}: bytes no longer in memory; {reason}.", style="dim")
    if frame is None:
        return Text(
            f"Frame {packet.frame_no}: bytes no longer kept "
            "(the bounded packet store dropped them; record with -w to keep every frame).",
            style="dim",
        )
    heading = f"Frame {packet.frame_no}: {len(frame)} bytes captured{origin}, link type {packet.link_type}\n"
    return Text(heading + hexdump(frame), no_wrap=True, end="")


class ConversationScreen(Screen[None]):
    """Packets with their bytes, the SMTP transcript, the timeline, the phases, the TCP health and the TLS negotiation of one conversation."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("q", "app.pop_screen", "Back", show=False),
        Binding("t", "cycle_time", "Time format"),
        Binding("s", "save", "Save"),
        Binding("1", "show_tab('packets-tab')", "Packets"),
        Binding("2", "show_tab('transcript-tab')", "Transcript"),
        Binding("3", "show_tab('timeline-tab')", "Timeline"),
        Binding("4", "show_tab('phases-tab')", "Phases"),
        Binding("5", "show_tab('tcp-tab')", "TCP"),
        Binding("6", "show_tab('tls-tab')", "TLS"),
    ]

    def __init__(
        self,
        key: int,
        detail: ConversationDetail,
        time_display: TimeDisplay,
        stall_seconds: float = 10.0,
    ) -> None:
        super().__init__()
        self.key = key
        self.time_display = time_display
        self.stall_seconds = stall_seconds
        self._detail = detail
        self._tracked = True
        self._packets: dict[str, PacketRow] = {}
        self._events: dict[str, TimelineEvent] = {}
        self._dumped: PacketRow | None = None
        self._timeline_dumped: PacketRow | None = None
        # The app's timer can deliver a detail after the screen is pushed but before
        # the tables inside its tabs exist. on_mount draws the detail kept until then.
        self._mounted = False

    @property
    def smtptop(self) -> SmtpTopApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static(id="stall")
        with TabbedContent(id="tabs"):
            with TabPane("Packets", id="packets-tab"):
                yield KeyedTable(PACKET_COLUMNS, id="packets")
                with VerticalScroll(id="hexdump-scroll"):
                    yield Static(id="hexdump")
            with TabPane("Transcript", id="transcript-tab"):
                yield KeyedTable(TRANSCRIPT_COLUMNS, id="transcript")
            with TabPane("Timeline", id="timeline-tab"):
                yield KeyedTable(TIMELINE_COLUMNS, id="timeline")
                with VerticalScroll(id="timeline-hexdump-scroll"):
                    yield Static(id="timeline-hexdump")
            with TabPane("Phases", id="phases-tab"):
                yield Static(id="phases-empty")
                yield KeyedTable(PHASE_COLUMNS, id="phases")
            with TabPane("TCP", id="tcp-tab"):
                with VerticalScroll(id="tcp-scroll"):
                    yield Static(id="tcp")
            with TabPane("TLS", id="tls-tab"):
                with VerticalScroll(id="tls-scroll"):
                    yield TlsPanel(id="tls")
        yield Footer()

    def on_mount(self) -> None:
        self._mounted = True
        self._apply_time_labels()
        self._render_detail()
        self.query_one("#packets", KeyedTable).focus()

    def show_detail(self, detail: ConversationDetail | None) -> None:
        """Show a newer detail; None keeps the last one and marks it as no longer tracked."""
        if detail is None:
            self._tracked = False
        else:
            self._detail = detail
            self._tracked = True
        if self._mounted:
            self._render_detail()

    def _render_detail(self) -> None:
        detail = self._detail
        secrets_shown = self.smtptop.secrets_shown
        self.query_one("#title", Static).update(title_text(detail, self._tracked, secrets_shown))
        stall = self.query_one("#stall", Static)
        stall.update(Text(printable(detail.stall), style=STALL_STYLE))
        stall.display = bool(detail.stall)
        self._render_packets(detail.packets, detail.row.start)
        self._render_transcript(detail.transcript, detail.row.start)
        self._render_timeline(detail.transcript, detail.row.start)
        self._render_phases(detail, detail.row.start)
        self.query_one("#tcp", Static).update(tcp_panel(detail.tcp))
        self.query_one("#tls", TlsPanel).show(detail.tls)
        self._update_dump()

    def _render_packets(self, packets: Sequence[PacketRow], start: float) -> None:
        rows: list[tuple[str, list[Text]]] = []
        self._packets = {}
        previous: float | None = None
        for packet in packets:
            key = str(packet.frame_no)
            self._packets[key] = packet
            rows.append((key, packet_cells(packet, self.time_display, start, previous)))
            previous = packet.ts
        self.query_one("#packets", KeyedTable).sync(rows)

    def _render_transcript(self, lines: Sequence[TranscriptLine], start: float) -> None:
        rows: list[tuple[str, list[Text]]] = []
        previous: float | None = None
        for index, line in enumerate(lines):
            rows.append((str(index), transcript_cells(line, self.time_display, start, previous)))
            previous = line.ts
        self.query_one("#transcript", KeyedTable).sync(rows)

    def _render_timeline(self, lines: Sequence[TranscriptLine], start: float) -> None:
        events = timeline_events(lines)
        self._events = {event.key: event for event in events}
        rows = timeline_rows(events, self.time_display, start, self.stall_seconds)
        self.query_one("#timeline", KeyedTable).sync(rows)
        self._update_timeline_dump()

    def _render_phases(self, detail: ConversationDetail, start: float) -> None:
        rows = phase_rows(detail.phases, self.time_display, start)
        self.query_one("#phases", KeyedTable).sync(rows)
        empty = self.query_one("#phases-empty", Static)
        empty.display = not rows
        if not rows:
            empty.update(Text("No phase latencies for this conversation.", style="dim"))

    def _cursor_event(self) -> TimelineEvent | None:
        key = self.query_one("#timeline", KeyedTable).cursor_key
        return self._events.get(key) if key is not None else None

    def _event_packet(self, event: TimelineEvent | None) -> PacketRow | None:
        if event is None or event.frame_no is None:
            return None
        return self._packets.get(str(event.frame_no))

    def _update_timeline_dump(self) -> None:
        event = self._cursor_event()
        packet = self._event_packet(event)
        if packet is self._timeline_dumped and packet is not None:
            return
        self._timeline_dumped = packet
        if packet is not None:
            dump = frame_dump(packet, self._read_back(packet))
        elif event is not None and event.frame_no is not None:
            dump = Text(f"Frame {event.frame_no} is no longer in the packet list.", style="dim")
        elif event is not None:
            dump = Text("This line has no packet.", style="dim")
        else:
            dump = frame_dump(None)
        self.query_one("#timeline-hexdump", Static).update(dump)

    def _select_event_packet(self) -> bool:
        """Move the packet list's cursor to the packet of the timeline event under the cursor."""
        packet = self._event_packet(self._cursor_event())
        if packet is None:
            return False
        table = self.query_one("#packets", KeyedTable)
        index = table.get_row_index(str(packet.frame_no))
        if table.cursor_row != index:
            table.move_cursor(row=index)
        self._update_dump()
        return True

    def _update_dump(self) -> None:
        key = self.query_one("#packets", KeyedTable).cursor_key
        packet = self._packets.get(key) if key is not None else None
        if packet is self._dumped and packet is not None:
            return
        self._dumped = packet
        self.query_one("#hexdump", Static).update(frame_dump(packet, self._read_back(packet)))

    def _read_back(self, packet: PacketRow | None) -> tuple[bytes | None, str] | None:
        """Read a packet's bytes from the recorded files when they left memory; None without a recording."""
        read_frame = getattr(self.smtptop.source, "read_frame", None)
        if packet is None or packet.frame is not None or read_frame is None:
            return None
        result: tuple[bytes | None, str] | None = read_frame(self.key, packet.frame_no)
        return result

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "packets":
            self._update_dump()
        elif event.data_table.id == "timeline":
            self._update_timeline_dump()
            # Only the user's cursor moves the packet list, not the first draw of a hidden tab.
            if self.query_one("#tabs", TabbedContent).active == "timeline-tab":
                self._select_event_packet()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter on a row must not bubble up and open another conversation.
        event.stop()
        if event.data_table.id == "timeline" and self._select_event_packet():
            self.action_show_tab("packets-tab")

    def action_save(self) -> None:
        """Open the save screen for this conversation: its packets as pcap, or its transcript as text."""
        screen = SaveScreen({SaveScope.THIS: [self.key]})
        self.app.push_screen(screen, lambda result: notify_saved(self.smtptop, result))

    def action_cycle_time(self) -> None:
        self.time_display = self.time_display.next()
        self.smtptop.time_display = self.time_display
        self._apply_time_labels()
        self._render_detail()

    def _apply_time_labels(self) -> None:
        label = self.time_display.value
        for table_id in ("#packets", "#transcript", "#timeline"):
            self.query_one(table_id, KeyedTable).set_column_label("time", label)
        self.query_one("#phases", KeyedTable).set_column_label("start", label)

    def action_show_tab(self, tab_id: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab_id
        self._focus_tab(tab_id)
        if tab_id == "timeline-tab":
            self._select_event_packet()

    def _focus_tab(self, tab_id: str) -> None:
        # The TCP and TLS tabs have no table, so their scrolling panel takes the focus for the arrow keys.
        if tab_id in ("tcp-tab", "tls-tab"):
            self.query_one(f"#{tab_id.removesuffix('-tab')}-scroll", VerticalScroll).focus()
        else:
            self.query_one(f"#{tab_id.removesuffix('-tab')}", KeyedTable).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # A click on a tab moves the focus to its table, as the number keys do.
        pane_id = event.pane.id or ""
        if pane_id.endswith("-tab"):
            self._focus_tab(pane_id)
