"""Facts carried in the text of a server reply: the enhanced status code and the queue ID.

Both are read once per reply or once per message, never per chunk, so plain
regular expressions are cheap enough here.

Pure module: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# RFC 3463 section 2: class "." subject "." detail, where class is 2, 4 or 5 and
# subject and detail have one to three digits. RFC 2034 section 4 puts it first in
# the reply text, followed by a space.
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?= |$)")

# Queue ID formats, tried in this order on each line's text after the reply code
# and the enhanced status code. Each has one group: the ID.
_QUEUE_ID_FORMATS = (
    # Gmail: "OK  1700000000 d2e1a72fcca58-6d0a1b2c3d4sm1234567pfb.12 - gsmtp".
    re.compile(r"(\S+) - gsmtp$"),
    # Microsoft Exchange and Microsoft 365: "<message-id> [InternalId=123, Hostname=X]
    # ... Queued mail for delivery". The receiving server assigns the InternalId, but
    # the message ID usually comes from the client's Message-ID header, so the
    # InternalId is preferred.
    re.compile(r"\[InternalId=(\d+)"),
    # Postfix: "Ok: queued as 4Z1Xk25Qmgz9sVW". Other servers, and aiosmtpd handlers
    # that return such a text, use the same words.
    re.compile(r"\bqueued as ([A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*)", re.IGNORECASE),
    # Exim: "OK id=1kdyd6-0005Fh-Rb".
    re.compile(r"(?:^| )id=([A-Za-z0-9-]+)"),
    # Sendmail: "x9ABCDEF012345 Message accepted for delivery". The ID must contain a
    # digit, so that a plain "Message accepted for delivery" yields none.
    re.compile(r"^([A-Za-z]*\d[A-Za-z0-9]*) Message accepted for delivery", re.IGNORECASE),
    # Exchange without an InternalId: the message ID in angle brackets.
    re.compile(r"^<([^<>\s]+)> .*Queued mail for delivery", re.IGNORECASE),
)


def parse_enhanced_code(code: int, text: str) -> str | None:
    """Return the enhanced status code at the start of ``text``, or None.

    The code counts only when its class equals the first digit of the reply code
    (RFC 3463 section 3), so a 250 reply starting with "5.1.1" has none.
    """
    match = _ENHANCED.match(text)
    if match is None or int(match.group(1)) != code // 100:
        return None
    return match.group(0)


def parse_queue_id(lines: Iterable[str]) -> str | None:
    """Return the queue ID in a reply to end-of-data, or None when no known format matches.

    ``lines`` are the reply lines as sent, code included. A reply with no ID, such as
    aiosmtpd's default "250 OK" or "250 Message accepted for delivery", yields None.
    """
    for line in lines:
        text = line[4:].strip()
        enhanced = _ENHANCED.match(text)
        if enhanced is not None:
            text = text[enhanced.end() :].lstrip()
        for pattern in _QUEUE_ID_FORMATS:
            match = pattern.search(text)
            if match is not None:
                return match.group(1)
    return None
