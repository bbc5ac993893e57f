"""Pure text formatting for the front ends: hex dumps, times, durations, safe cell text.

Nothing here imports Textual or touches the engine, so the headless output can
share these helpers with the UI.
"""
