"""Tests of genrm_rank.parsing: GenRM answer text in, Verdict out.

Expected values come from reading the fixture texts (tests/fixtures/answers/) by eye, and from
the answer formats of the models' cards and of NVIDIA's own parser (NVIDIA-NeMo/Gym,
``resources_servers/genrm_compare/utils.py``), not from the parser.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genrm_rank.judges.simulated import render_answer
from genrm_rank.parsing import parse_verdict, split_reasoning
from genrm_rank.verdict import FailureKind, RubricScore, Usage

ANSWERS = Path(__file__).resolve().parent / "fixtures" / "answers"


def answer(name: str) -> str:
    return (ANSWERS / name).read_text(encoding="utf-8")


def inline_reasoning(name: str) -> bool:
    """Whether a fixture holds its reasoning inline; the others are what content holds when the
    server's reasoning parser has split the reasoning off (read with ``thinking=False``)."""
    return "</think>" in answer(name)


# -- the three formats, from fixture files ------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "score_1", "score_2", "ranking"),
    [
        ("json_235b_long.txt", 5, 1, 1),
        ("json_235b_bare.txt", 4, 2, 2),
        ("rubric_3.txt", 4, 2, 2),
        ("boxed_analysis.txt", 4, 2, 2),
        ("two_blocks_agree.txt", 4, 3, 3),
        ("think_quoted_candidate.txt", 2, 4, 5),
        ("think_in_analysis.txt", 2, 4, 5),
        ("rubric_think_in_analysis.txt", 3, 4, 5),
        ("reasoning_verdict_differs.txt", 2, 4, 5),
        ("analysis_quotes_fence.txt", 4, 3, 3),
    ],
)
def test_fixture_answers_read(fixture: str, score_1: int, score_2: int, ranking: int) -> None:
    v = parse_verdict(answer(fixture), finish_reason="stop", thinking=inline_reasoning(fixture))
    assert v.ok, v.error
    assert (v.score_1, v.score_2, v.ranking) == (score_1, score_2, ranking)
    assert v.raw == answer(fixture)
    assert v.finish_reason == "stop"


def test_rubric_answer_keeps_every_triplet_in_order() -> None:
    v = parse_verdict(answer("rubric_3.txt"), thinking=False)
    assert v.rubrics == (
        RubricScore(1, 5.0, 2.0, 1.0),
        RubricScore(2, 3.0, 4.0, 4.0),
        RubricScore(3, 5.0, 3.0, 2.0),
    )
    # The verdict is "overall", not any rubric nor their mean.
    assert (v.score_1, v.score_2, v.ranking) == (4, 2, 2)


def test_rubric_with_think_in_analysis_keeps_its_rubrics() -> None:
    v = parse_verdict(answer("rubric_think_in_analysis.txt"))
    assert [r.rubric_id for r in v.rubrics] == [1, 2]
    assert v.reasoning == "Checking each rubric."


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("two_blocks_disagree.txt", FailureKind.AMBIGUOUS),
        ("think_json_in_reasoning_only.txt", FailureKind.UNREADABLE),
        ("think_quoted_candidate_unreadable.txt", FailureKind.UNREADABLE),
    ],
)
def test_fixture_answers_fail(fixture: str, kind: FailureKind) -> None:
    v = parse_verdict(answer(fixture), thinking=inline_reasoning(fixture))
    assert not v.ok
    assert v.failure == kind
    assert v.raw == answer(fixture)
    assert v.ranking is None and v.score_1 is None and v.score_2 is None
    assert v.error


def test_reasoning_json_draft_never_becomes_the_verdict() -> None:
    """The reasoning holds a full verdict; the answer after </think> holds none."""
    v = parse_verdict(answer("think_json_in_reasoning_only.txt"))
    assert v.failure == "unreadable"
    assert v.reasoning is not None and '"ranking": 2' in v.reasoning


def test_reasoning_of_quoted_candidate_is_the_whole_think_block() -> None:
    v = parse_verdict(answer("think_quoted_candidate.txt"))
    assert v.reasoning is not None
    assert v.reasoning.startswith("Response 1 literally outputs")
    assert v.reasoning.endswith("not a 5.")


def test_truncated_think_with_draft_is_truncated_not_the_draft() -> None:
    text = answer("truncated_think_with_draft.txt")
    assert parse_verdict(text, finish_reason="length").failure == "truncated"
    # Even with finish_reason "stop", an unclosed <think> is all reasoning: no verdict.
    v = parse_verdict(text, finish_reason="stop")
    assert v.failure == "unreadable"
    assert v.ranking is None


