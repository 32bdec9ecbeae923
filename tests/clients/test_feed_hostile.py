"""``spikestream feed`` against hostile input: stdin lines and ``.npy`` files.

Every refusal is the library's own error with a message that names the problem (the tool
prints it as one line), never a traceback, and never costs memory beyond one input.
"""

from __future__ import annotations

import asyncio
import io
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from spikestream.errors import ConfigError
from spikestream_client.codec import DEFAULT_MAX_INPUT_BYTES, OversizePayload, PayloadRejected
from spikestream_client.feed import _stdin_reader, load_samples, parse_line


def test_deeply_nested_line_is_refused_as_too_deep() -> None:
    """The dimension was counted with json.loads before the codec ran, and only
    ValueError was caught: 5000 '[' ended the tool with a RecursionError traceback."""
    for line in ("[" * 5000, "[" * 30_000 + "]" * 30_000, '{"x": ' + "[" * 5000):
        with pytest.raises(PayloadRejected, match="nesting too deep") as info:
            parse_line(line, None)
        assert info.value.reason == "depth"


def test_overlong_line_is_refused_before_parsing() -> None:
    line = "1 " * DEFAULT_MAX_INPUT_BYTES
    with pytest.raises(OversizePayload, match=r"line of 131071 characters exceeds the input limit"):
        parse_line(line, None)
    with pytest.raises(OversizePayload):
        parse_line("[" * (DEFAULT_MAX_INPUT_BYTES + 1), 1)


async def test_stdin_reader_holds_at_most_one_input_of_an_overlong_line() -> None:
    stream = io.BytesIO(b"x" * (10 * DEFAULT_MAX_INPUT_BYTES) + b"\n0.5\n")
    queue: asyncio.Queue[str | bytes | OSError | None] = asyncio.Queue()
    reader = threading.Thread(
        target=_stdin_reader, args=(stream, queue, asyncio.get_running_loop())
    )
    reader.start()
    lines = [await asyncio.wait_for(queue.get(), 10) for _ in range(3)]
    await asyncio.to_thread(reader.join, 10)
    first, second, end = lines
    assert first is not None
    assert len(first) == DEFAULT_MAX_INPUT_BYTES + 1  # the rest of it was skipped
    with pytest.raises(OversizePayload):
        parse_line(first, None)
    assert second == b"0.5\n"
    assert end is None


@pytest.mark.parametrize(
    ("array", "what"),
    [
        (np.array([1 + 2j, 3 + 4j]), "complex128"),
        (np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]"), "datetime64"),
        (np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]), r"\[\('a', '<f8'\)"),
        (np.array([b"1.5", b"2"]), r"\|S3"),
        (np.array(["1.5"]), "<U3"),
    ],
)
def test_npy_of_values_that_are_not_real_numbers_is_refused(
    tmp_path: Path, array: np.ndarray, what: str
) -> None:
    path = tmp_path / "x.npy"
    np.save(path, array)
    with pytest.raises(ConfigError, match=rf"holds {what}.* values; expected real numbers"):
        load_samples(path)


def test_npy_header_claiming_more_than_the_file_holds_allocates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    with path.open("wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
        )
        fh.write(np.zeros(4).tobytes())
    with pytest.raises(ConfigError, match=r"header says shape \(1000000000000,\) of float64"):
        load_samples(path)
    truncated = tmp_path / "short.npy"
    np.save(truncated, np.arange(10.0))
    truncated.write_bytes(truncated.read_bytes()[:-8])
    with pytest.raises(ConfigError, match="but the file holds 72 bytes of data"):
        load_samples(truncated)


def test_npy_of_real_dtypes_and_fortran_order_load_as_float64(tmp_path: Path) -> None:
    expected = np.arange(6.0).reshape(3, 2)
    for array in (
        expected.astype(np.int16),
        expected.astype(np.uint8),
        expected.astype(">f4"),
        np.asfortranarray(expected),
        expected > 2,
    ):
        path = tmp_path / "ok.npy"
        np.save(path, array)
        values, _, _ = load_samples(path)
        assert values.dtype == np.float64
        np.testing.assert_array_equal(values, np.asarray(array, dtype=np.float64))


@pytest.mark.parametrize(
    ("shape", "said"),
    [
        ((5, 0), "(5, 0)"),
        ((0, 3), "(0, 3)"),
        ((0,), "(0, 1)"),
        ((2, 2, 2), "(2, 2, 2)"),
        ((), "()"),
    ],
)
def test_npy_of_a_shape_that_is_no_samples_by_values_is_refused(
    tmp_path: Path, shape: tuple[int, ...], said: str
) -> None:
    """An empty row (``(5, 0)``: no values to send), no rows, or a third axis is refused
    naming the shape: ``(5, 0)`` passed on to a ``max`` of nothing (a ValueError
    traceback), and ``(2, 2, 2)`` to a source of 2-value samples that are 2x2 blocks."""
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(shape))
    expected = re.escape(f"holds an array of shape {said}; expected (samples,) or (samples, dim)")
    with pytest.raises(ConfigError, match=expected):
        load_samples(path)


def test_npy_with_bytes_after_its_data_is_refused(tmp_path: Path) -> None:
    """The header's shape must account for every byte: a file with more after its data
    (two arrays saved into one file, a truncated header rewritten) is not what its header
    says, and playing only its first part would hide that."""
    path = tmp_path / "x.npy"
    with path.open("wb") as fh:
        np.save(fh, np.arange(4.0))
        np.save(fh, np.arange(4.0))
    with pytest.raises(ConfigError, match=r"header says shape \(4,\) of float64 \(32 bytes\)"):
        load_samples(path)
