"""What an SDG pipeline keeps: selection thresholds, preference pairs, the lines written.

:func:`decide_selection` applies :class:`SelectThresholds` to a ranking, :func:`preference_pairs`
turns one into chosen/rejected pairs, and :func:`rank_rows`, :func:`select_rows` and
:func:`pair_rows` are :func:`~genrm_rank.sdg.pipeline.process_file`'s formatters. Margins are
Bradley-Terry strength gaps in log-odds (``scores[i].strength``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

from genrm_rank import validate
from genrm_rank.errors import ArgumentError, Words
from genrm_rank.messages import normalize_conversation
from genrm_rank.results import Ranking, finite_or_none
from genrm_rank.sdg.output import Block
from genrm_rank.sdg.rows import Row, RowError

__all__ = [
    "PAIR_POLICIES",
    "CheckedFormatter",
    "Formatter",
    "PairPolicy",
    "PreferencePair",
    "SelectDecision",
    "SelectThresholds",
    "decide_selection",
    "format_problem",
    "margin_of",
    "pair_rows",
    "preference_pairs",
    "rank_rows",
    "runner_up_margin",
    "select_rows",
]

Formatter = Callable[[Row, Ranking], Block]
"""Turns an input row and its ranking into the lines to write."""

PairPolicy = Literal["best_vs_worst", "all_pairs"]
PAIR_POLICIES: tuple[str, ...] = ("best_vs_worst", "all_pairs")

PairFormat = Literal["full", "trl", "trl-chat", "openrlhf", "nemo-rl"]
PAIR_FORMATS: tuple[str, ...] = ("full", "trl", "trl-chat", "openrlhf", "nemo-rl")
SelectFormat = Literal["full", "sft"]
SELECT_FORMATS: tuple[str, ...] = ("full", "sft")
RankFormat = Literal["full", "nemo-rl"]
RANK_FORMATS: tuple[str, ...] = ("full", "nemo-rl")


def margin_of(ranking: Ranking, winner: int, loser: int) -> float:
    """Bradley-Terry strength gap (log-odds) between two candidates of a ranking."""
    return float(ranking.scores[winner].strength - ranking.scores[loser].strength)


def runner_up_margin(ranking: Ranking) -> float | None:
    """Strength gap between the best and the strongest other candidate (``None`` if no best)."""
    if ranking.best is None:
        return None
    others = [s.strength for s in ranking.scores if s.index != ranking.best]
    return float(ranking.scores[ranking.best].strength - max(others)) if others else None


@dataclass(frozen=True)
class SelectThresholds:
    """What a best-of-N winner must reach to be kept (``None``: no threshold)."""

    min_score: float | None = None
    """The winner's mean individual score (1-5)."""
    min_margin: float | None = None
    """The winner's strength minus the runner-up's (log-odds)."""
    min_p_best: float | None = None
    """The winner's P(best), in [0, 1]."""

    def __post_init__(self) -> None:
        for name in ("min_score", "min_margin", "min_p_best"):
            object.__setattr__(
                self, name, validate.number(name, getattr(self, name), optional=True)
            )
        if self.min_p_best is not None and not 0.0 <= self.min_p_best <= 1.0:
            raise ArgumentError("min_p_best", f"must be in [0, 1], not {self.min_p_best}.")


@dataclass(frozen=True)
class SelectDecision:
    """Whether a ranking's winner is kept, and why not."""

    chosen: bool
    reasons: tuple[str, ...]
    score: float | None
    margin: float | None
    p_best: float | None


def decide_selection(ranking: Ranking, thresholds: SelectThresholds) -> SelectDecision:
    """Apply ``thresholds`` to a ranking's winner (a ranking with no winner is never chosen).

    >>> from genrm_rank import SimulatedJudge, select_best
    >>> judge = SimulatedJudge(qualities={"a": 2.0, "b": -2.0}, seed=0)
    >>> ranking = select_best(["a", "b"], "Q", judge=judge)
    >>> decide_selection(ranking, SelectThresholds(min_score=5.5)).reasons
    ("winner's mean score 5.000 < min_score 5.5",)
    """
    best = ranking.best
    if best is None:
        return SelectDecision(False, ("no usable verdict: no winner",), None, None, None)
    score = finite_or_none(ranking.scores[best].mean_score)
    margin = finite_or_none(runner_up_margin(ranking))
    p_best = finite_or_none(ranking.p_best)
    reasons: list[str] = []
    if thresholds.min_score is not None:
        if score is None:
            reasons.append("the judge gave no individual scores (min_score)")
        elif score < thresholds.min_score:
            reasons.append(f"winner's mean score {score:.3f} < min_score {thresholds.min_score:g}")
    if thresholds.min_margin is not None and (margin is None or margin < thresholds.min_margin):
        shown = None if margin is None else round(margin, 3)
        reasons.append(f"winner's margin {shown} < min_margin {thresholds.min_margin:g}")
    if thresholds.min_p_best is not None and (p_best is None or p_best < thresholds.min_p_best):
        shown = None if p_best is None else round(p_best, 3)
        reasons.append(f"winner's P(best) {shown} < min_p_best {thresholds.min_p_best:g}")
    return SelectDecision(not reasons, tuple(reasons), score, margin, p_best)