def test_bare_reasoning_cut_at_max_tokens_is_truncated() -> None:
    """No reasoning field, no </think>, stopped at max_tokens: the text is unfinished reasoning."""
    text = 'Draft: {"score_1": 4, "score_2": 2, "ranking": 2}. Now check response 2'
    assert parse_verdict(text, finish_reason="length").failure == "truncated"


# -- where the reasoning comes from -------------------------------------------------------------

VERDICT_JSON = '{"score_1": 3, "score_2": 5, "ranking": 5}'


@pytest.mark.parametrize(
    ("content", "reasoning", "expected_reasoning"),
    [
        (f"```json\n{VERDICT_JSON}\n```", "field reasoning", "field reasoning"),
        (f"<think>\ninline reasoning\n</think>\n\n{VERDICT_JSON}", None, "inline reasoning"),
        (f"bare reasoning\n</think>\n{VERDICT_JSON}", None, "bare reasoning"),
        (VERDICT_JSON, None, None),
        # The separate field wins over anything inline.
        (f"<think>inline</think>{VERDICT_JSON}", "field", "field"),
    ],
    ids=["field", "think", "bare", "none", "field-wins"],
)
def test_reasoning_sources(
    content: str, reasoning: str | None, expected_reasoning: str | None
) -> None:
    thinking = expected_reasoning is not None  # "none": a judge that does not think
    v = parse_verdict(content, reasoning=reasoning, thinking=thinking)
    assert v.ok
    assert (v.score_1, v.score_2, v.ranking) == (3, 5, 5)
    assert v.reasoning == expected_reasoning


DRAFT = '{"score_1": 5, "score_2": 1, "ranking": 1}'


@pytest.mark.parametrize(
    ("content", "reasoning"),
    [
        ("I prefer the second response.", f"Draft: {DRAFT}"),
        ("I prefer the second response.", f"Draft:\n```json\n{DRAFT}\n```"),
        (f"<think>Draft: {DRAFT}</think>I prefer the second response.", None),
        (f"Draft: {DRAFT}\n</think>\nI prefer the second response.", None),
        (f"<think>```json\n{DRAFT}\n```</think>\n\n", None),
    ],
    ids=["field", "field-fenced", "think", "bare", "think-empty-answer"],
)
def test_verdict_only_in_reasoning_is_no_verdict(content: str, reasoning: str | None) -> None:
    v = parse_verdict(content, reasoning=reasoning, finish_reason="stop")
    assert not v.ok
    assert v.failure in ("unreadable", "empty")
    assert v.ranking is None


@pytest.mark.parametrize(
    ("content", "reasoning"),
    [
        (VERDICT_JSON, f"At first I thought {DRAFT}, but no."),
        (f"<think>At first I thought {DRAFT}, but no.</think>\n{VERDICT_JSON}", None),
        (f"At first I thought {DRAFT}, but no.\n</think>\n```json\n{VERDICT_JSON}\n```", None),
    ],
    ids=["field", "think", "bare"],
)
def test_answer_wins_over_a_different_draft_in_the_reasoning(
    content: str, reasoning: str | None
) -> None:
    v = parse_verdict(content, reasoning=reasoning)
    assert (v.score_1, v.score_2, v.ranking) == (3, 5, 5)


def test_json_in_reasoning_field_is_ignored() -> None:
    v = parse_verdict(
        "I prefer the second response.",
        reasoning='Draft: {"score_1": 5, "score_2": 1, "ranking": 1}',
    )
    assert v.failure == "unreadable"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("<think>a</think>B", [("a", "B")]),
        ("B", [(None, "B")]),
        ("a</think>B", [("a", "B")]),
        (
            "<think>quoting </think> in a candidate</think>B",
            [("quoting </think> in a candidate", "B")],
        ),
        ('r</think>{"x": "</think>"}', [("r", '{"x": "</think>"}')]),
        ("<think>never closed", [("never closed", "")]),
    ],
)
def test_split_reasoning(content: str, expected: list[tuple[str | None, str]]) -> None:
    assert split_reasoning(content) == expected


