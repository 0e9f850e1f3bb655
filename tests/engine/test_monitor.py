"""The stream monitor's host-memory readings (GPU busy sampling needs NVML: GPU benchmarks)."""

from __future__ import annotations

import sys
import time

import pytest

from virnucpro.engine.monitor import StreamMonitor, current_rss_bytes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux-only")
def test_rss_is_read_on_linux():
    status = {line.split(":")[0]: line.split()[1] for line in open("/proc/self/status") if line.startswith("Vm")}
    vm_rss = int(status["VmRSS"]) * 1024  # the kernel's own figure, kB
    rss = current_rss_bytes()
    assert rss is not None and 0.8 * vm_rss < rss < 1.25 * vm_rss


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux-only")
def test_timeline_splits_shared_memory_from_the_total():
    with StreamMonitor([]) as monitor:
        time.sleep(0.7)  # the first timeline point comes with the first sample, after 0.5 s
    assert monitor.busy_fractions() is None
    seconds, rss_mib, shared_mib = monitor.rss_timeline[0]
    assert 0.4 < seconds < 5
    assert 0 < shared_mib < rss_mib  # libraries are mapped shared; the interpreter's heap is not
    assert monitor.rss_peak_bytes >= rss_mib * 2**20 * 0.5
