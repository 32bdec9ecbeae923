"""Standard output and error that survive their reader going away.

``spikestream record ... | head -1`` closes the pipe after one line. Python ignores
SIGPIPE, so the next progress line raised BrokenPipeError in the middle of the work,
and the command ended before it wrote its file. A command's lines are a report, not
its result: once a stream's reader is gone, :class:`PipeSafe` sends the rest of that
stream to ``/dev/null`` (at the file descriptor too, so the interpreter's last flush
and any library writing to the descriptor are quiet) and the work goes on.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["PipeSafe", "pipe_safe_streams"]


class PipeSafe:
    """A text stream whose writes and flushes stop at a closed pipe instead of raising.

    Everything else is the wrapped stream's (``fileno``, ``isatty``, ``encoding``...).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_gone = False
        """Whether a write or flush found the reader gone (the rest was discarded)."""

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._silence()

    def _silence(self) -> None:
        self.reader_gone = True
        # What the stream still buffers would fail again at the interpreter's exit.
        with contextlib.suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def pipe_safe_streams() -> Iterator[None]:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in :class:`PipeSafe` for the block."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PipeSafe(saved[0]), PipeSafe(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