# -- value types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s1", "s2", "r", "expected"),
    [
        ("4", "2", "2", (4.0, 2.0, 2.0)),
        ("4.5", "2.0", "3.0", (4.5, 2.0, 3.0)),
        ('"4"', '"2"', '"2"', (4.0, 2.0, 2.0)),
        ('" 4.5 "', '"1"', '"6"', (4.5, 1.0, 6.0)),
        ("5", "1", "6", (5.0, 1.0, 6.0)),
        ("1", "5", "1", (1.0, 5.0, 1.0)),
        ("4e0", "2", "2", (4.0, 2.0, 2.0)),
    ],
)
def test_scores_as_ints_floats_and_numeric_strings(
    s1: str, s2: str, r: str, expected: tuple[float, float, float]
) -> None:
    v = parse_verdict(f'{{"score_1": {s1}, "score_2": {s2}, "ranking": {r}}}', thinking=False)
    assert v.ok, v.error
    assert (v.score_1, v.score_2, v.ranking) == expected
    assert all(isinstance(x, float) for x in (v.score_1, v.score_2, v.ranking))


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ('{"score_1": 0, "score_2": 3, "ranking": 2}', "out_of_range"),
        ('{"score_1": 6, "score_2": 3, "ranking": 2}', "out_of_range"),
        ('{"score_1": 3, "score_2": 0, "ranking": 2}', "out_of_range"),
        ('{"score_1": 3, "score_2": 3, "ranking": 7}', "out_of_range"),
        ('{"score_1": 3, "score_2": 3, "ranking": 0}', "out_of_range"),
        ('{"score_1": 3, "score_2": 3, "ranking": -1}', "out_of_range"),
        ('{"score_1": "6", "score_2": 3, "ranking": 2}', "out_of_range"),
        # The ranking scale has no tie or half step.
        ('{"score_1": 3, "score_2": 3, "ranking": 3.5}', "out_of_range"),
        ('{"score_1": 3, "score_2": 3, "ranking": 1.2}', "out_of_range"),
        ('{"score_1": 3, "score_2": 3, "ranking": "3.5"}', "out_of_range"),
        ("\\boxed{4, 2}\n\\boxed{3.5}", "out_of_range"),
        (
            '{"rubric_evaluations": [], "overall": {"score_1": 4, "score_2": 2, "ranking": 2.5}}',
            "out_of_range",
        ),
        # "overall" is an object or a failure; it is never skipped for the keys beside it.
        ('{"score_1": 4, "score_2": 2, "ranking": 2, "overall": 3}', "unreadable"),
        ('{"rubric_evaluations": [], "overall": 3}', "unreadable"),
        ('{"rubric_evaluations": [], "overall": null}', "unreadable"),
        ('{"rubric_evaluations": [], "overall": [4, 2, 2]}', "unreadable"),
        ('{"overall": "response 1"}', "unreadable"),
        ('{"score_1": true, "score_2": 3, "ranking": 2}', "unreadable"),
        ('{"score_1": 3, "score_2": 3, "ranking": false}', "unreadable"),
        ('{"score_1": NaN, "score_2": 3, "ranking": 2}', "unreadable"),
        ('{"score_1": 3, "score_2": 3, "ranking": Infinity}', "unreadable"),
        ('{"score_1": 3, "score_2": -Infinity, "ranking": 2}', "unreadable"),
        ('{"score_1": "NaN", "score_2": 3, "ranking": 2}', "unreadable"),
        ('{"score_1": "four", "score_2": 3, "ranking": 2}', "unreadable"),
        ('{"score_1": null, "score_2": 3, "ranking": 2}', "unreadable"),
        ('{"score_1": [4], "score_2": 3, "ranking": 2}', "unreadable"),
        ('{"score_1": 4, "score_2": 3}', "unreadable"),
        ('{"score_1": 4, "ranking": 2}', "unreadable"),
        ('{"ranking": 2}', "unreadable"),
        ('{"response_1_analysis": "good", "response_2_analysis": "bad"}', "unreadable"),
        (
            '{"rubric_evaluations": [{"rubric_id": 1, "score_1": 4, "score_2": 2, "ranking": 2}]}',
            "unreadable",
        ),
        ('{"rubric_evaluations": [], "overall": {"score_1": 4, "ranking": 2}}', "unreadable"),
        (
            '{"rubric_evaluations": [], "overall": {"score_1": 4, "score_2": 2, "ranking": 9}}',
            "out_of_range",
        ),
        ('{"score_1": 4, "score_2": 2, "ranking": 2', "unreadable"),
        ("Response 1 is better.", "unreadable"),
        ("\\boxed{4, 2}", "unreadable"),
        ("\\boxed{4, 2} and \\boxed{2} but also \\boxed{5}", "ambiguous"),
        ("\\boxed{4, 9}\n\\boxed{2}", "out_of_range"),
        ("\\boxed{4, 2}\n\\boxed{7}", "out_of_range"),
        ("\\boxed{4, 2, 1}\n\\boxed{2}", "unreadable"),
        # A readable verdict next to an unreadable one is not silently preferred.
        (
            '{"score_1": 4, "score_2": 2, "ranking": 2} {"score_1": 4, "score_2": 2, "ranking": 8}',
            "ambiguous",
        ),
        (
            '{"score_1": 4, "score_2": 2, "ranking": 2} {"score_1": 2, "score_2": 4, "ranking": 5}',
            "ambiguous",
        ),
    ],
)
def test_bad_values_fail_without_inventing(body: str, kind: str) -> None:
    v = parse_verdict(body, finish_reason="stop", thinking=False)
    assert v.failure == kind, v.error
    assert (v.score_1, v.score_2, v.ranking) == (None, None, None)
    assert v.raw == body
    assert v.error


