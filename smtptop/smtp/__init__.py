"""The sans-IO SMTP conversation: commands, replies, transactions and phases from bytes.

``SmtpConversation`` in ``conversation`` is the entry point; ``events`` contains what
it returns, ``redact`` the masking of AUTH credentials for every display.
"""
