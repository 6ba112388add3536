"""`make chaos`'s judgement on crafted data: each broken property fails its check."""

from typing import Any

from bench.chaos_faults import KINDS, schedule
from bench.chaos_report import (
    PROBLEM_JSON,
    Answer,
    Final,
    checks,
    contradictions,
    markdown_table,
    summarise,
    undocumented_errors,
)
from bench.stack import error_kinds

PAID = Final("w-paid", "k-paid", "SUCCESS")
REFUSED = Final("w-refused", "k-refused", "FAILED")
SLOW = Final("w-slow", "k-slow", "SUCCESS")  # answered 202, paid by the reconciler later
UNKNOWN = Final("w-unknown", "k-unknown", "SUCCESS")  # answered 503 OUTCOME_UNKNOWN
FINALS = [PAID, REFUSED, SLOW, UNKNOWN]
CLEAN_BOOKS = {
    "accepted": 4,
    "finished": 4,
    "succeeded": 3,
    "failed": 1,
    "still_open": 0,
    "paid_twice": 0,
    "paid_without_withdrawal": 0,
    "released_after_paid": 0,
}


def problem(key: str, http: int, code: str, **fields: Any) -> Answer:
    return Answer(key, http, PROBLEM_JSON, code=code, **fields)


ANSWERS = [
    Answer("k-paid", 200, "application/json", "SUCCESS", "w-paid"),
    problem("k-refused", 422, "SETTLEMENT_REFUSED", status="FAILED", withdrawal_id="w-refused"),
    Answer("k-slow", 202, "application/json", "PROCESSING", "w-slow"),
    problem("k-unknown", 503, "OUTCOME_UNKNOWN"),
    problem("k-busy", 503, "DATABASE_BUSY"),  # nothing stored: no withdrawal has this key
    problem("k-poor", 409, "INSUFFICIENT_MERCHANT_CREDIT"),
    Answer("k-cut", 0),  # a connection cut by a killed worker: any outcome is allowed
]


def run_figures(answers: list[Answer], finals: list[Final], **books: int) -> dict[str, Any]:
    figures = summarise(answers, finals, CLEAN_BOOKS | books)
    faults = [{"kind": kind, "ok": True} for kind in KINDS]
    hostile = {"sent": 45, "unanswered": 0, "unexpected": 0}
    return figures | {"mode": "sync", "faults": faults, "hostile": hostile, "audit_ok": True}


def test_a_clean_run_passes_every_check() -> None:
    figures = run_figures(ANSWERS, FINALS)
    assert checks(figures) == dict.fromkeys(checks(figures), True)
    assert figures["answers_by_class"] == {"2xx": 2, "4xx": 2, "5xx": 2, "no answer": 1}
    assert figures["five_xx"] == 2 and figures["answered_accepted"] == 2


def test_a_success_answer_for_a_withdrawal_that_ended_failed_is_a_contradiction() -> None:
    lied = Answer("k-refused", 200, "application/json", "SUCCESS", "w-refused")
    found = contradictions([*ANSWERS, lied], FINALS)
    assert found == [
        "answered 200 SUCCESS (key k-refused), but the withdrawal w-refused ended FAILED"
    ]
    assert checks(run_figures([*ANSWERS, lied], FINALS))["no_contradictions"] is False


def test_a_refusal_for_a_withdrawal_that_ended_success_is_a_contradiction() -> None:
    refused = problem("k-paid", 422, "SETTLEMENT_REFUSED", status="FAILED", withdrawal_id="w-paid")
    assert contradictions([refused], FINALS) == [
        "answered 422 SETTLEMENT_REFUSED (key k-paid), but the withdrawal w-paid ended SUCCESS"
    ]


def test_an_accepted_withdrawal_missing_from_the_books_is_a_contradiction() -> None:
    lost = Answer("k-lost", 202, "application/json", "QUEUED", "w-lost")
    assert contradictions([lost], FINALS) == [
        "answered 202 QUEUED (key k-lost) for w-lost, which does not exist"
    ]


def test_a_nothing_changed_refusal_whose_key_carries_a_withdrawal_is_a_contradiction() -> None:
    busy = problem("k-slow", 503, "DATABASE_BUSY")
    assert contradictions([busy], FINALS) == [
        "answered 503 DATABASE_BUSY (key k-slow), but withdrawal w-slow carries that key"
    ]
    # An unknown outcome, a replayed key or no answer at all promise nothing of the kind.
    maybe = [problem("k-slow", 503, "OUTCOME_UNKNOWN"), Answer("k-slow", 0)]
    reused = problem("k-slow", 422, "IDEMPOTENCY_KEY_REUSED")
    assert contradictions([*maybe, reused], FINALS) == []


def test_a_500_or_an_error_without_problem_json_is_undocumented() -> None:
    bad = [
        problem("k-a", 500, "INTERNAL_ERROR"),
        Answer("k-b", 503, "text/plain"),
        Answer("k-c", 502, None),
        Answer("k-d", 401, "application/json"),
    ]
    assert len(undocumented_errors([*ANSWERS, *bad])) == 4
    assert checks(run_figures([*ANSWERS, *bad], FINALS))["errors_documented"] is False


def test_each_broken_book_figure_fails_its_check() -> None:
    for figure, check in [
        ("still_open", "none_still_open"),
        ("paid_twice", "none_paid_twice"),
        ("paid_without_withdrawal", "none_paid_without_withdrawal"),
        ("released_after_paid", "none_released_after_paid"),
    ]:
        failed = [
            name
            for name, ok in checks(run_figures(ANSWERS, FINALS, **{figure: 1})).items()
            if not ok
        ]
        assert failed == [check]


def test_a_fault_not_applied_a_dirty_audit_or_a_hostile_answer_fail_the_run() -> None:
    figures = run_figures(ANSWERS, FINALS)
    figures["faults"][0] = {"kind": "kill_api_worker", "ok": False}
    figures["audit_ok"] = False
    figures["hostile"] = {"sent": 45, "unanswered": 0, "unexpected": 1}
    failed = {name for name, ok in checks(figures).items() if not ok}
    assert failed == {"faults_applied", "audit_clean", "hostile_requests_refused"}
    assert "| sync | 7 | 2 / 2 / 2 / 1 | 2 (0) |" in markdown_table([figures])


def test_the_fixed_schedule_spreads_one_fault_of_each_kind_over_the_run() -> None:
    plan = schedule(90, None)
    assert [f.kind for f in plan] == list(KINDS)
    assert [f.at_s for f in plan] == [11.2, 22.5, 33.8, 45.0, 56.2, 67.5, 78.8]


def test_a_seed_gives_its_own_reproducible_schedule_within_the_run() -> None:
    seeded = schedule(90, 7)
    assert seeded == schedule(90, 7)
    assert seeded != schedule(90, 8) and seeded != schedule(90, None)
    assert sorted(f.kind for f in seeded) == sorted(KINDS)
    assert all(0 < f.at_s < 90 for f in seeded)


def test_error_lines_naming_different_withdrawals_are_one_kind() -> None:
    lines = [
        f'{{"level":"ERROR","msg":"settlement outcome unknown for {wid}: unreachable"}}'
        for wid in ("43318248-c542-45f8-998c-067de7bab974", "53318248-c542-45f8-998c-067de7bab975")
    ]
    assert error_kinds(lines) == {"settlement outcome unknown for <id>: unreachable": 2}