@pytest.mark.parametrize(
    ("ranking", "shown"),
    [("3.5", "3.5"), ("1.2", "1.2"), ('"3.5"', "'3.5'"), ("6.5", "6.5"), ("0", "0")],
)
def test_out_of_range_ranking_names_the_value_as_written(ranking: str, shown: str) -> None:
    body = f'{{"score_1": 3, "score_2": 3, "ranking": {ranking}}}'
    v = parse_verdict(body, thinking=False)
    assert v.failure == "out_of_range"
    assert v.raw == body
    assert v.error is not None and shown in v.error


@pytest.mark.parametrize("ranking", [1, 2, 3, 4, 5, 6, 1.0, 6.0, "4"])
def test_every_integer_ranking_is_read(ranking: object) -> None:
    v = parse_verdict(json.dumps({"score_1": 3, "score_2": 3, "ranking": ranking}), thinking=False)
    assert v.ok, v.error
    assert v.ranking == float(ranking)  # type: ignore[arg-type]


def test_fractional_rubric_ranking_is_none() -> None:
    body = json.dumps(
        {
            "rubric_evaluations": [{"rubric_id": 1, "score_1": 4, "score_2": 2, "ranking": 2.5}],
            "overall": {"score_1": 4, "score_2": 2, "ranking": 2},
        }
    )
    assert parse_verdict(body, thinking=False).rubrics == (RubricScore(1, 4.0, 2.0, None),)


def test_rubric_values_out_of_range_or_missing_are_none() -> None:
    body = json.dumps(
        {
            "rubric_evaluations": [
                {"rubric_id": 1, "score_1": 9, "score_2": "3", "ranking": True},
                {"rubric_id": True, "score_2": 2, "ranking": 3},
                "not an object",
            ],
            "overall": {"score_1": 4, "score_2": 2, "ranking": 2},
        }
    )
    v = parse_verdict(body, thinking=False)
    assert v.rubrics == (RubricScore(1, None, 3.0, None), RubricScore(None, None, 2.0, 3.0))


# -- empty, truncated ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reasoning", "finish_reason", "kind"),
    [
        (None, "thinking...", "length", "truncated"),
        (None, None, "stop", "truncated"),
        ("", None, "stop", "empty"),
        ("   \n\t ", None, "stop", "empty"),
        ("", None, "length", "truncated"),
        ("<think>all reasoning</think>\n  \n", None, "stop", "empty"),
        ('```json\n{"response_1_analysis": "Response 1 is', "reasoning", "length", "truncated"),
        ("<think>\nstill thinking", None, "length", "truncated"),
    ],
)
def test_empty_and_truncated(
    content: str | None, reasoning: str | None, finish_reason: str, kind: str
) -> None:
    v = parse_verdict(content, reasoning=reasoning, finish_reason=finish_reason)
    assert v.failure == kind
    assert v.raw == content
    assert v.finish_reason == finish_reason
    if reasoning is not None:
        assert v.reasoning == reasoning


def test_complete_verdict_with_length_stop_is_kept() -> None:
    """A readable answer after the reasoning stays a verdict even if the server cut afterwards."""
    v = parse_verdict(VERDICT_JSON, reasoning="r", finish_reason="length")
    assert v.ok and v.ranking == 5