def _check_pair_options(
    policy: str, min_margin: float | None, max_pairs: int | None
) -> float | None:
    validate.one_of("policy", policy, PAIR_POLICIES)
    validate.count("max_pairs", max_pairs, 1, optional=True)
    return validate.number("min_margin", min_margin, optional=True)


@dataclass(frozen=True)
class PreferencePair:
    """One chosen/rejected pair of a ranking's candidates (input indices) and its margin."""

    chosen: int
    rejected: int
    margin: float


def preference_pairs(
    ranking: Ranking,
    *,
    policy: PairPolicy = "best_vs_worst",
    min_margin: float | None = None,
    max_pairs: int | None = None,
) -> list[PreferencePair]:
    """Chosen/rejected pairs from a ranking, for preference training (DPO and kin).

    Parameters
    ----------
    ranking : Ranking
    policy : {"best_vs_worst", "all_pairs"}
        The first and last of the order, or every pair (largest margin first).
    min_margin : float, optional
        Keep pairs whose strength gap (log-odds) is at least this.
    max_pairs : int, optional
        At most this many pairs.

    >>> from genrm_rank import SimulatedJudge, rank
    >>> judge = SimulatedJudge(qualities={"a": 2.0, "b": 0.0, "c": -2.0}, seed=0)
    >>> ranking = rank(["b", "a", "c"], "Q", judge=judge)
    >>> [(p.chosen, p.rejected) for p in preference_pairs(ranking)]
    [(1, 2)]
    """
    min_margin = _check_pair_options(policy, min_margin, max_pairs)
    order = list(ranking.order)
    if policy == "all_pairs":
        pairs = [PreferencePair(c, r, margin_of(ranking, c, r)) for c, r in combinations(order, 2)]
        pairs.sort(key=lambda p: -p.margin)
    else:
        ends = (order[0], order[-1])
        pairs = [PreferencePair(*ends, margin_of(ranking, *ends))] if len(order) >= 2 else []
    if min_margin is not None:
        pairs = [p for p in pairs if p.margin >= min_margin]
    return pairs if max_pairs is None else pairs[:max_pairs]


def rank_rows(
    *,
    result_field: str = "genrm",
    include_judgements: bool = False,
    format: RankFormat = "full",
    id_field: str = "id",
) -> Formatter:
    """Each input row with its ranking.

    ``"full"``: the row's own fields and the ranking under ``result_field``. ``"nemo-rl"``:
    NeMo RL's preference format (:func:`pair_rows`) with every candidate, ranked by the order.
    """
    validate.one_of("format", format, RANK_FORMATS)

    def fmt(row: Row, ranking: Ranking) -> Block:
        if format == "nemo-rl":
            completions = _completions([ranking.candidates[i] for i in ranking.order])
            line = {id_field: row.id, "context": _messages(row), "completions": completions}
            return Block("out", (line,))
        result = ranking.to_dict(include_judgements=include_judgements)
        return Block("out", ({**row.data, result_field: result},))

    return fmt


