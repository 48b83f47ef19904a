"""benchmarks/remote_visit.py: a first visit over Chromium's throttled network is timed and its
bytes counted. No time is checked against a target (speed is measured by running the benchmark);
only against what the link allows: the bytes received cannot cross a 5 Mbit/s link faster than
their size says, however idle or busy the machine is."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from benchmarks import remote_visit

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The throttled link's rate: ~4.7 MB then needs ~7.5 s, more than a loaded machine's loopback.
MBIT = 5


def test_a_throttled_first_visit_is_timed_and_counted(server, browser):
    port = urlsplit(server.url).port
    remote_visit.visit(browser, port, mbit=10_000, latency_ms=0)  # the server's own first visit
    loopback = remote_visit.visit(browser, port, mbit=10_000, latency_ms=0)
    remote = remote_visit.visit(browser, port, mbit=MBIT, latency_ms=40)
    for run in (loopback, remote):
        assert 0 < run["sidebar_s"] <= run["complete_s"]
        assert run["kilobytes"] > 1000  # the frontend's scripts at least
    assert remote["kilobytes"] == pytest.approx(loopback["kilobytes"], rel=0.1)  # the same page
    transfer_s = remote["kilobytes"] * 8 / 1000 / MBIT  # the throttle is applied
    assert remote["complete_s"] >= 0.9 * transfer_s
