"""Headless front ends: JSON Lines and a readable report. They must not import Textual."""