def test_usage_is_kept() -> None:
    usage = Usage(10, 20)
    assert parse_verdict(VERDICT_JSON, usage=usage).usage == usage
    assert parse_verdict("nothing", usage=usage).usage == usage


def test_content_of_wrong_type_raises() -> None:
    with pytest.raises(TypeError, match=r"Argument 'content' must be a string or None, not bytes"):
        parse_verdict(b"{}")  # type: ignore[arg-type]


# -- round trip through render_answer ------------------------------------------------------------

# Reasoning text a real model writes: prose, code with braces, fences, and verdict drafts in JSON
# (possibly disagreeing with the final answer). Inline reasoning cannot contain "</think>" (that
# would end it), which is out of scope; in the separate field anything goes.
_draft = st.builds(
    lambda a, b, c: json.dumps({"score_1": a, "score_2": b, "ranking": c}),
    st.integers(-3, 9),
    st.integers(-3, 9),
    st.integers(-3, 9),
)
_fragments = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "{",
            "}",
            "```json\n",
            "```",
            "\\boxed{3}",
            "\\boxed{1, 5}",
            '"score_1": ',
            "<think>",
            "Let me draft the verdict:",
            '{"overall": {"score_1": 1, "score_2": 5, "ranking": 6}}',
            "def f(x): return {x: 1}",
        ]
    ),
    _draft,
    _draft.map(lambda d: f"```json\n{d}\n```"),
)
_reasoning = st.lists(_fragments, max_size=6).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(
    score_1=st.integers(1, 5),
    score_2=st.integers(1, 5),
    ranking=st.integers(1, 6),
    answer_format=st.sampled_from(["json", "rubric", "boxed"]),
    style=st.sampled_from(["reasoning", "reasoning_content", "think", "bare", "none"]),
    reasoning=_reasoning,
    rubrics=st.lists(
        st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 6)), max_size=3
    ),
)
def test_render_then_parse_round_trip(
    score_1: int,
    score_2: int,
    ranking: int,
    answer_format: str,
    style: str,
    reasoning: str,
    rubrics: list[tuple[int, int, int]],
) -> None:
    if style in ("think", "bare"):
        reasoning = reasoning.replace("</think>", "")
    rendered = render_answer(
        score_1,
        score_2,
        ranking,
        answer_format=answer_format,  # type: ignore[arg-type]
        reasoning_style=style,  # type: ignore[arg-type]
        reasoning=reasoning,
        rubric_triplets=rubrics,
    )
    v = parse_verdict(
        rendered.content,
        reasoning=rendered.reasoning,
        finish_reason="stop",
        thinking=style != "none",
    )
    assert v.ok, v.error
    assert (v.score_1, v.score_2, v.ranking) == (score_1, score_2, ranking)
    if answer_format == "rubric":
        assert [(r.score_1, r.score_2, r.ranking) for r in v.rubrics] == rubrics
        assert [r.rubric_id for r in v.rubrics] == list(range(1, len(rubrics) + 1))
    if style in ("reasoning", "reasoning_content"):
        assert v.reasoning == reasoning
    elif style in ("think", "bare"):
        assert (
            v.reasoning == reasoning.strip()
            or v.reasoning == reasoning.strip().removeprefix("<think>").strip()
        )


@settings(max_examples=100, deadline=None)
@given(reasoning=st.text(max_size=200))
def test_reasoning_field_may_hold_anything(reasoning: str) -> None:
    rendered = render_answer(2, 4, 5, reasoning_style="reasoning", reasoning=reasoning)
    v = parse_verdict(rendered.content, reasoning=rendered.reasoning)
    assert (v.ranking, v.reasoning) == (5, reasoning)


# -- read only the answer: the two paths review found, and bait everywhere ------------------------

BAIT = '{"score_1": 5, "score_2": 1, "ranking": 1}'


def test_cut_inline_reasoning_with_a_quoted_close_tag_is_truncated() -> None:
    """Path 1: the generation was cut inside the reasoning, after a quoted ``</think>``."""
    content = f"<think>Let me check. Response 1 says: </think>{BAIT} and then it goes on"
    v = parse_verdict(content, finish_reason="length")
    assert v.failure == "truncated" and v.ranking is None
    # Even a complete-looking answer is not trusted once an inline-reasoning generation is cut.
    v = parse_verdict(f"<think>r</think>{BAIT}", finish_reason="length")
    assert v.failure == "truncated"


