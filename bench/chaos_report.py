"""What `make chaos` checks after a run: the merchants' answers against the final books.

Pure functions over what the harness collected (the answers Locust and the hostile burst
recorded, the withdrawals' final states, counts from the database), so the rules can be tested
on crafted data (tests/unit/test_chaos_report.py).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROBLEM_JSON = "application/problem+json"
# The only 5xx a withdrawal may answer (README "What a withdrawal answers").
DOCUMENTED_5XX = {(503, "DATABASE_BUSY"), (503, "OUTCOME_UNKNOWN")}
# Answers after which a withdrawal may exist although the answer names none: the outcome is
# unknown, or the key belongs to another request (the hostile burst's replays). Every other
# refusal promises that nothing was stored, so no withdrawal may carry its key.
MAY_HAVE_STORED = {"OUTCOME_UNKNOWN", "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_IN_USE"}
SAMPLES = 20  # contradictions and bad answers listed in the report (all are counted)


@dataclass(frozen=True)
class Answer:
    """One answer a merchant got: http 0 is none (a timeout or a cut connection)."""

    key: str
    http: int
    content_type: str | None = None
    status: str | None = None  # the withdrawal's, from the body
    withdrawal_id: str | None = None
    code: str | None = None  # the problem's


@dataclass(frozen=True)
class Final:
    """A withdrawal as the books hold it once nothing is open."""

    id: str
    key: str
    status: str


def read_answers(directory: Path) -> list[Answer]:
    """Every answers-*.jsonl line in `directory` (one file per Locust process, one for the
    hostile burst)."""
    answers = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                answers.append(Answer(**json.loads(line)))
    return answers


def by_class(answers: Iterable[Answer]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for answer in answers:
        kind = f"{answer.http // 100}xx" if answer.http else "no answer"
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def by_kind(answers: Iterable[Answer]) -> dict[str, int]:
    """Answers by status and what they said: "202 PROCESSING", "503 OUTCOME_UNKNOWN", ..."""
    counts: dict[str, int] = {}
    for answer in answers:
        kind = f"{answer.http} {answer.code or answer.status or ''}".strip()
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def undocumented_errors(answers: Iterable[Answer]) -> list[str]:
    """Error answers that break the contract: a 5xx other than a documented 503 (a 500, say),
    or any 4xx/5xx that is not problem+json with a code."""
    return [
        f"{a.http} {a.code} ({a.content_type}) for key {a.key}"
        for a in answers
        if a.http >= 400
        and (
            a.content_type != PROBLEM_JSON
            or not a.code
            or (a.http >= 500 and (a.http, a.code) not in DOCUMENTED_5XX)
        )
    ]


def contradictions(answers: Iterable[Answer], finals: Iterable[Final]) -> list[str]:
    """Answers the final books contradict: a 200 SUCCESS for a withdrawal that ended FAILED
    (or is missing), a refusal for one that ended SUCCESS, an accepted withdrawal that is
    gone, a "nothing stored" refusal whose key carries a withdrawal."""
    by_id = {f.id: f for f in finals}
    by_key = {f.key: f for f in finals}
    found = []
    for a in answers:
        final = by_id.get(a.withdrawal_id) if a.withdrawal_id else by_key.get(a.key)
        said = f"answered {a.http} {a.code or a.status} (key {a.key})"
        if a.http == 200 and (final is None or final.status != "SUCCESS"):
            found.append(f"{said}, but the withdrawal {_ended(final)}")
        elif a.http == 202 and final is None:
            found.append(f"{said} for {a.withdrawal_id}, which does not exist")
        elif a.code == "SETTLEMENT_REFUSED" and (final is None or final.status != "FAILED"):
            found.append(f"{said}, but the withdrawal {_ended(final)}")
        elif (
            400 <= a.http < 600
            and a.code != "SETTLEMENT_REFUSED"
            and a.code not in MAY_HAVE_STORED
            and a.key in by_key
        ):
            found.append(f"{said}, but withdrawal {by_key[a.key].id} carries that key")
    return found


def _ended(final: Final | None) -> str:
    return "does not exist" if final is None else f"{final.id} ended {final.status}"


def checks(figures: dict[str, Any]) -> dict[str, bool]:
    """Each property a run must have; the run is broken if any is False."""
    return {
        "load_ran": figures["answered_accepted"] > 0,
        "errors_documented": figures["undocumented_errors"] == 0,
        "none_still_open": figures["still_open"] == 0,
        "none_paid_twice": figures["paid_twice"] == 0,
        "none_paid_without_withdrawal": figures["paid_without_withdrawal"] == 0,
        "none_released_after_paid": figures["released_after_paid"] == 0,
        "no_contradictions": figures["contradictions"] == 0,
        # Each hostile request that was answered got its refusal, and some were answered.
        "hostile_requests_refused": figures["hostile"]["unexpected"] == 0
        and figures["hostile"]["sent"] > figures["hostile"]["unanswered"],
        "faults_applied": all(f["ok"] for f in figures["faults"]),
        "audit_clean": figures["audit_ok"],
    }


def summarise(answers: list[Answer], finals: list[Final], books: dict[str, int]) -> dict[str, Any]:
    """The merchant-visible figures of a run; `books` holds the database's counts (accepted,
    finished, still_open, paid_twice, paid_without_withdrawal, released_after_paid)."""
    wrong = contradictions(answers, finals)
    undocumented = undocumented_errors(answers)
    return {
        "requests_sent": len(answers),
        "answers_by_class": by_class(answers),
        "answers_by_kind": by_kind(answers),
        "five_xx": sum(1 for a in answers if a.http >= 500),
        "undocumented_errors": len(undocumented),
        "undocumented_error_samples": undocumented[:SAMPLES],
        "answered_accepted": sum(1 for a in answers if a.http in (200, 202)),
        **books,
        "contradictions": len(wrong),
        "contradiction_samples": wrong[:SAMPLES],
    }


COLUMNS = (
    "mode",
    "requests",
    "2xx / 4xx / 5xx / none",
    "5xx (undocumented errors)",
    "accepted",
    "finished",
    "still open",
    "paid twice",
    "released after paid",
    "contradictions",
    "faults ok",
    "audit",
)


def markdown_table(runs: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for run in runs:
        classes = run["answers_by_class"]
        spread = " / ".join(str(classes.get(c, 0)) for c in ("2xx", "4xx", "5xx", "no answer"))
        faults = run["faults"]
        cells = [
            run["mode"],
            run["requests_sent"],
            spread,
            f"{run['five_xx']} ({run['undocumented_errors']})",
            run["accepted"],
            run["finished"],
            run["still_open"],
            run["paid_twice"],
            run["released_after_paid"],
            run["contradictions"],
            f"{sum(f['ok'] for f in faults)}/{len(faults)}",
            "clean" if run["audit_ok"] else "FAILED",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)
