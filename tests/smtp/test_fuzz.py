"""Random bytes in random chunks never make the conversation raise or hang."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smtptop.direction import Direction
from smtptop.smtp.conversation import SmtpConversation

SMTP_PIECES = [
    b"220 mx\r\n",
    b"250-mx\r\n",
    b"250 ok\r\n",
    b"354 go\r\n",
    b"334 \r\n",
    b"220 ",
    b"EHLO c\r\n",
    b"MAIL FROM:<a@x>\r\n",
    b"RCPT TO:<b@y>\r\n",
    b"DATA\r\n",
    b"BDAT 3 LAST\r\n",
    b"BDAT 99999\r\n",
    b"AUTH LOGIN\r\n",
    b"AUTH PLAIN AGEAYg==\r\n",
    b"STARTTLS\r\n",
    b"\r\n.\r\n",
    b".\r\n",
    b"\n",
    b"\x16\x03\x01\x00\x02",
    b"*\r\n",
    b"\x17\x03\x03\x00\x01x",
    b"QUIT\r\n",
    b"221 2.0.0 bye\r\n",
    b"421 4.4.2 timeout\r\n",
    b"250 2.0.0 Ok: queued as 4Z1Xk25Qmgz9sVW\r\n",
    b"250 2.6.0 <m@h> [InternalId=1, Hostname=X] Queued mail for delivery\r\n",
]

chunk = st.one_of(st.binary(max_size=64), st.sampled_from(SMTP_PIECES))
step = st.tuples(
    st.sampled_from(["client", "server", "client-gap", "server-gap"]),
    chunk,
    st.integers(min_value=0, max_value=5000),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step, max_size=40), implicit=st.booleans())
def test_fuzz_never_raises(steps: list[tuple[str, bytes, int]], implicit: bool) -> None:
    conv = SmtpConversation(implicit_tls=implicit)
    ts = 0.0
    for action, data, length in steps:
        ts += 0.01
        if action == "client":
            conv.receive(Direction.CLIENT_TO_SERVER, data, ts)
        elif action == "server":
            conv.receive(Direction.SERVER_TO_CLIENT, data, ts)
        elif action == "client-gap":
            conv.gap(Direction.CLIENT_TO_SERVER, length, ts)
        else:
            conv.gap(Direction.SERVER_TO_CLIENT, length, ts)
        assert isinstance(conv.waiting_for, str)
        since = conv.waiting_since
        assert since is None or since <= ts
        assert conv.waiting_on in (None, *Direction)
    conv.close(ts + 1)

    assert "parser error" not in conv.anomalies
    for record in conv.commands:
        record.summary()
        if record.reply is not None:
            assert record.reply.reply_class[0] in "2345"
            enhanced = record.reply.enhanced
            assert enhanced is None or enhanced[0] == record.reply.reply_class[0]
    for phase in conv.phase_latencies():
        latency = phase.latency
        assert latency is None or isinstance(latency, float)
    for transaction in conv.transactions:
        assert transaction.queue_id is None or transaction.queue_id
    assert conv.phase.value
