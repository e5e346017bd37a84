"""A self-contained HTML report of a ranked output file (``genrm-rank report OUT.jsonl``).

One HTML file with nothing to fetch (inline CSS, script and hand-drawn SVG plots) shows what
people check before they trust a run's data:

- **Summary**: rows, ranked/failed/rejected (counting the ``OUT.errors.jsonl`` and
  ``OUT.rejected.jsonl`` files beside the output), statuses, strategies and swap modes.
- **Calls and tokens**: paid and cached calls, failed verdicts, tokens, paid calls per row.
- **Position bias and consistency**: fitted slot-1 advantage, first-slot win share and the
  agreement of a pair's two orders (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench
  and Chatbot Arena", arXiv:2306.05685), pooled and per row.
- **Sample rows**: for a seeded sample, the prompt and candidates (full texts a click away), the
  pair graph, the strengths with their intervals, and each verdict's reasoning (rows written
  with ``genrm-rank rank --judgements``).
"""

from __future__ import annotations

import html
import json
import math
import os
import random
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError
from genrm_rank.sdg.output import sidecar_path
from genrm_rank.textfiles import file_key

__all__ = ["read_rows", "render_report", "write_report"]

BAR = "#4c72b0"
"""Colour of the bars and of preferred-candidate arrows."""
MUTED = "#9aa5b1"
PROMPT_CHARS = 400
"""Characters of a prompt shown before the full conversation is a click away."""
CANDIDATE_CHARS = 160
"""Characters of a candidate shown before its full text is a click away."""
_PROMPT_FIELDS = ("prompt", "conversation", "messages")
"""Where a row's prompt is looked for, in this order."""


GENERATOR = '<meta name="generator" content="genrm-rank report">'
"""Marks a page as this module's, so that rewriting it replaces no one else's file."""
_FOOTER = "Written by genrm-rank report"


def _is_report(path: Path) -> bool:
    """Whether ``path`` holds a page :func:`write_report` wrote (an older one included)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
        handle.seek(max(0, handle.seek(0, os.SEEK_END) - 4096))
        tail = handle.read()
    return GENERATOR.encode() in head or _FOOTER.encode() in tail


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, blank lines skipped.

    Raises
    ------
    ValueError
        A line that is not a JSON object, naming the file and the line.
    """
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ArgumentError(
                    "path", f": line {number} of {path} is not valid JSON ({exc.msg})."
                ) from None
            if not isinstance(data, dict):
                raise ArgumentError(
                    "path",
                    f": line {number} of {path} is a JSON {type(data).__name__}, not an object.",
                )
            rows.append(data)
    return rows


