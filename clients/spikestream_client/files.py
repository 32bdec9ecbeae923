"""Small text files whose paths come from outside (a network file, a settings file, a
password file): read only if regular and small, never more than the cap.

A path from a flag or the environment may name a FIFO (reading blocks for ever), a
device such as ``/dev/zero`` (reading never ends) or a huge file: each is refused before
anything is read, and at most ``max_bytes + 1`` bytes are read (a file that grows while
it is read is caught by that extra byte). Callers word the refusal in their own terms
from :attr:`UnreadableFile.kind`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from spikestream_client.errors import ConfigError

__all__ = ["UnreadableFile", "read_small_text", "same_file"]

#: Why a file was refused: it could not be opened or read (``detail`` is the OS's
#: reason), it is not a regular file, it holds more than the cap, or it is not UTF-8.
Kind = Literal["os", "special", "large", "encoding"]


class UnreadableFile(ConfigError):
    """A file refused by :func:`read_small_text`; ``kind`` says why, ``detail`` adds the
    OS's or the decoder's words."""

    def __init__(self, kind: Kind, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind: Kind = kind
        self.detail = detail


def read_small_text(path: str | Path, max_bytes: int) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``max_bytes`` bytes.

    Raises:
        UnreadableFile: with its ``kind``.
    """
    try:
        # O_NONBLOCK: opening a FIFO with no writer would block before fstat could look.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except ValueError as err:  # os.open names no file: a NUL (%00 in a URL), a surrogate
        why = "the path holds a NUL byte" if "\0" in os.fsdecode(path) else f"bad path ({err})"
        raise UnreadableFile("os", why) from None
    except OSError as err:
        raise UnreadableFile("os", err.strerror or type(err).__name__) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("special")
        if info.st_size > max_bytes:
            raise UnreadableFile("large")
        data = b""
        while len(data) <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as err:
        raise UnreadableFile("os", err.strerror or type(err).__name__) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise UnreadableFile("large")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnreadableFile("encoding", str(err)) from None


def same_file(a: Path, b: Path) -> bool:
    """True if ``a`` and ``b`` name one file: the same path once links are resolved, or
    the same inode (a hard link: writing through it overwrites the other)."""
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: compared by inode below, if at all
        pass
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # either is missing: not one existing file
        return False
