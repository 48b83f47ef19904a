"""The load test (benchmarks/loadtest.py) and its websocket client (benchmarks/st_protocol.py).

Smoke only: N = 2 sessions through ``make serve``'s layout (2 workers behind HAProxy) must both
complete, read the same patient counts, and be spread over both workers; the protocol client must
see exactly what a real Chromium session sees (same deltas, same bytes) for the load test's
scenario. No timing is asserted: speed is measured by ``make loadtest``, not by unit tests.
"""

from __future__ import annotations

import re
import shutil

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from benchmarks import loadtest
from benchmarks.st_protocol import TESTED_STREAMLIT, Session, installed_streamlit
from tests import browser_utils as bu


def _msg(**fields) -> bytes:
    msg = ForwardMsg(**fields)
    return msg.SerializeToString()


def test_frames_are_split_into_renders_at_each_successful_finish():
    delta = ForwardMsg()
    delta.delta.new_element.markdown.body = "x" * 50
    frames = [_msg(session_status_changed={}), delta.SerializeToString(), _msg(ref_hash="abc"),
              _msg(script_finished=ForwardMsg.ScriptFinishedStatus.Value("FINISHED_SUCCESSFULLY")),
              delta.SerializeToString(),
              _msg(script_finished=ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")),
              delta.SerializeToString(),
              _msg(script_finished=ForwardMsg.ScriptFinishedStatus.Value("FINISHED_SUCCESSFULLY"))]
    renders = loadtest.renders_of_frames(frames)
    assert [r["deltas"] for r in renders] == [2, 2]
    assert renders[0]["bytes"] == len(frames[1]) + len(frames[2])


def test_inconsistent_counts_fail_the_session_that_read_them():
    results = [loadtest.SessionResult(i, ok=True, counts={"opened": "n = 10"}) for i in range(3)]
    results[2].counts["opened"] = "n = 9"
    seen = loadtest.mark_inconsistent(results)
    assert seen == {"opened": ["n = 10", "n = 9"]}
    assert [r.ok for r in results] == [True, True, False]
    assert "n = 9" in results[2].reason


def test_targets_need_every_session_within_the_limit():
    def level(sessions, first_max, second_max, failed=0, first_n=None):
        return {"sessions": sessions, "failed": failed,
                "first_render_s": {"n": sessions if first_n is None else first_n, "max": first_max},
                "second_render_s": {"n": sessions, "max": second_max}}

    met = {c["target"]: c["met"] for c in loadtest.evaluate({"30": level(30, 4.9, 2.9), "60": level(60, 9.0, 5.0)})}
    assert all(met.values()), met
    missed = loadtest.evaluate({"30": level(30, 4.0, 3.5), "60": level(60, 9.0, 5.0, failed=1, first_n=59)})
    assert [c["met"] for c in missed] == [True, False, False, False]


def test_client_refuses_addresses_beyond_loopback():
    with pytest.raises(ValueError, match="loopback"):
        Session("http://example.org:8501")


def test_client_was_checked_against_the_locked_streamlit():
    # The client speaks Streamlit's wire format; after the lock moves Streamlit, re-run the
    # fidelity check (python -m benchmarks.loadtest --fidelity) and update TESTED_STREAMLIT.
    # (The lowest/latest dependency runs install other versions on purpose: the lock is the
    # version the benchmark's numbers are for.)
    lock = (bu.ROOT / "requirements.lock").read_text()
    locked = re.search(r"^streamlit==([0-9.]+)", lock, re.M).group(1)
    assert locked.split(".")[:2] == TESTED_STREAMLIT.split(".")[:2]
    assert installed_streamlit()  # the benchmark can read the installed version


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("haproxy") is None, reason="HAProxy is not installed (apt-get install haproxy)")
def test_two_sessions_through_make_serve_layout():
    report = loadtest.measure_target("serve", [2], step_timeout=120, level_timeout=240, settle=0,
                                     log=lambda message: None)
    assert all(w["ok"] for w in report["warmup"].values()), report["warmup"]
    level = report["levels"]["2"]
    assert level["succeeded"] == 2, level["failures"]
    assert level["sessions_per_worker"] == {"w1": 1, "w2": 1}
    assert len(level["counts_read"]["opened"]) == 1
    assert len(level["counts_read"]["her2_positive"]) == 1
    assert level["counts_read"]["opened"] != level["counts_read"]["her2_positive"]
    assert len(level["first_render_messages"]["deltas"]) == 1  # both sessions got the same page
    assert set(level["server_cpu_s"]) == {"w1", "w2", "haproxy"}


