"""The internal Lambda extension that keeps the environment from freezing before usage writes are done,
against a fake Extensions API on loopback that records when each `event/next` call arrives."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from shared.adapters.lambda_extension import (
    DEFAULT_NAME,
    FreezeGuard,
    InvocationTracker,
    counts_as_invocation,
    settle_timeout,
)
from tests.fakes.lambda_runtime_api import PREFIX, FakeExtensionsApi

MARGIN = 0.5


@pytest.fixture
def fake() -> Iterator[FakeExtensionsApi]:
    with FakeExtensionsApi() as api:
        yield api


@pytest.fixture
def tracker() -> InvocationTracker:
    return InvocationTracker()


@pytest.fixture
def guard(fake: FakeExtensionsApi, tracker: InvocationTracker) -> Iterator[FreezeGuard]:
    """Not started; stopped before the fake goes away."""
    guard = FreezeGuard(tracker=tracker, margin=MARGIN)
    yield guard
    guard.stop()


def started(guard: FreezeGuard, fake: FakeExtensionsApi) -> FreezeGuard:
    assert guard.start(fake.runtime_api)
    fake.wait_for_next_calls(1)  # Init is complete only once the extension has called next
    return guard


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def api_call(
    runtime_api: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str], dict[str, object]]:
    conn = http.client.HTTPConnection(runtime_api, timeout=5)
    try:
        conn.request(method, PREFIX + path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"{}")
    finally:
        conn.close()


# -- registration ---------------------------------------------------------------------------------------


def test_registers_for_invoke_only_and_calls_next_to_end_init(fake: FakeExtensionsApi, guard: FreezeGuard) -> None:
    assert guard.start(fake.runtime_api)

    [registration] = fake.registrations
    assert registration.name == DEFAULT_NAME
    assert registration.events == ("INVOKE",)
    assert not registration.external
    assert guard.identifier == registration.identifier
    [call] = fake.wait_for_next_calls(1)
    assert call.identifier == registration.identifier
    assert guard.running


def test_no_extensions_api_returns_false_quickly_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    guard = FreezeGuard(tracker=InvocationTracker(), register_timeout=1.0)
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="omniroute.lambda_extension"):
        assert guard.start(closed_port()) is False
    assert time.monotonic() - began < 1.0
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "not registered" in caplog.records[0].getMessage()
    assert not guard.running
    assert guard.identifier is None


def test_registration_after_init_is_refused(
    fake: FakeExtensionsApi, guard: FreezeGuard, caplog: pytest.LogCaptureFixture
) -> None:
    fake.close_registration()  # LWA already called /runtime/invocation/next
    with caplog.at_level(logging.WARNING, logger="omniroute.lambda_extension"):
        assert guard.start(fake.runtime_api) is False
    assert "Extension.RegistrationClosed" in caplog.records[0].getMessage()
    assert fake.registrations == []
    assert fake.next_calls == []


def test_start_twice_is_a_bug(fake: FakeExtensionsApi, guard: FreezeGuard) -> None:
    started(guard, fake)
    with pytest.raises(RuntimeError):
        guard.start(fake.runtime_api)


def test_needs_exactly_one_source_of_settled() -> None:
    with pytest.raises(ValueError, match="either"):
        FreezeGuard()
    with pytest.raises(ValueError, match="either"):
        FreezeGuard(lambda timeout: True, tracker=InvocationTracker())


# -- holding invocations --------------------------------------------------------------------------------


def test_next_waits_for_a_late_request_and_its_pending_write(
    fake: FakeExtensionsApi, guard: FreezeGuard, tracker: InvocationTracker
) -> None:
    started(guard, fake)
    fake.invoke(deadline_in=10.0)
    [delivered] = fake.wait_for_deliveries(1)

    time.sleep(0.05)  # LWA forwards the request only now: nothing is in flight yet, and that must not count
    assert len(fake.next_calls) == 1
    request_began = time.monotonic()
    tracker.request_started()
    tracker.work_added()  # the usage write is queued before the response completes
    tracker.request_finished()

    time.sleep(0.1)  # the write is still running
    assert len(fake.next_calls) == 1
    write_done = time.monotonic()
    tracker.work_done()

    calls = fake.wait_for_next_calls(2)
    assert delivered.at < request_began
    assert calls[1].at >= write_done
    assert guard.invokes_seen == 1


def test_a_request_that_beats_the_invoke_event_settles_at_once(
    fake: FakeExtensionsApi, guard: FreezeGuard, tracker: InvocationTracker
) -> None:
    started(guard, fake)
    # LWA relays the request and the write finishes before the guard's thread even reads its INVOKE.
    tracker.request_started()
    tracker.work_added()
    tracker.request_finished()
    tracker.work_done()
    fake.invoke(deadline_in=10.0)
    calls = fake.wait_for_next_calls(2, timeout=2.0)
    assert len(calls) == 2


def test_never_holds_past_the_deadline(
    fake: FakeExtensionsApi, guard: FreezeGuard, tracker: InvocationTracker, caplog: pytest.LogCaptureFixture
) -> None:
    started(guard, fake)
    with caplog.at_level(logging.WARNING, logger="omniroute.lambda_extension"):
        fake.invoke(deadline_in=1.0, request_id="req-stuck")
        invoked = time.monotonic()
        tracker.request_started()
        tracker.work_added()
        tracker.request_finished()  # ... and the write never finishes
        calls = fake.wait_for_next_calls(2)
    waited = calls[1].at - invoked
    assert 1.0 - MARGIN - 0.1 <= waited < 1.0  # released at deadline - margin, before the deadline
    assert any("req-stuck" in r.getMessage() for r in caplog.records)
    tracker.work_done()


def test_several_invocations_in_a_row(fake: FakeExtensionsApi, guard: FreezeGuard, tracker: InvocationTracker) -> None:
    started(guard, fake)
    for n in range(1, 4):
        fake.invoke(deadline_in=10.0)
        fake.wait_for_deliveries(n)
        time.sleep(0.02)
        tracker.request_started()
        tracker.work_added()
        tracker.request_finished()
        time.sleep(0.03)
        assert len(fake.next_calls) == n
        write_done = time.monotonic()
        tracker.work_done()
        calls = fake.wait_for_next_calls(n + 1)
        assert calls[n].at >= write_done
    assert guard.invokes_seen == 3
    assert tracker.requests_started == 3


def test_an_invocation_whose_request_never_came_does_not_hold_the_next_ones(
    fake: FakeExtensionsApi, guard: FreezeGuard, tracker: InvocationTracker, caplog: pytest.LogCaptureFixture
) -> None:
    started(guard, fake)
    with caplog.at_level(logging.WARNING, logger="omniroute.lambda_extension"):
        fake.invoke(deadline_in=0.7)  # LWA answered this one without reaching the app
        fake.wait_for_next_calls(2)
    assert guard.invokes_seen == 0  # written off

    fake.invoke(deadline_in=10.0)
    fake.wait_for_deliveries(2)
    tracker.request_started()
    tracker.request_finished()
    calls = fake.wait_for_next_calls(3, timeout=2.0)
    assert len(calls) == 3


def test_a_failing_settled_callback_still_lets_lambda_go_on(
    fake: FakeExtensionsApi, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(timeout: float) -> bool:
        raise KeyError("bug")

    guard = FreezeGuard(broken)
    try:
        started(guard, fake)
        with caplog.at_level(logging.ERROR, logger="omniroute.lambda_extension"):
            fake.invoke(deadline_in=10.0)
            fake.wait_for_next_calls(2)
        assert any(r.exc_info for r in caplog.records)
        assert guard.running
    finally:
        guard.stop()


def test_a_callback_gets_the_time_left_before_the_deadline_minus_the_margin(fake: FakeExtensionsApi) -> None:
    seen: list[float] = []

    def record(timeout: float) -> bool:
        seen.append(timeout)
        return True

    guard = FreezeGuard(record, margin=0.25, max_wait=60.0)
    try:
        started(guard, fake)
        fake.invoke(deadline_in=5.0)
        fake.wait_for_next_calls(2)
        fake.invoke(deadline_in=600.0)
        fake.wait_for_next_calls(3)
    finally:
        guard.stop()
    assert 4.5 < seen[0] <= 4.75
    assert seen[1] == 60.0  # capped


def test_an_api_error_on_next_is_reported_and_ends_the_thread(
    fake: FakeExtensionsApi, guard: FreezeGuard, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next(500)
    with caplog.at_level(logging.ERROR, logger="omniroute.lambda_extension"):
        assert guard.start(fake.runtime_api)
        [report] = fake.wait_for_errors(1)
    assert report.kind == "exit"
    assert report.identifier == guard.identifier
    assert report.error_type.startswith("Fatal.")
    assert json.loads(report.body)["errorType"] == report.error_type
    guard.stop()
    assert not guard.running


def test_stop_unblocks_a_pending_next_without_reporting_an_error(fake: FakeExtensionsApi, guard: FreezeGuard) -> None:
    started(guard, fake)
    guard.stop()
    assert not guard.running
    assert fake.errors == []


# -- the tracker and who counts ------------------------------------------------------------------------


def test_tracker_waits_for_a_request_per_invocation_then_idle() -> None:
    tracker = InvocationTracker()
    assert tracker.wait_settled(0, 0.0)
    assert not tracker.wait_settled(1, 0.02)  # INVOKE seen, its request not started yet
    tracker.request_started()
    assert not tracker.wait_settled(1, 0.02)  # in flight
    tracker.work_added()
    tracker.request_finished()
    assert not tracker.wait_settled(1, 0.02)  # write pending
    tracker.work_done()
    assert tracker.wait_settled(1, 0.0)
    assert (tracker.requests_started, tracker.in_flight, tracker.pending_work) == (1, 0, 0)


def test_tracker_wakes_a_waiter_when_the_last_write_finishes() -> None:
    tracker = InvocationTracker()
    tracker.request_started()
    tracker.work_added()
    tracker.request_finished()
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(tracker.wait_settled(1, 5.0)))
    waiter.start()
    time.sleep(0.02)
    tracker.work_done()
    waiter.join(5.0)
    assert result == [True]


def test_tracker_rejects_unmatched_calls() -> None:
    tracker = InvocationTracker()
    with pytest.raises(RuntimeError):
        tracker.request_finished()
    with pytest.raises(RuntimeError):
        tracker.work_done()


def test_readiness_probes_are_not_counted_so_they_neither_satisfy_nor_hold_an_invocation() -> None:
    """The caller decides what counts: only requests LWA relayed for an invocation (they carry
    x-amzn-lambda-context). LWA's /healthz probe has none, so the middleware skips the tracker for it."""
    probe = [(b"host", b"127.0.0.1:8080")]
    relayed = [(b"host", b"abc.lambda-url.us-east-1.on.aws"), (b"x-amzn-lambda-context", b'{"request_id":"r1"}')]
    assert not counts_as_invocation(probe)
    assert counts_as_invocation(relayed)

    tracker = InvocationTracker()

    def serve(headers: list[tuple[bytes, bytes]], finish: bool = True) -> None:
        if counts_as_invocation(headers):
            tracker.request_started()
            if finish:
                tracker.request_finished()

    serve(probe, finish=False)  # a probe still being answered: not in flight as far as the guard cares
    assert not tracker.wait_settled(1, 0.02)  # ... and it is not the invocation's request either
    serve(relayed)
    assert tracker.wait_settled(1, 0.0)


