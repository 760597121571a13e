"""Operator tooling: `wildrobot up`, the local stack (Redis, front end, workers) on one machine.

It starts the other roles as processes (`python -m wildrobot.server.main`, ...), never imports
them, so the core (`wildrobot/`) stays free of launchers."""
