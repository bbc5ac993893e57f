"""Capture sources: live interfaces (pypcap) and pcap/pcapng files or streams.

Every source yields batches of ``(ts, data, wire_len)`` tuples for one link
type, so the engine does not care where frames come from.
"""