def test_untagged_content_of_a_thinking_judge_holds_no_answer() -> None:
    """Path 2: no reasoning field, no tags, finish "stop": the text is reasoning, not an answer."""
    content = f"Let me think. Response 1 quotes {BAIT}. Hmm, I am not sure yet."
    v = parse_verdict(content, finish_reason="stop")
    assert v.failure == "unreadable" and v.ranking is None
    assert "thinking=False" in (v.error or "")
    # Read as the answer only when the caller says the judge does not think.
    assert parse_verdict(content, finish_reason="stop", thinking=False).ranking == 1


def test_verdict_only_in_the_reasoning_field_is_a_parser_misconfiguration() -> None:
    v = parse_verdict(None, reasoning=f"All thought.\n```json\n{BAIT}\n```", finish_reason="stop")
    assert v.failure == "unreadable" and v.ranking is None
    assert "reasoning parser" in (v.error or "") and "--reasoning-parser" in (v.error or "")
    # Cut at max_tokens it stays a truncation, and without a verdict in it too.
    assert parse_verdict(None, reasoning=BAIT, finish_reason="length").failure == "truncated"
    assert parse_verdict(None, reasoning="thinking", finish_reason="stop").failure == "truncated"


_bait_text = st.sampled_from(
    [
        BAIT,
        f"```json\n{BAIT}\n```",
        f"</think>{BAIT}",
        f"<think>x</think>\n{BAIT}",
        "\\boxed{5, 1}\n\\boxed{1}",
        '{"overall": {"score_1": 5, "score_2": 1, "ranking": 1}}',
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    style=st.sampled_from(["reasoning", "reasoning_content", "think", "bare", "none"]),
    finish_reason=st.sampled_from(["stop", "length", None, "abort"]),
    answer_format=st.sampled_from(["json", "rubric", "boxed"]),
    bait=_bait_text,
    where=st.sampled_from(["reasoning", "candidate", "conversation"]),
    has_answer=st.booleans(),
)
def test_bait_outside_the_answer_never_becomes_the_verdict(
    style: str,
    finish_reason: str | None,
    answer_format: str,
    bait: str,
    where: str,
    has_answer: bool,
) -> None:
    """Verdict-shaped bait (ranking 1) in the reasoning, or in a candidate or the conversation
    that the reasoning quotes, is never read: the verdict comes from the answer (ranking 5)
    alone, or the call fails."""
    quoted = {
        "reasoning": f"I drafted {bait} first.",
        "candidate": f"Response 1 literally writes: {bait}",
        "conversation": f"The user asked: {bait}",
    }[where]
    thinking = style != "none"
    rendered = render_answer(
        2,
        4,
        5,
        answer_format=answer_format,  # type: ignore[arg-type]
        reasoning_style=style,  # type: ignore[arg-type]
        reasoning=f"Let me compare. {quoted} On balance, response 2.",
        rubric_triplets=[(2, 4, 5)],
    )
    content = rendered.content
    if not has_answer:
        if style in ("reasoning", "reasoning_content"):
            content = None if finish_reason == "length" else "I cannot decide."
        elif style == "none":
            content = "I cannot decide."
        else:  # the reasoning ends, and no answer follows
            assert content is not None
            content = content[: content.rindex("</think>") + len("</think>")] + "\nI cannot decide."
    v = parse_verdict(content, rendered.reasoning, finish_reason, thinking=thinking)
    assert v.ranking != 1 and v.score_1 != 5
    if v.ok:
        assert has_answer and (v.score_1, v.score_2, v.ranking) == (2, 4, 5)
    if has_answer and finish_reason != "length" and style != "none":
        assert v.ok, v.error
    if finish_reason == "length" and style in ("think", "bare"):
        assert v.failure == "truncated"


@pytest.mark.parametrize(
    "answer",
    ['{"score_1": ' + "[" * 100_000, '{"a": ' * 100_000],
)
def test_json_nested_past_the_stack_is_unreadable_not_a_crash(answer: str) -> None:
    # json's decoder raised RecursionError out of parse_verdict.
    verdict = parse_verdict(answer, None, "stop", thinking=False)
    assert verdict.failure is FailureKind.UNREADABLE


def test_a_verdict_before_json_nested_past_the_stack_is_read() -> None:
    answer = '```json\n{"score_1": 4, "score_2": 2, "ranking": 2}\n``` ' + '{"a": ' * 100_000
    assert parse_verdict(answer, None, "stop", thinking=False).ranking == 2
