"""Ctrl-C and SIGTERM stop a long command at its last checkpoint, however it was started."""

from __future__ import annotations

import signal


def interruptible() -> None:
    """Make SIGINT and SIGTERM raise ``KeyboardInterrupt`` in the main thread.

    Python leaves SIGINT ignored when the process inherits it ignored (a command started in the
    background from a non-interactive shell, ``nohup``), so Ctrl-C or ``kill -INT`` would be
    lost; SIGTERM (``kill``, a scheduler's stop) would end the process without its message.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
