"""smtptop: a top-like monitor for SMTP traffic."""

__version__ = "0.1.0"
