"""The smtptop benchmark: load capture, offline, live, scale and profile steps; run with bench/run.sh."""
