"""benchmarks/remote_visit.py: a first visit over Chromium's throttled network is timed and its
bytes counted. Times are checked only against each other (a throttled link is slower than
loopback), never against a target: speed is measured by running the benchmark."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from benchmarks import remote_visit

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_throttled_first_visit_is_timed_and_counted(server, browser):
    port = urlsplit(server.url).port
    remote_visit.visit(browser, port, mbit=10_000, latency_ms=0)  # the server's own first visit
    loopback = remote_visit.visit(browser, port, mbit=10_000, latency_ms=0)
    remote = remote_visit.visit(browser, port, mbit=20, latency_ms=40)
    for run in (loopback, remote):
        assert 0 < run["sidebar_s"] <= run["complete_s"]
        assert run["kilobytes"] > 1000  # the frontend's scripts at least
    assert remote["kilobytes"] == pytest.approx(loopback["kilobytes"], rel=0.1)  # the same page
    # ~2 MB or more at 20 Mbit/s takes most of a second on its own: the throttle is applied
    assert remote["complete_s"] > loopback["complete_s"] + 0.5
