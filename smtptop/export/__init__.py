"""Saving conversations: their frames as a pcap file, their SMTP dialogue as text.

``pcap`` writes classic pcap files, ``transcript`` formats a conversation's
dialogue, ``select`` picks conversations by the dashboard's text filter and
``headless`` saves the frames of a whole capture file for ``--save``.
Nothing here imports Textual.
"""
