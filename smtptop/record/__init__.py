"""Recording captured frames to pcap files with tcpdump's -w -G -C -W -Z -U rotation, plus --keep.

The front end builds a RecordConfig, calls ``Recorder.check`` before the
capture starts, then ``start``, ``submit`` for every batch and ``close``.
"""

from smtptop.record.options import RecordConfig, RecordError, parse_file_size
from smtptop.record.recorder import FrameLocation, Recorder, RecorderStats

__all__ = [
    "FrameLocation",
    "RecordConfig",
    "RecordError",
    "Recorder",
    "RecorderStats",
    "parse_file_size",
]
