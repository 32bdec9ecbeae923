"""The ``.npz`` writer's block-by-block members: what a run writes tick block by tick
block reads back as the rows given, in the order given (pure: a temporary folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikestream_client.npz import NpzWriter


@pytest.mark.parametrize("spool", [False, True])
def test_blocks_written_from_one_reused_buffer_keep_their_own_rows(
    spool: bool, tmp_path: Path
) -> None:
    """A run fills one buffer per block and reuses it for the next: the writer must keep
    each block's rows as they were when written (a block kept by reference read back as
    the last block's rows, repeated), in the order written, spooled or not."""
    buffer = np.empty((2, 3), dtype=np.float32)
    with NpzWriter(tmp_path / "r.npz") as npz:
        stream = npz.stream("v", (6, 3), np.dtype(np.float32), spool=spool)
        for block in range(3):
            buffer[:] = np.arange(6, dtype=np.float32).reshape(2, 3) + 10 * block
            stream.write(buffer)
    want = np.concatenate([np.arange(6.0).reshape(2, 3) + 10 * b for b in range(3)])
    with np.load(tmp_path / "r.npz") as data:
        assert data["v"].dtype == np.float32
        np.testing.assert_array_equal(data["v"], want)
