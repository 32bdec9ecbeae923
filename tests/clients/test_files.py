"""``spikestream_client.files``: the small file helpers the tools and the service share."""

from __future__ import annotations

import os
from pathlib import Path

from spikestream_client.files import same_file


def test_a_hard_link_is_the_same_file(tmp_path: Path) -> None:
    """Two names of one inode are one file (writing through one overwrites the other);
    two files with equal content are not."""
    a = tmp_path / "a.npz"
    a.write_bytes(b"x")
    b = tmp_path / "b.npz"
    os.link(a, b)
    c = tmp_path / "c.npz"
    c.write_bytes(b"x")
    assert same_file(a, b)
    assert not same_file(a, c)
    assert not same_file(a, tmp_path / "missing.npz")


def test_one_path_named_two_ways_is_the_same_file_before_it_exists(tmp_path: Path) -> None:
    """An output not written yet, named once plainly and once through ``..`` or a link
    to its folder, is one file: refusing to overwrite an input must not wait for the
    file to exist (no inode to compare yet)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "sub")
    out = tmp_path / "sub" / "out.npz"
    assert not out.exists()
    assert same_file(out, tmp_path / "sub" / ".." / "sub" / "out.npz")
    assert same_file(out, tmp_path / "alias" / "out.npz")
    assert not same_file(out, tmp_path / "sub" / "other.npz")
