"""Choosing conversations by text, with the dashboard's ``/`` filter rule, without Textual.

A row matches when the case-folded text occurs in its client, server, stage,
TLS mode, last command or last reply. ``smtptop.ui.rows.row_matches`` applies
the same rule on the dashboard; tests check that the two agree.
"""

from __future__ import annotations

from smtptop.engine.snapshot import ConversationRow


def row_selected(row: ConversationRow, text: str) -> bool:
    """Check whether ``row`` passes the text filter ``text``; an empty or blank text passes every row."""
    # The dashboard strips the filter text when the user submits it.
    needle = text.strip().casefold()
    if not needle:
        return True
    fields = (row.client, row.server, row.stage, row.tls_mode, row.last_command, row.last_reply)
    return any(needle in field.casefold() for field in fields)
