"""The systematic-failure rule: when a run's verdicts say the judge, not the rows, is broken."""

from __future__ import annotations

from dataclasses import replace

import pytest

from genrm_rank.errors import SystematicFailureError
from genrm_rank.failure_watch import FailureWatch, systematic_hint
from genrm_rank.parsing import parse_verdict
from genrm_rank.verdict import FailureKind, Verdict

OK = Verdict(score_1=4, score_2=2, ranking=2)


def _failed(error: str = "HTTP 500: boom", kind: FailureKind = FailureKind.UNAVAILABLE) -> Verdict:
    return Verdict.failed(kind, error=error)


def test_the_first_verdicts_all_failed_stop_the_run_at_exactly_start() -> None:
    watch = FailureWatch(start=8)
    for _ in range(7):
        watch.add(_failed())
    with pytest.raises(SystematicFailureError, match=r"The first 8 verdicts of the run all failed"):
        watch.add(_failed())


def test_one_usable_verdict_first_turns_the_start_rule_off() -> None:
    watch = FailureWatch(start=8, window=64, window_failed=60)
    watch.add(OK)
    for _ in range(59):
        watch.add(_failed())  # 59 failed of 60: below the window rule
    with pytest.raises(SystematicFailureError, match=r"60 of the last 61 verdicts failed"):
        watch.add(_failed())


def test_the_window_forgets_old_failures() -> None:
    watch = FailureWatch(start=8, window=10, window_failed=9)
    watch.add(OK)
    for _ in range(100):  # 8 failed, 2 usable in every window of 10: never 9 of 10
        for _ in range(8):
            watch.add(_failed())
        watch.add(OK)
        watch.add(OK)
    assert watch.failed_seen == 800


def test_cached_verdicts_are_not_counted() -> None:
    watch = FailureWatch(start=2)
    cached = replace(Verdict.failed(FailureKind.UNREADABLE, error="x"), cached=True)
    for _ in range(10):
        watch.add(cached)
    watch.add(_failed())
    assert watch.failed_seen == 1


def test_few_requests_in_flight_until_a_verdict_is_usable() -> None:
    watch = FailureWatch(probe_in_flight=8)
    assert watch.in_flight_limit(512) == 8
    assert watch.in_flight_limit(4) == 4
    watch.add(_failed())
    assert watch.in_flight_limit(512) == 8
    watch.add(OK)
    assert watch.in_flight_limit(512) == 512


def test_the_message_names_the_main_kind_quotes_it_and_says_the_fix() -> None:
    watch = FailureWatch(start=3)
    watch.add(_failed("HTTP 500: boom"))
    watch.add(_failed("http://h/v1: HTTP 429: Too many requests"))
    with pytest.raises(SystematicFailureError) as info:
        watch.add(Verdict.failed(FailureKind.UNREADABLE, raw="I cannot decide", error="no verdict"))
    message = str(info.value)
    assert "(unavailable: 2, unreadable: 1)" in message
    assert "Last unavailable verdict: http://h/v1: HTTP 429: Too many requests" in message
    assert "lower argument 'concurrency'" in message


@pytest.mark.parametrize(
    ("verdict", "words"),
    [
        (_failed("no answer after 6 tries; last: u: HTTP 429: slow down"), "concurrency"),
        (_failed("u: timed out after 2 s"), "raise argument 'timeout'"),
        (_failed("u: malformed response (JSONDecodeError: x); the body began: '<html>'"), "proxy"),
        (_failed("u: malformed response (_EmptyChoicesError: 'choices' is empty)"), "no choices"),
        (_failed("u: HTTP 502: bad gateway"), "see its log"),
        (parse_verdict('{"score_1": 4, "score_2": 2, "ranking": 2}'), "pass thinking=False"),
        (Verdict.failed(FailureKind.TRUNCATED, error="cut"), "'max_tokens'"),
        (Verdict.failed(FailureKind.REJECTED, error="HTTP 400: bad"), "request options"),
        (Verdict.failed(FailureKind.UNREADABLE, error="no verdict"), "is argument 'model' a GenRM"),
    ],
)
def test_each_persistent_fault_gets_its_own_fix(verdict: Verdict, words: str) -> None:
    assert words in systematic_hint(verdict)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"start": 0}, "start"),
        ({"window": True}, "window"),
        ({"probe_in_flight": 1.5}, "probe_in_flight"),
        ({"window": 4, "window_failed": 5}, "window_failed"),
    ],
)
def test_bad_thresholds_are_refused_by_name(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=f"Argument '{name}'"):
        FailureWatch(**kwargs)  # type: ignore[arg-type]
