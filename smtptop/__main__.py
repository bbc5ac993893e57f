"""``python -m smtptop``."""

from smtptop.cli import main

raise SystemExit(main())
