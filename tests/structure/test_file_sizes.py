"""No module of either package, Python or C, grows past about 800 lines without a stated
reason.

A long file hides its seams: past this size a module usually holds several jobs, and
each should get its own file. An exception goes in ``ALLOWED`` with its reason.
"""

from __future__ import annotations

from pathlib import Path

from tests.structure.imports import PACKAGES, ROOT, modules

LIMIT = 800

#: Modules allowed past the limit, each with the reason.
ALLOWED: dict[str, str] = {
    "clients/spikestream_client/transport/aiomqtt_adapter.py": (
        "the one module that may import aiomqtt and paho and name their private "
        "attributes (private_names.py); what stands without them is already apart "
        "(batch.py, packets.py, tls.py, values.py, window.py, writer.py)"
    ),
}


def c_sources() -> list[Path]:
    """The C extensions' sources: each ``.c`` and the ``.h`` files it includes."""
    return sorted(
        p for root in PACKAGES.values() for ext in ("*.c", "*.h") for p in root.rglob(ext)
    )


def test_no_module_is_over_the_limit() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in [*modules().values(), *c_sources()]
    }
    assert sizes  # the walk found the packages
    # The C sources are walked too: the program interpreter, its tick loop and its frame
    # encoder live there.
    assert "service/spikestream/sim/_native.c" in sizes
    over = {p: n for p, n in sorted(sizes.items()) if n > LIMIT and p not in ALLOWED}
    assert not over, f"modules over {LIMIT} lines (split them, or say why in ALLOWED): {over}"
    # An allowance that is no longer needed goes too.
    for path, reason in ALLOWED.items():
        assert reason.strip()
        assert sizes.get(path, 0) > LIMIT, f"{path}: no longer over"