def write_report(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    result_field: str = "genrm",
    sample: int = 8,
    seed: int = 0,
    errors: str | os.PathLike[str] | None = None,
    rejected: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the HTML report of the output file ``path``; return where it went.

    Parameters
    ----------
    path : path-like
        Rows a ``rank`` or ``select`` run wrote, each with its ranking under ``result_field``.
    output : path-like, optional
        The HTML file (default: ``OUT.report.html`` beside ``path``); never a file it reads.
    result_field : str
    sample, seed : int
        Rows shown in detail, and the seed they are drawn with.
    errors, rejected : path-like, optional
        The run's errors and rejected files (default: ``OUT.errors.jsonl`` and
        ``OUT.rejected.jsonl`` beside ``path``, when they exist).
    overwrite : bool
        Replace an ``output`` that is not a report (a report is always rewritten).
    """
    source = Path(path)
    if not source.is_file():
        raise ArgumentError("path", f": no such file: {source}.")
    target = Path(output) if output is not None else sidecar_path(source, "report", "html")
    given = {"errors": errors, "rejected": rejected}
    sides = {
        name: Path(path) if path is not None else sidecar_path(source, name)
        for name, path in given.items()
    }
    for name, read in (("path", source), *sides.items()):
        if file_key(target) == file_key(read):  # a link or hard link included
            raise ArgumentError(
                "output", f"must not be a file the report reads ('{name}'), not {target}."
            )
    if target.is_file() and target.stat().st_size > 0 and not overwrite and not _is_report(target):
        raise ArgumentError(
            "output",
            ": {target} already exists and is not a report; pass {overwrite} to replace it.",
            target=target,
            overwrite=ArgumentError.Setting("overwrite", True),
        )
    sidecars: dict[str, int | None] = {}
    for name, side in sides.items():
        if given[name] is not None and not side.is_file():
            raise ArgumentError(f"{name}", f": no such file: {side}.")
        sidecars[name] = len(read_rows(side)) if side.is_file() else None
    page = render_report(
        read_rows(source),
        result_field=result_field,
        sample=sample,
        seed=seed,
        title=source.name,
        failed_rows=sidecars["errors"],
        rejected_rows=sidecars["rejected"],
    )
    target.write_text(page, encoding="utf-8")
    return target


def render_report(
    rows: Sequence[Mapping[str, Any]],
    *,
    result_field: str = "genrm",
    sample: int = 8,
    seed: int = 0,
    title: str = "genrm-rank report",
    failed_rows: int | None = None,
    rejected_rows: int | None = None,
) -> str:
    """The report of ``rows`` as one HTML document; ``failed_rows`` and ``rejected_rows`` count
    the lines of the run's errors and rejected files (``None``: not known).

    Raises
    ------
    ValueError
        No row holds a ranking under ``result_field``, or ``sample`` is negative.
    """
    check.count("sample", sample, 0)
    ranked = [
        (i, row, row[result_field])
        for i, row in enumerate(rows)
        if isinstance(row.get(result_field), Mapping)
    ]
    if not ranked:
        keys = sorted({k for row in rows[:5] for k in row})
        raise ArgumentError(
            "result_field",
            f": no row holds a ranking under {result_field!r} (the first "
            f"rows have the keys {keys}); write the rows with 'rank' or 'select' (format 'full').",
        )
    blocks = [r for _, _, r in ranked]
    body = [
        f"<h1>{_e(title)}</h1>",
        _summary_section(rows, ranked, failed_rows, rejected_rows),
        _cost_section(blocks),
        _bias_section(blocks),
        _sample_section(ranked, sample, seed),
    ]
    return PAGE.format(title=_e(title), css=CSS, script=SCRIPT, body="\n".join(body))


def _summary_section(
    rows: Sequence[Mapping[str, Any]],
    ranked: Sequence[tuple[int, Mapping[str, Any], Mapping[str, Any]]],
    failed_rows: int | None,
    rejected_rows: int | None,
) -> str:
    blocks = [r for _, _, r in ranked]
    with_best = sum(1 for _, _, r in ranked if r.get("best") is not None)
    not_selected = sum(1 for row in rows if "selected" in row and row["selected"] is None)
    rejected = not_selected + (rejected_rows or 0)
    items = [
        ("rows in the file", len(rows)),
        ("rows with a ranking", len(ranked)),
        ("rows with a best candidate", with_best),
        ("rows failed (errors file)", "not found" if failed_rows is None else failed_rows),
        ("rows rejected (threshold)", rejected),
        ("statuses", _tally(blocks, "status")),
        ("strategies", _tally(blocks, "strategy")),
        ("swap modes", _tally(blocks, "swap")),
    ]
    return _section("Summary", _table(items), "summary")


def _cost_section(blocks: Sequence[Mapping[str, Any]]) -> str:
    calls = [_num(b.get("calls")) for b in blocks]
    paid, hits, failed, prompt, completion = (
        sum(_num(b.get(key)) for b in blocks)
        for key in ("calls", "cached", "failed_calls", "prompt_tokens", "completion_tokens")
    )
    items = [
        ("judge calls paid", f"{paid:,.0f} ({paid / len(blocks):.1f} a row)"),
        ("verdicts from the cache (free)", f"{hits:,.0f}"),
        ("verdicts failed after re-asks", f"{failed:,.0f}"),
        ("prompt tokens", f"{prompt:,.0f}"),
        ("completion tokens", f"{completion:,.0f}"),
        ("tokens a paid call", "-" if paid == 0 else f"{(prompt + completion) / paid:,.0f}"),
    ]
    split = _bars(
        [("paid", paid), ("cached", hits), ("failed", failed)],
        title="Verdicts: paid, from the cache, failed",
    )
    hist = _histogram(calls, title="Paid calls per row", xlabel="calls", integer=True)
    return _section("Calls and tokens", _table(items) + _plots(split, hist), "cost")


def _bias_section(blocks: Sequence[Mapping[str, Any]]) -> str:
    reports = [c for b in blocks if isinstance(c := b.get("consistency"), Mapping)]
    first, second, both, agree = (
        sum(_num(c.get(key)) for c in reports)
        for key in ("first_slot_wins", "second_slot_wins", "pairs_both_orders", "agree")
    )
    bias = _numbers(blocks, "position_bias")
    shares, rates = _numbers(reports, "first_slot_win_share"), _numbers(reports, "agreement_rate")
    decided = first + second
    share = f"{first / (decided or 1):.3f} of {decided:,.0f} decided verdicts (0.5: no lean)"
    median = f"{statistics.median(bias) if bias else 0:+.3f} log-odds over {len(bias)} rows"
    agreed = f"{agree / (both or 1):.3f} of {both:,.0f} pairs judged both ways"
    log_odds = f"{math.log(first / second):+.3f}" if first and second else "-"
    items = [
        ("first-slot win share (pooled)", share if decided else "-"),
        ("pooled slot-1 log-odds", log_odds),
        ("fitted position bias, median of rows", median if bias else "-"),
        ("both orders agree (pooled)", agreed if both else "-"),
    ]
    plots = _plots(
        *(
            _histogram(values, title=title, xlabel=xlabel, marker=marker, domain=domain)
            for values, title, xlabel, marker, domain in (
                (bias, "Fitted position bias per row (log-odds)", "slot-1 advantage", 0.0, None),
                (shares, "First-slot win share per row", "share", 0.5, (0.0, 1.0)),
                (rates, "Agreement of the two orders per row", "agreement rate", None, (0.0, 1.0)),
            )
        )
    )
    return _section("Position bias and consistency", _table(items) + plots, "bias")


def _sample_section(
    ranked: Sequence[tuple[int, Mapping[str, Any], Mapping[str, Any]]], sample: int, seed: int
) -> str:
    if sample == 0:
        return _section("Sample rows", "<p>No rows sampled (sample=0).</p>", "sample")
    # Rows with verdicts first: they are the ones with a graph and reasoning to show.
    with_verdicts = [r for r in ranked if isinstance(r[2].get("judgements"), list)]
    pool = with_verdicts or list(ranked)
    chosen = sorted(random.Random(seed).sample(range(len(pool)), min(sample, len(pool))))
    note = (
        ""
        if with_verdicts
        else "<p class=note>The rows carry no verdicts, so there is no pair graph and no "
        "reasoning to show: write them with <code>genrm-rank rank --judgements</code>.</p>"
    )
    parts = [
        f"<p>{len(chosen)} of {len(pool)} rows{' with verdicts' if with_verdicts else ''}, "
        f"drawn with seed {seed}. Click an arrow or a pair to read the verdicts.</p>",
        note,
    ]
    parts += [_row_detail(*pool[k]) for k in chosen]
    return _section("Sample rows", "\n".join(parts), "sample")


def _row_detail(index: int, row: Mapping[str, Any], block: Mapping[str, Any]) -> str:
    anchor = f"row{index}"
    n = len(block.get("scores", []) or [])
    labels, texts = _candidates(row, n)
    scores = [s for s in block.get("scores", []) if isinstance(s, Mapping)]
    order = [int(i) for i in block.get("order", []) if isinstance(i, int) and 0 <= i < n]
    judgements = [j for j in block.get("judgements", []) or [] if isinstance(j, Mapping)]
    pairs = [
        (pair, verdicts, _preference(pair[0], verdicts)) for pair, verdicts in _by_pair(judgements)
    ]
    head = (
        f"<h3 id={anchor}>Row {_e(row.get('id', index))}</h3>"
        + _shortened(*_prompt(row), PROMPT_CHARS, "prompt")
        + f"<p>{_e(block.get('strategy'))}, swap {_e(block.get('swap'))}: "
        f"{_e(block.get('calls'))} calls, status {_e(block.get('status'))}; best "
        f"<b>{_e(_label(labels, block.get('best')))}</b> (P(best) {_fmt(block.get('p_best'))})"
        "</p>"
    )
    graph = _pair_graph(anchor, labels, order, pairs) if judgements else ""
    return (
        f"<div class=row>{head}<div class=plots>{graph}{_strengths(labels, order, scores)}</div>"
        f"{_candidate_table(labels, texts, order, scores)}{_pair_details(anchor, labels, pairs)}"
        "</div>"
    )


_Pair = tuple[tuple[int, int], list[Mapping[str, Any]], float | None]
"""A pair ``(low, high)`` judged, its verdicts, and the mean preference for ``low``."""


def _pair_details(anchor: str, labels: Sequence[str], pairs: Sequence[_Pair]) -> str:
    out = []
    for (a, b), verdicts, pref in pairs:
        if pref is None:
            lean = "no usable verdict"
        elif pref == 0.5:
            lean = "even (0.50)"
        else:
            lean = f"{_label(labels, a if pref > 0.5 else b)} preferred ({max(pref, 1 - pref):.2f})"
        out.append(
            f"<details id={anchor}-pair{a}-{b}><summary>{_e(_label(labels, a))} vs "
            f"{_e(_label(labels, b))}: {len(verdicts)} verdict(s), {_e(lean)}</summary>"
            f"<ul>{''.join(_verdict_item(labels, j) for j in verdicts)}</ul></details>"
        )
    return "<div class=pairs>" + "".join(out) + "</div>" if out else ""


def _verdict_item(labels: Sequence[str], j: Mapping[str, Any]) -> str:
    if j.get("ranking") is None:
        verdict = f"failed: {_e(j.get('failure'))} {_e(j.get('error') or '')}"
    else:
        verdict = (
            f"ranking {_fmt(j.get('ranking'))} (1: slot 1 much better .. 6: slot 2 much "
            f"better); scores {_fmt(j.get('score_1'))} / {_fmt(j.get('score_2'))}"
        )
    reasoning = j.get("reasoning")
    shown = f"<pre class=reasoning>{_e(reasoning)}</pre>" if reasoning else ""
    return (
        f"<li><b>slot 1</b> {_e(_label(labels, int(j['first'])))}, <b>slot 2</b> "
        f"{_e(_label(labels, int(j['second'])))}: {verdict}"
        f"{shown or '<p class=note>no reasoning recorded</p>'}</li>"
    )


def _pair_graph(
    anchor: str, labels: Sequence[str], order: Sequence[int], pairs: Sequence[_Pair]
) -> str:
    """Candidates on a circle (best at the top, then clockwise in the ranking's order), a line
    for every pair judged, with an arrow towards the candidate the verdicts prefer less."""
    n, size, radius = len(labels), 320, 112
    centre = size / 2
    ranked = list(order) + [i for i in range(n) if i not in order]
    pos: dict[int, tuple[float, float]] = {}
    for k, i in enumerate(ranked):
        angle = -math.pi / 2 + 2 * math.pi * k / max(n, 1)
        pos[i] = (centre + radius * math.cos(angle), centre + radius * math.sin(angle))
    edges = []
    for (a, b), verdicts, pref in pairs:
        if a not in pos or b not in pos:
            continue
        (xa, ya), (xb, yb) = pos[a], pos[b]
        if pref is None or pref == 0.5:  # no usable verdict (dashed), or even (no arrow)
            dash = ' stroke-dasharray="4 3"' if pref is None else ""
            line = _line(xa, ya, xb, yb, f'stroke="{MUTED}"{dash} stroke-width="2"')
        else:
            (x1, y1), (x2, y2) = ((xa, ya), (xb, yb)) if pref >= 0.5 else ((xb, yb), (xa, ya))
            d = math.hypot(x2 - x1, y2 - y1) or 1.0  # stop short of the loser's node
            x2s, y2s = x2 - (x2 - x1) * 16 / d, y2 - (y2 - y1) * 16 / d
            width = f"{1.5 + 4 * abs(pref - 0.5):.1f}"
            style = f'stroke="{BAR}" stroke-width="{width}" marker-end="url(#{anchor}-arrow)"'
            line = _line(x1, y1, x2s, y2s, style)
        title = _e(f"{labels[a]} vs {labels[b]}: {len(verdicts)} verdict(s)")
        edges.append(f'<a href="#{anchor}-pair{a}-{b}" class=edge><title>{title}</title>{line}</a>')
    for k, i in enumerate(ranked):
        x, y = pos[i]
        edges.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="14" fill="{"#ffffff" if k else "#f2b134"}" '
            f'stroke="#333"/>{_text(x, y + 4, k + 1, "node", "middle")}'
            + _text(
                x, y + (26 if y >= centre else -20), _e(_excerpt(labels[i], 18)), "label", "middle"
            )
        )
    arrow = (
        f'<defs><marker id="{anchor}-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
        f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{BAR}"/></marker></defs>'
    )
    caption = (
        "Pairs judged: an arrow from the preferred candidate (thicker: surer; grey: even; dashed: "
        "no usable verdict); numbers are ranks."
    )
    return _figure(size, size, "pair graph", arrow + "".join(edges), caption)


def _strengths(labels: Sequence[str], order: Sequence[int], scores: Sequence[Any]) -> str:
    """Horizontal strength dots with their intervals, best first."""
    shown = [i for i in (list(order) or range(len(scores))) if i < len(scores) and i < len(labels)]
    values = [
        (labels[i], value, _opt(scores[i].get("lower")), _opt(scores[i].get("upper")))
        for i in shown
        if (value := _opt(scores[i].get("strength"))) is not None
    ]
    if not values:
        return ""
    low = min(v[1] if v[2] is None else v[2] for v in values)
    high = max(v[1] if v[3] is None else v[3] for v in values)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    width, left, step = 360, 120, 24
    height = 30 + step * len(values)

    def x(v: float) -> float:
        return left + (width - left - 15) * (v - low) / (high - low)

    parts = []
    for k, (label, value, lo, hi) in enumerate(values):
        y = 20 + step * k
        parts.append(_text(left - 8, y + 4, _e(_excerpt(label, 16)), "label", "end"))
        if lo is not None and hi is not None:
            parts.append(_line(x(lo), y, x(hi), y, f'stroke="{MUTED}" stroke-width="3"'))
        parts.append(f'<circle cx="{x(value):.1f}" cy="{y}" r="5" fill="{BAR}"/>')
    parts.append(_text(left, height - 8, f"{low:+.1f}", "tick"))
    parts.append(_text(width - 15, height - 8, f"{high:+.1f}", "tick", "end"))
    caption = "Bradley-Terry strength (log-odds) with its interval, best first."
    return _figure(width, height, "strengths", "".join(parts), caption)


def _histogram(
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    marker: float | None = None,
    domain: tuple[float, float] | None = None,
    integer: bool = False,
    bins: int = 20,
) -> str:
    """A histogram as SVG (a note instead when there is nothing to plot)."""
    width, height, pad = 360, 200, 30
    if not values:
        return f"<figure class=empty><p>{_e(title)}: no value to plot.</p></figure>"
    low, high = domain if domain is not None else (min(values), max(values))
    if integer:
        low, high = math.floor(low) - 0.5, math.ceil(high) + 0.5
        bins = max(1, min(40, int(high - low)))
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    counts = [0] * bins
    for v in values:
        counts[min(max(int((v - low) / (high - low) * bins), 0), bins - 1)] += 1
    top, bw, base = max(counts), (width - 2 * pad) / bins, height - pad
    parts = [
        f'<rect x="{pad + k * bw + 1:.1f}" y="{base - h:.1f}" width="{max(bw - 2, 1):.1f}" '
        f'height="{h:.1f}" fill="{BAR}"><title>{c}</title></rect>'
        for k, c in enumerate(counts)
        if c and (h := (height - 2 * pad) * c / top)
    ]
    if marker is not None and low <= marker <= high:
        mx = pad + (width - 2 * pad) * (marker - low) / (high - low)
        style = 'stroke="#c44e52" stroke-dasharray="4 3" stroke-width="1.5"'
        parts.append(_line(mx, pad - 10, mx, base, style))
    shift, fmt = (0.5, "{:.0f}") if integer else (0, "{:.2f}")
    parts += [
        _line(pad, base, width - pad, base, 'stroke="#333"'),
        _text(pad, base + 14, fmt.format(low + shift), "tick"),
        _text(width - pad, base + 14, fmt.format(high - shift), "tick", "end"),
        _text(
            width / 2,
            height - 4,
            f"{_e(xlabel)} ({len(values)} rows; highest bar {top})",
            "tick",
            "middle",
        ),
    ]
    return _figure(width, height, title, "".join(parts), title)


def _bars(items: Sequence[tuple[str, float]], *, title: str) -> str:
    """Horizontal bars, one per item."""
    width, left, step = 360, 80, 34
    height = 20 + step * len(items)
    top = max((v for _, v in items), default=0) or 1
    parts = []
    for k, (label, value) in enumerate(items):
        y, w = 12 + step * k, (width - left - 70) * value / top
        parts.append(
            _text(left - 8, y + 15, _e(label), "label", "end")
            + f'<rect x="{left}" y="{y}" width="{w:.1f}" height="20" fill="{BAR}"/>'
            + _text(left + w + 6, y + 15, f"{value:,.0f}", "tick")
        )
    return _figure(width, height, title, "".join(parts), title)


def _at(**coordinates: float) -> str:
    """SVG coordinate attributes, a float written with one decimal: ``x="1.5" y="2"``."""
    return " ".join(
        f'{k}="{v:.1f}"' if isinstance(v, float) else f'{k}="{v}"' for k, v in coordinates.items()
    )


def _text(x: float, y: float, body: object, cls: str, anchor: str = "") -> str:
    side = f' text-anchor="{anchor}"' if anchor else ""
    return f"<text {_at(x=x, y=y)}{side} class={cls}>{body}</text>"


def _line(x1: float, y1: float, x2: float, y2: float, style: str) -> str:
    return f"<line {_at(x1=x1, y1=y1, x2=x2, y2=y2)} {style}/>"


def _by_pair(
    judgements: Iterable[Mapping[str, Any]],
) -> list[tuple[tuple[int, int], list[Mapping[str, Any]]]]:
    """The verdicts grouped by unordered pair ``(low, high)``, pairs sorted."""
    by_pair: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for j in judgements:
        a, b = int(j["first"]), int(j["second"])
        by_pair.setdefault((min(a, b), max(a, b)), []).append(j)
    return sorted(by_pair.items())


def _preference(a: int, verdicts: Iterable[Mapping[str, Any]]) -> float | None:
    """Mean linear preference for candidate ``a`` over its opponent, over usable verdicts."""
    prefs = []
    for j in verdicts:
        ranking = _opt(j.get("ranking"))
        if ranking is None:
            continue
        slot1 = (6.0 - ranking) / 5.0
        prefs.append(slot1 if int(j["first"]) == a else 1.0 - slot1)
    return sum(prefs) / len(prefs) if prefs else None


def _label(labels: Sequence[str], index: Any) -> str:
    return labels[index] if isinstance(index, int) and 0 <= index < len(labels) else "-"


def _candidate_table(
    labels: Sequence[str], texts: Sequence[str], order: Sequence[int], scores: Sequence[Any]
) -> str:
    head = (
        "<tr><th>rank</th><th>candidate</th><th>text</th><th>strength</th><th>interval</th><th>P(best)</th>"
        "<th>win rate</th><th>mean score</th><th>compared</th></tr>"
    )
    body = []
    for rank, i in enumerate(list(order) or range(len(scores)), 1):
        if i >= len(scores) or not isinstance(scores[i], Mapping):
            continue
        s = scores[i]
        body.append(
            f"<tr><td>{rank}</td><td>{_e(_label(labels, i))}</td><td class=text>"
            f"{_shortened(texts[i], texts[i], CANDIDATE_CHARS, 'candidate')}</td>"
            f"<td>{_fmt(s.get('strength'))}"
            f"</td><td>{_fmt(s.get('lower'))} to {_fmt(s.get('upper'))}</td>"
            f"<td>{_fmt(s.get('p_best'))}</td><td>{_fmt(s.get('win_rate'))}</td>"
            f"<td>{_fmt(s.get('mean_score'))}</td><td>{_e(s.get('comparisons'))}</td></tr>"
        )
    return f"<table class=candidates>{head}{''.join(body)}</table>"


def _candidates(row: Mapping[str, Any], n: int) -> tuple[list[str], list[str]]:
    """Labels (ids, else ``#i``) and texts of a row's first ``n`` candidates (strings, or objects
    with a ``text``)."""
    labels, texts = [f"#{i}" for i in range(n)], [""] * n
    candidates = row.get("candidates")
    for i, c in enumerate(candidates[:n] if isinstance(candidates, list) else []):
        if isinstance(c, Mapping) and c.get("id") is not None:
            labels[i] = str(c["id"])
        value = c.get("text", c.get("content")) if isinstance(c, Mapping) else c
        texts[i] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return labels, texts


def _shortened(short: str, full: str, limit: int, kind: str) -> str:
    """``short`` cut to ``limit`` characters, with ``full`` a click away when it says more.

    >>> _shortened("a  b", "a b", 10, "prompt")
    '<div class=prompt>a b</div>'
    >>> _shortened("<x>" * 5, "<x>" * 5, 6, "candidate")[:63]
    '<details class=candidate><summary>&lt;x&gt;&lt;x…</summary><pre'
    """
    brief = _excerpt(short, limit)
    if brief == " ".join(full.split()):
        return f"<div class={kind}>{_e(brief)}</div>"
    return (
        f"<details class={kind}><summary>{_e(brief)}</summary>"
        f"<pre class=fulltext>{_e(full)}</pre></details>"
    )


def _prompt(row: Mapping[str, Any]) -> tuple[str, str]:
    """The row's prompt: its last user turn (or the whole of it), and the whole conversation
    with each message by its role (``""`` when the row has none)."""
    value = next((row[f] for f in _PROMPT_FIELDS if isinstance(row.get(f), (str, list))), "")
    if not isinstance(value, list):
        return value, value
    users = [m for m in value if isinstance(m, Mapping) and m.get("role") == "user"]
    content = users[-1].get("content") if users else None
    whole = "\n\n".join(
        f"{m.get('role')}: {m.get('content')}" if isinstance(m, Mapping) else str(m) for m in value
    )
    return content if isinstance(content, str) else json.dumps(value, ensure_ascii=False), whole


def _excerpt(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _tally(blocks: Iterable[Mapping[str, Any]], key: str) -> str:
    """How many blocks hold each value of ``key``, most common first."""
    counts = Counter(str(b.get(key)) for b in blocks).most_common()
    return ", ".join(f"{k}: {v}" for k, v in counts)


def _opt(value: Any) -> float | None:
    """A finite number as a float (a bool is not one); else ``None``."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) else None


def _num(value: Any) -> float:
    return _opt(value) or 0.0


def _numbers(items: Iterable[Mapping[str, Any]], key: str) -> list[float]:
    """The finite numbers the items hold under ``key``."""
    return [v for item in items if (v := _opt(item.get(key))) is not None]


def _fmt(value: Any) -> str:
    if _opt(value) is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{float(value):.3g}"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(items: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)
    return f"<table class=facts>{rows}</table>"


def _figure(width: int, height: int, label: str, svg: str, caption: str) -> str:
    """An SVG plot of ``width`` by ``height`` with its caption."""
    return (
        f'<figure><svg class=plot viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{_e(label)}">{svg}</svg>'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _plots(*figures: str) -> str:
    return f"<div class=plots>{''.join(figures)}</div>"


def _section(title: str, content: str, anchor: str) -> str:
    return f"<section id={anchor}><h2>{_e(title)}</h2>{content}</section>"


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
       max-width: 1180px; padding: 0 16px; color: #1f2933; background: #fff; }
h1 { font-size: 22px; } h2 { border-bottom: 1px solid #d9e2ec; padding-bottom: 4px; }
h3 { margin-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid #eef2f6; }
table.facts th { font-weight: normal; color: #52606d; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 12px; color: #52606d; max-width: 360px; }
svg text.tick, svg text.label { font-size: 11px; fill: #333; }
svg text.node { font-size: 12px; font-weight: bold; fill: #111; }
a.edge:hover line { stroke: #f2b134; }
.row { border: 1px solid #d9e2ec; border-radius: 6px; padding: 8px 14px; margin: 14px 0; }
.prompt { color: #52606d; font-style: italic; margin: 6px 0; }
td.text { max-width: 480px; }
pre.fulltext { white-space: pre-wrap; max-height: 320px; overflow: auto; background: #fff;
               border: 1px solid #e4e7eb; padding: 6px; font: inherit; font-style: normal; }
details { margin: 3px 0; } details[open] { background: #f8fafc; }
summary { cursor: pointer; }
pre.reasoning { white-space: pre-wrap; max-height: 320px; overflow: auto; background: #fff;
                border: 1px solid #e4e7eb; padding: 6px; font-size: 12px; }
.note { color: #8a6d3b; }
"""

SCRIPT = """
function openTarget() {
  var id = decodeURIComponent(window.location.hash.slice(1));
  var el = id ? document.getElementById(id) : null;
  if (el && el.tagName === "DETAILS") { el.open = true; }  // the browser scrolls to it
}
window.addEventListener("hashchange", openTarget);
document.addEventListener("DOMContentLoaded", openTarget);
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="genrm-rank report">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{css}</style>
<script>{script}</script>
</head>
<body>
{body}
<footer><p class=note>Written by genrm-rank report; self-contained (no network needed).</p>
</footer>
</body>
</html>
"""
