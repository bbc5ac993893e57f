"""Traffic metrics over a sliding window of capture time: rates, reply classes, latency percentiles.

Pure package: it takes capture timestamps as arguments and never reads the
wall clock, and it imports no sockets, files, threads, Textual or engine code.
"""
