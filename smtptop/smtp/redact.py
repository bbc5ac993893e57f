"""The one masking function for AUTH credentials, used by every display and output.

Pure module: standard library only.
"""

from __future__ import annotations

MASK = "****"


def mask_sasl_response(data: str, reveal: bool) -> str:
    """Mask one SASL response line; "*" stays visible because it only cancels the exchange."""
    if reveal or data == "*":
        return data
    return MASK


def redact_command(verb: str, arg: str, reveal: bool, spelled: str = "") -> str:
    """Format a client line for display, masking AUTH credentials unless ``reveal``.

    ``verb`` is upper-case as ``CommandRecord`` stores it. An AUTH command keeps its
    mechanism and masks any initial response (RFC 4954 section 4). An empty verb marks
    a SASL response line sent after a 334 challenge, which is masked entirely.
    Other commands are shown as sent. ``spelled`` is the verb as the client wrote it,
    shown in place of ``verb`` when given.
    """
    if verb == "":
        return mask_sasl_response(arg, reveal)
    shown = spelled or verb
    if not arg:
        return shown
    if verb == "AUTH" and not reveal:
        mechanism, _, initial_response = arg.partition(" ")
        if initial_response.strip():
            return f"{shown} {mechanism} {MASK}"
        return f"{shown} {mechanism}"
    return f"{shown} {arg}"