@pytest.mark.parametrize(
    ("deadline_ms", "expected"),
    [
        (10_000_000 + 5_000, 4.5),  # 5 s left, 0.5 s margin
        (10_000_000 + 300, 0.0),  # inside the margin: do not wait at all
        (10_000_000 - 1_000, 0.0),  # already past
        (10_000_000 + 2_000_000, 30.0),  # capped
        (None, 30.0),  # no usable deadline: the cap
        ("soon", 30.0),
        (True, 30.0),
    ],
)
def test_settle_timeout(deadline_ms: object, expected: float) -> None:
    assert settle_timeout(deadline_ms, now=10_000.0, margin=0.5, cap=30.0) == pytest.approx(expected)


# -- the fake checks what Lambda checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "error_type"),
    [
        ({}, b'{"events": ["INVOKE"]}', "Extension.InvalidExtensionName"),
        ({"Lambda-Extension-Name": "x"}, b'{"events": ["INVOKE", "SHUTDOWN"]}', "Extension.InvalidEventType"),
        ({"Lambda-Extension-Name": "x"}, b'{"events": ["NOPE"]}', "Extension.InvalidEventType"),
        ({"Lambda-Extension-Name": "x"}, b"not json", "InvalidRequestFormat"),
    ],
)
def test_fake_refuses_registrations_lambda_refuses(
    fake: FakeExtensionsApi, headers: dict[str, str], body: bytes, error_type: str
) -> None:
    status, _, answer = api_call(fake.runtime_api, "POST", "/register", headers, body)
    assert (status, answer["errorType"]) == (403, error_type)


