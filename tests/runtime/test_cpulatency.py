"""The CPU wake-up latency request (Linux PM QoS, ``/dev/cpu_dma_latency``)."""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

import pytest

from spikestream.runtime.cpulatency import DEVICE, CpuLatencyRequest, current_cpu_latency


def open_fds() -> set[str]:
    """Paths this process has open (the directory listing's own fd is gone by readlink)."""
    paths = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):
            paths.add(os.readlink(f"/proc/self/fd/{fd}"))
    return paths


def test_writes_the_limit_as_an_int32_and_holds_the_file_open(tmp_path: Path) -> None:
    device = tmp_path / "qos"
    device.write_bytes(b"")
    request = CpuLatencyRequest(125, device)
    assert not request.held
    assert request.acquire() == "125 us held"
    assert request.held
    assert str(device) in open_fds()  # the kernel keeps the request while the file is open
    assert device.read_bytes() == struct.pack("=i", 125)
    assert current_cpu_latency(device) == 125
    request.release()
    assert not request.held
    assert str(device) not in open_fds()
    assert request.description == "released"


def test_acquiring_twice_holds_one_request(tmp_path: Path) -> None:
    """A second ``acquire`` while held is a no-op: opening the device again would leave
    the first descriptor open after ``release``, and the kernel would keep the request."""
    device = tmp_path / "qos"
    device.write_bytes(b"")
    request = CpuLatencyRequest(50, device)
    assert request.acquire() == "50 us held"
    assert request.acquire() == "50 us held"
    assert device.read_bytes() == struct.pack("=i", 50)  # written once
    request.release()
    assert not request.held
    assert str(device) not in open_fds()


def test_as_a_context_manager_it_releases_on_error(tmp_path: Path) -> None:
    device = tmp_path / "qos"
    device.write_bytes(b"")
    request = CpuLatencyRequest(0, device)

    def fail_while_held() -> None:
        with request:
            assert request.held
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail_while_held()
    assert not request.held
    assert str(device) not in open_fds()


def test_an_unopenable_device_is_reported_not_raised(tmp_path: Path) -> None:
    missing = tmp_path / "absent" / "cpu_dma_latency"
    request = CpuLatencyRequest(0, missing)
    assert request.acquire() == f"not held (No such file or directory: {missing})"
    assert not request.held
    request.release()  # nothing to release; no error
    assert current_cpu_latency(missing) is None


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="must be >= 0 microseconds; got -1"):
        CpuLatencyRequest(-1)


def test_the_real_device_applies_the_strictest_request_while_held() -> None:
    """On Linux as root the kernel's limit becomes ours and returns when we let go;
    without write access the request is reported as not held."""
    before = current_cpu_latency()
    assert before is not None  # Linux exposes the device read-only to everyone
    with CpuLatencyRequest(0) as request:
        during = current_cpu_latency()
    if os.access(DEVICE, os.W_OK):
        assert request.description == "released"
        assert during == 0
        assert current_cpu_latency() == before
    else:
        assert request.description.startswith("not held (")
        assert during == before


def test_a_device_that_refuses_the_write_is_closed_and_reported() -> None:
    """Opened but not written (``/dev/full`` refuses every write): the request is not
    held, and the descriptor is closed rather than left open for the process's life."""
    full = Path("/dev/full")
    request = CpuLatencyRequest(0, full)
    assert request.acquire() == f"not held (No space left on device: {full})"
    assert not request.held
    assert str(full) not in open_fds()


def test_a_short_read_is_no_limit(tmp_path: Path) -> None:
    """A device that yields fewer than four bytes has no limit to report: None, not an
    unpacking error in the statistics."""
    device = tmp_path / "qos"
    device.write_bytes(b"\x01\x02")
    assert current_cpu_latency(device) is None
