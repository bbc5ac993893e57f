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


def redact_command(verb: str, arg: str, reveal: bool) -> str:
    """Format a client line for display, masking AUTH credentials unless ``reveal``.

    ``verb`` is upper-case as ``CommandRecord`` stores it. An AUTH command keeps its
    mechanism and masks any initial response (RFC 4954 section 4). An empty verb marks
    a SASL response line sent after a 334 challenge, which is masked entirely.
    Other commands are shown as sent.
    """
    if verb == "":
        return mask_sasl_response(arg, reveal)
    if not arg:
        return verb
    if verb == "AUTH" and not reveal:
        mechanism, _, initial_response = arg.partition(" ")
        if initial_response.strip():
            return f"AUTH {mechanism} {MASK}"
        return f"AUTH {mechanism}"
    return f"{verb} {arg}"
