"""Output layouts of ``rank``, ``select`` and ``pairs``: a row and its ranking to lines."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from genrm_rank.results import Ranking
from genrm_rank.sdg import (
    Block,
    Row,
    finite_or_none,
    margin_of,
    runner_up_margin,
)

# --------------------------------------------------------------------------------------------
# Output layouts


def rank_formatter(args: argparse.Namespace) -> Callable[[Row, Ranking], Block]:
    field_name = args.result_field
    judgements = bool(getattr(args, "judgements", False))

    def fmt(row: Row, ranking: Ranking) -> Block:
        return Block(
            "out", ({**row.data, field_name: ranking.to_dict(include_judgements=judgements)},)
        )

    return fmt


def select_formatter(
    args: argparse.Namespace, has_rejected: bool
) -> Callable[[Row, Ranking], Block]:
    field_name = args.result_field

    def fmt(row: Row, ranking: Ranking) -> Block:
        best = ranking.best
        assert best is not None
        score = finite_or_none(ranking.scores[best].mean_score)
        margin = finite_or_none(runner_up_margin(ranking))
        p_best = finite_or_none(ranking.p_best)
        reasons: list[str] = []
        if args.min_score is not None:
            if score is None:
                reasons.append("the judge gave no individual scores (--min-score)")
            elif score < args.min_score:
                reasons.append(f"winner's mean score {score:.3f} < --min-score {args.min_score:g}")
        if args.min_margin is not None and (margin is None or margin < args.min_margin):
            reasons.append(
                f"winner's margin {margin if margin is None else round(margin, 3)} < "
                f"--min-margin {args.min_margin:g}"
            )
        if args.min_p_best is not None and (p_best is None or p_best < args.min_p_best):
            reasons.append(
                f"winner's P(best) {p_best if p_best is None else round(p_best, 3)} < "
                f"--min-p-best {args.min_p_best:g}"
            )
        chosen = not reasons
        line = {
            **row.data,
            "selected": ranking.best_text if chosen else None,
            "selected_index": best if chosen else None,
            "selected_id": ranking.best_id if chosen else None,
            "select_reason": "; ".join(reasons) or None,
            "winner_score": score,
            "winner_margin": margin,
            "winner_p_best": p_best,
            field_name: ranking.to_dict(),
        }
        return Block("rejected" if reasons and has_rejected else "out", (line,))

    return fmt


def pairs_formatter(args: argparse.Namespace) -> Callable[[Row, Ranking], Block]:
    candidates_field = args.candidates_field

    def fmt(row: Row, ranking: Ranking) -> Block:
        order = list(ranking.order)
        if args.all_pairs:
            pairs = [
                (order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))
            ]
            pairs.sort(key=lambda p: -margin_of(ranking, *p))
        else:
            pairs = [(order[0], order[-1])] if len(order) >= 2 else []
        if args.min_margin is not None:
            pairs = [p for p in pairs if margin_of(ranking, *p) >= args.min_margin]
        if args.max_pairs is not None:
            pairs = pairs[: args.max_pairs]
        base = {k: v for k, v in row.data.items() if k != candidates_field}
        if not pairs:
            reason = (
                "no pair of candidates"
                if args.min_margin is None
                else f"no pair with margin >= --min-margin {args.min_margin:g}"
            )
            return Block(
                "rejected",
                (
                    {
                        **base,
                        "reason": reason,
                        "best_margin": finite_or_none(margin_of(ranking, order[0], order[-1])),
                    },
                ),
            )
        ids = ranking.candidate_ids
        lines = []
        for k, (c, r) in enumerate(pairs):
            lines.append(
                {
                    **base,
                    "chosen": ranking.candidates[c],
                    "rejected": ranking.candidates[r],
                    "chosen_index": c,
                    "rejected_index": r,
                    "chosen_id": None if ids is None else ids[c],
                    "rejected_id": None if ids is None else ids[r],
                    "margin": finite_or_none(margin_of(ranking, c, r)),
                    "chosen_score": finite_or_none(ranking.scores[c].mean_score),
                    "rejected_score": finite_or_none(ranking.scores[r].mean_score),
                    "pair_index": k,
                    "n_pairs": len(pairs),
                }
            )
        return Block("out", tuple(lines))

    return fmt