def test_fake_registration_answer_and_its_rules(fake: FakeExtensionsApi) -> None:
    headers = {"Lambda-Extension-Name": "x", "Lambda-Extension-Accept-Feature": "accountId"}
    status, response_headers, answer = api_call(fake.runtime_api, "POST", "/register", headers, b'{"events": []}')
    assert status == 200
    assert response_headers["Lambda-Extension-Identifier"]
    assert answer == {
        "functionName": "omniroute-gateway",
        "functionVersion": "$LATEST",
        "handler": "run.sh",
        "accountId": "123456789012",
    }
    status, _, answer = api_call(fake.runtime_api, "POST", "/register", headers, b'{"events": []}')
    assert (status, answer["errorType"]) == (403, "Extension.InvalidExtensionState")  # same name twice

    identifier = response_headers["Lambda-Extension-Identifier"]
    status, _, answer = api_call(fake.runtime_api, "GET", "/event/next", {})
    assert (status, answer["errorType"]) == (403, "Extension.MissingExtensionIdentifier")
    error_headers = {"Lambda-Extension-Identifier": identifier, "Lambda-Extension-Function-Error-Type": "Fatal.X"}
    status, _, _ = api_call(fake.runtime_api, "POST", "/init/error", error_headers, b"{}")
    assert status == 202
    status, _, answer = api_call(fake.runtime_api, "GET", "/event/next", {"Lambda-Extension-Identifier": identifier})
    assert (status, answer["errorType"]) == (403, "Extension.InvalidExtensionState")  # nothing works after an error
    assert [e.kind for e in fake.errors] == ["init"]
