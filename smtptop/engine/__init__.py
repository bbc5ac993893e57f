"""The engine: capture source → decoder → flow table → SMTP trackers → snapshots.

One engine serves both front ends: the Textual dashboard and the headless
JSON/report output. Nothing here imports Textual.
"""