def select_rows(
    thresholds: SelectThresholds | None = None,
    *,
    result_field: str = "genrm",
    rejected_sink: bool = False,
    format: SelectFormat = "full",
    id_field: str = "id",
) -> Formatter:
    """Each input row with its winner (``selected``), or ``None`` and why (``select_reason``).

    ``"full"``: the row's own fields, the winner, the reasons it was not kept, the ranking's
    ``status`` and the ranking under ``result_field``; a row not kept goes to the ``rejected``
    sink when ``rejected_sink``, else to the output with ``"selected": null``. ``"sft"``:
    ``{"messages": [conversation..., assistant winner]}`` and the id; a row not kept always
    goes to the ``rejected`` sink.
    """
    thresholds = thresholds if thresholds is not None else SelectThresholds()
    validate.one_of("format", format, SELECT_FORMATS)

    def fmt(row: Row, ranking: Ranking) -> Block:
        decision = decide_selection(ranking, thresholds)
        best, chosen = ranking.best, decision.chosen
        if format == "sft":
            if not chosen or ranking.best_text is None:
                reason = "; ".join(decision.reasons)
                return Block("rejected", ({id_field: row.id, "select_reason": reason},))
            messages = [*_messages(row), *_assistant(ranking.best_text)]
            return Block("out", ({id_field: row.id, "messages": messages},))
        line: dict[str, Any] = {
            **row.data,
            "selected": ranking.best_text if chosen else None,
            "selected_index": best if chosen else None,
            "selected_id": ranking.best_id if chosen else None,
            "select_reason": "; ".join(decision.reasons) or None,
            "status": ranking.status,
            "winner_score": decision.score,
            "winner_margin": decision.margin,
            "winner_p_best": decision.p_best,
            result_field: ranking.to_dict(),
        }
        return Block("rejected" if not chosen and rejected_sink else "out", (line,))

    return fmt


def _messages(row: Row) -> list[dict[str, Any]]:
    """The row's conversation as ``{"role", "content"}`` messages (reasoning stripped)."""
    return [dict(m) for m in normalize_conversation(row.conversation)]


def _text_prompt_problem(row: Row, fmt: str) -> str | None:
    """Why format ``fmt`` (a one-turn text prompt) cannot hold ``row``, or ``None``."""
    messages = _messages(row)
    if len(messages) == 1 and messages[0]["role"] == "user":
        return None
    roles = ", ".join(str(m["role"]) for m in messages)
    return Words(
        "{fmt}, which holds a one-turn text prompt, but this row's conversation has {n} messages "
        "({roles}); {chat} holds conversations",
        fmt=ArgumentError.Setting("format", fmt),
        n=len(messages),
        roles=roles,
        chat=ArgumentError.Setting("format", "trl-chat"),
    )


def _text_prompt(row: Row, fmt: str) -> str:
    problem = _text_prompt_problem(row, fmt)
    if problem is not None:
        raise ValueError(problem + ".")
    return str(_messages(row)[0]["content"])


@dataclass(frozen=True)
class CheckedFormatter:
    """A :data:`Formatter` that can tell from a row alone that it cannot write it, so that the
    row is refused before any call is paid for it (:func:`format_problem`)."""

    format_row: Formatter
    check_row: Callable[[Row], str | None]
    """``check_row(row)``: why the format cannot hold ``row``, or ``None`` when it can."""

    def __call__(self, row: Row, ranking: Ranking) -> Block:
        return self.format_row(row, ranking)


def format_problem(formatter: Formatter | None, row: Row) -> RowError | None:
    """The ``format_mismatch`` row error of a row ``formatter`` cannot write, else ``None``
    (any formatter but a :class:`CheckedFormatter` is assumed to hold every row)."""
    if not isinstance(formatter, CheckedFormatter):
        return None
    reason = formatter.check_row(row)
    if reason is None:
        return None
    return RowError(row.line, row.id, "format_mismatch", reason, field="format")


