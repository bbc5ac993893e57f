"""32-bit TCP sequence-number arithmetic.

TCP sequence numbers live on a circle of 2**32 values (RFC 9293, section
3.4), so "before" and "after" are only defined for numbers less than half
the circle apart. The comparisons here follow RFC 1982 serial-number
arithmetic with SERIAL_BITS = 32. Pure functions; no imports beyond typing.
"""

from __future__ import annotations

SEQ_MOD = 1 << 32
SEQ_MASK = SEQ_MOD - 1
_HALF = 1 << 31


def seq_add(seq: int, n: int) -> int:
    """Add ``n`` (which may be negative) to ``seq`` modulo 2**32."""
    return (seq + n) & SEQ_MASK


def seq_diff(a: int, b: int) -> int:
    """Return the signed distance ``a - b`` in the range [-2**31, 2**31).

    RFC 1982, section 3.2 leaves the comparison undefined when the two
    numbers are exactly 2**31 apart. This function then returns -2**31,
    so such an ``a`` counts as before ``b``.
    """
    d = (a - b) & SEQ_MASK
    return d - SEQ_MOD if d >= _HALF else d


def seq_lt(a: int, b: int) -> bool:
    """Return True when ``a`` comes before ``b`` (RFC 1982, section 3.2)."""
    return seq_diff(a, b) < 0


def seq_le(a: int, b: int) -> bool:
    """Return True when ``a`` equals ``b`` or comes before it."""
    return seq_diff(a, b) <= 0
