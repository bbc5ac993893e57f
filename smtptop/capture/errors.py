"""Errors a capture source reports to the user; each message names the value and the fix."""


class CaptureError(Exception):
    """A source could not be opened or read; the message is meant for the user as is."""