def _assistant(text: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": text}]


def pair_rows(
    *,
    policy: PairPolicy = "best_vs_worst",
    min_margin: float | None = None,
    max_pairs: int | None = None,
    candidates_field: str = "candidates",
    format: PairFormat = "full",
    margin_field: str | None = None,
    id_field: str = "id",
) -> CheckedFormatter:
    """One line per chosen/rejected pair (:func:`preference_pairs`), in a trainer's format.

    Formats (each line also keeps the row's id and ``pair_index``/``n_pairs``, for resume):

    - ``"full"``: the row's fields (but the candidates and prompt), ``prompt``, and
      ``chosen``/``rejected`` of the prompt's kind (texts, or ``[assistant]`` messages: TRL
      reads either), their indices, ids and mean scores, and ``genrm_strength_gap``;
    - ``"trl"``: ``{"prompt": str, "chosen": str, "rejected": str}`` (one-turn prompts only,
      checked before the row is judged: :class:`CheckedFormatter`);
    - ``"trl-chat"``: ``{"prompt": [messages], "chosen": [assistant], "rejected": [assistant]}``
      (https://huggingface.co/docs/trl/dataset_formats);
    - ``"openrlhf"``: ``{"chosen": [messages..., assistant], "rejected": [...]}``, whole
      conversations, as OpenRLHF's ``RewardDataset`` reads them (``prompt_key=None``);
    - ``"nemo-rl"``: ``{"context": [messages], "completions": [{"rank": 0, "completion":
      [assistant]}, ...]}`` (NeMo RL's ``PreferenceDataset``; lower rank preferred).

    The strength gap goes under ``margin_field`` only when given (OpenRLHF reads ``margin`` as
    its margin-loss term). A row with no pair goes to the ``rejected`` sink with the reason.
    """
    min_margin = _check_pair_options(policy, min_margin, max_pairs)
    validate.one_of("format", format, PAIR_FORMATS)

    def check(row: Row) -> str | None:
        return _text_prompt_problem(row, format) if format == "trl" else None

    def fmt(row: Row, ranking: Ranking) -> Block:
        pairs = preference_pairs(ranking, policy=policy, min_margin=min_margin, max_pairs=max_pairs)
        base = {k: v for k, v in row.data.items() if k != candidates_field}
        order = ranking.order
        if not pairs:
            above = "of candidates"
            if min_margin is not None:
                above = f"with margin >= min_margin {min_margin:g}"
            gap = margin_of(ranking, order[0], order[-1]) if len(order) >= 2 else None
            line = {**base, "reason": f"no pair {above}", "best_margin": finite_or_none(gap)}
            return Block("rejected", (line,))
        lines = [
            _pair_line(row, ranking, base, p, (k, len(pairs)), format, margin_field, id_field)
            for k, p in enumerate(pairs)
        ]
        return Block("out", tuple(lines))

    return CheckedFormatter(fmt, check)


def _pair_line(
    row: Row,
    ranking: Ranking,
    base: dict[str, Any],
    pair: PreferencePair,
    position: tuple[int, int],
    format: str,
    margin_field: str | None,
    id_field: str,
) -> dict[str, Any]:
    chosen, rejected = ranking.candidates[pair.chosen], ranking.candidates[pair.rejected]
    index, n_pairs = position
    keep = {id_field: row.id, "pair_index": index, "n_pairs": n_pairs}
    line: dict[str, Any]
    if format != "full":
        line = {**_TRAINER_PAIRS[format](row, chosen, rejected), **keep}
    else:
        ids = ranking.candidate_ids
        # A list prompt with text answers would fail in TRL's chat template step.
        text = isinstance(row.conversation, str)
        line = {
            **{k: v for k, v in base.items() if k != row.prompt_field},
            "prompt": row.conversation if text else _messages(row),
            "chosen": chosen if text else _assistant(chosen),
            "rejected": rejected if text else _assistant(rejected),
            "chosen_index": pair.chosen,
            "rejected_index": pair.rejected,
            "chosen_id": None if ids is None else ids[pair.chosen],
            "rejected_id": None if ids is None else ids[pair.rejected],
            "genrm_strength_gap": finite_or_none(pair.margin),
            "chosen_score": finite_or_none(ranking.scores[pair.chosen].mean_score),
            "rejected_score": finite_or_none(ranking.scores[pair.rejected].mean_score),
            "pair_index": index,
            "n_pairs": n_pairs,
        }
    if margin_field is not None:
        line[margin_field] = finite_or_none(pair.margin)
    return line


def _completions(texts: list[str]) -> list[dict[str, Any]]:
    """NeMo RL's ranked completions, best (rank 0) first."""
    return [{"rank": rank, "completion": _assistant(text)} for rank, text in enumerate(texts)]


_TRAINER_PAIRS: dict[str, Callable[[Row, str, str], dict[str, Any]]] = {
    "trl": lambda row, c, r: {"prompt": _text_prompt(row, "trl"), "chosen": c, "rejected": r},
    "trl-chat": lambda row, c, r: {
        "prompt": _messages(row),
        "chosen": _assistant(c),
        "rejected": _assistant(r),
    },
    "openrlhf": lambda row, c, r: {
        "chosen": [*_messages(row), *_assistant(c)],
        "rejected": [*_messages(row), *_assistant(r)],
    },
    "nemo-rl": lambda row, c, r: {"context": _messages(row), "completions": _completions([c, r])},
}
"""The lines of the trainer formats of :func:`pair_rows` for a chosen and a rejected text."""
