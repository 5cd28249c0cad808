"""Fixtures: a host harness around a plugin process, cleaned up after each test."""

import sys
from pathlib import Path

import pytest

sys.dont_write_bytecode = True  # the tests must not write into the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the inferd package itself

from host_harness import Host  # noqa: E402

SAMPLE = Path(__file__).resolve().parent / "sample_plugin.py"


@pytest.fixture
def spawn(tmp_path):
    """spawn(script=SAMPLE, **kw) -> Host: starts a plugin (not yet accepted)."""
    hosts = []

    def make(script=SAMPLE, **kw):
        sub = tmp_path / f"h{len(hosts)}"
        sub.mkdir()
        host = Host(sub, Path(script), **kw)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.cleanup()
    for host in hosts:
        assert not host.violations, f"protocol violations by the plugin: {host.violations}"


@pytest.fixture
def host(spawn):
    """The sample plugin, handshake done."""
    h = spawn()
    h.handshake()
    return h
