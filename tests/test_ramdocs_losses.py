"""benchmarks/ramdocs_losses.py: the stage each right answer that was not stated is
counted at, on small hand-made answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.ramdocs_losses import STAGES, lost_at, main


def answer(
    said: str = "",
    cited: tuple[str, ...] = (),
    asked: tuple[tuple[str, str, bool], ...] = (),
    abstained: bool = False,
) -> dict[str, Any]:
    return {
        "abstained": abstained,
        "statements": [{"text": said}] if said else [],
        "citations": [{"doc": d} for d in cited],
        "asked": [{"doc": d, "value": v, "accepted": ok} for d, v, ok in asked],
    }


# (case, answer, documents giving the gold answer "1981", documents retrieved, stage)
CASES = [
    ("stated", answer("1981", ("x",)), ["x"], ["x"], None),
    ("stated in other words", answer("founded 1981", ("x",)), ["x"], ["x"], None),
    ("refused", answer(abstained=True), ["x"], ["x"], "refused"),
    ("no giver", answer("1989", ("y",)), [], ["y"], "no giving document"),
    ("giver too deep", answer("1989", ("y",)), ["x"], ["y"], "giver not retrieved"),
    ("giver read", answer("1980s", ("x",)), ["x"], ["x"], "giver cited, another value stated"),
    (
        "giver asked, other value",
        answer("1989", ("y",), (("x", "1980s", True),)),
        ["x"],
        ["x", "y"],
        "giver asked, another value",
    ),
    (
        "giver asked, refused",
        answer("1989", ("y",), (("x", "1981", False),)),
        ["x"],
        ["x", "y"],
        "giver asked, not accepted",
    ),
    (
        "giver accepted, merged away",
        answer("1989", ("y",), (("x", "1981", True),)),
        ["x"],
        ["x", "y"],
        "giver asked, dropped in merge",
    ),
    ("giver not asked", answer("1989", ("y",)), ["x"], ["x", "y"], "giver retrieved, not asked"),
]


@pytest.mark.parametrize(
    ("case", "given", "givers", "retrieved", "stage"), CASES, ids=[c[0] for c in CASES]
)
def test_lost_at(
    case: str, given: dict[str, Any], givers: list[str], retrieved: list[str], stage: str | None
) -> None:
    assert lost_at("1981", given, givers, retrieved) == stage
    assert stage is None or stage in STAGES


def test_a_run_folder_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--run", str(tmp_path), "--set", "a"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