@pytest.mark.browser
@pytest.mark.slow
def test_protocol_client_sees_what_chromium_sees():
    bu.require_browser()
    with bu.streamlit_server() as server:
        result = loadtest.fidelity(server.url)
    assert result["chromium"]["runs"] == 2
    assert result["chromium"]["error_boxes"] == 0
    assert result["protocol_client"]["error_boxes"] == 0
    assert result["chromium"]["first"] == result["protocol_client"]["first"]
    assert result["chromium"]["second"] == result["protocol_client"]["second"]


def test_session_reports_error_boxes():
    from benchmarks.st_protocol import element_errors

    msg = ForwardMsg()
    msg.delta.new_element.alert.body = "boom"
    msg.delta.new_element.alert.format = 1
    assert element_errors(msg.delta.new_element) == ["error box: boom"]
    msg.delta.new_element.exception.type = "ValueError"
    assert element_errors(msg.delta.new_element)[0].startswith("exception: ValueError")


def test_widgets_are_found_by_their_user_key():
    from benchmarks.st_protocol import _widget

    msg = ForwardMsg()
    element = msg.delta.new_element
    element.multiselect.id = "$$ID-0123abcd-f_her2"
    element.multiselect.options.extend(["negative", "positive"])
    key, widget = _widget(element)
    assert (key, widget.kind, widget.id) == ("f_her2", "multiselect", "$$ID-0123abcd-f_her2")
    assert widget.options == ("negative", "positive")
    element.multiselect.id = "$$ID-0123abcd-a-key-with-dashes"
    assert _widget(element)[0] == "a-key-with-dashes"
    element.multiselect.id = "$$ID-0123abcd-None"  # drawn without key=
    assert _widget(element) is None
    element.markdown.body = "no widget"
    assert _widget(element) is None


def test_spinners_and_placeholders_are_not_counted_as_page_content():
    # A cache miss under load shows a spinner; a cache hit does not; an st.empty() slot is sent
    # or coalesced with what replaces it depending on timing. The page's delta count must not
    # depend on either, or two sessions of one page look like two pages.
    from benchmarks.st_protocol import is_transient

    def element(kind):
        msg = ForwardMsg()
        getattr(msg.delta.new_element, kind).SetInParent()
        return msg

    spinner = ForwardMsg()
    spinner.delta.new_transient.SetInParent()
    assert is_transient(spinner)
    assert is_transient(element("empty"))
    assert not is_transient(element("markdown"))
    assert not is_transient(element("download_button"))
    block = ForwardMsg()
    block.delta.add_block.SetInParent()
    assert not is_transient(block)


def test_profile_hotspots_name_the_innermost_line_of_ours_per_thread():
    from pathlib import Path

    from benchmarks.profile_render import hotspots

    root = Path("/app")
    raw = "\n".join([
        "_run_script_thread (/x/streamlit/script_runner.py:1);<module> (/app/pages/3_Survival.py:9);"
        "table (/app/ui.py:1123);dataframe (/app/.venv/lib/site-packages/streamlit/arrow.py:5) 7",
        "_run_script_thread (/x/streamlit/script_runner.py:1);<module> (/app/pages/3_Survival.py:9) 2",
        "run_forever (/usr/lib/python3.11/asyncio/base_events.py:3);send (/x/websockets.py:4) 5",
        "garbage line",
    ])
    counts = hotspots(raw, root)
    assert counts == {("script thread", "table (ui.py:1123)"): 7,
                      ("script thread", "<module> (pages/3_Survival.py:9)"): 2,
                      ("server event loop", "(library only)"): 5}
