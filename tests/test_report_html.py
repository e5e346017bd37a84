"""Tests for genrm_rank.report_html and ``genrm-rank report``.

The ``browser`` tests render the report in a real headless Chromium (Debian's ``chromium``
package): no console message, the plots drawn on the screenshot, and the verdicts a click away.
They are deselected by default (``-m browser`` runs them; ``.ci/run`` does).
"""

from __future__ import annotations

import html
import json
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genrm_rank.cli import main
from genrm_rank.report_html import read_rows, render_report, write_report
from genrm_rank.results import REASONING_CHARS


def write_input(path: Path, n: int = 12, k: int = 5) -> None:
    with open(path, "w") as f:
        for i in range(n):
            candidates = [
                {"id": f"sys-{j}", "text": f"Answer {j} to {i}: " + "detail " * ((j * i) % 7)}
                for j in range(k)
            ]
            f.write(
                json.dumps(
                    {"id": f"q{i}", "prompt": f"Question {i} <b>&</b>?", "candidates": candidates}
                )
                + "\n"
            )


@pytest.fixture(scope="module")
def ranked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rows of ``rank --judgements`` (knockout, both orders) from the simulated GenRM."""
    folder = tmp_path_factory.mktemp("report")
    write_input(folder / "in.jsonl")
    status = main(
        ["rank", str(folder / "in.jsonl"), "-o", str(folder / "out.jsonl"), "--judge",
         "simulated", "--judgements", "--strategy", "knockout", "-q"]
    )  # fmt: skip
    assert status == 0
    return folder / "out.jsonl"


def test_judgements_carry_the_reasoning_cut_to_a_sane_length(ranked: Path) -> None:
    rows = read_rows(ranked)
    verdicts = [j for row in rows for j in row["genrm"]["judgements"]]
    assert len(verdicts) == 12 * 8  # 4 matches x 2 orders a row
    assert all(isinstance(j["reasoning"], str) and j["reasoning"] for j in verdicts)
    assert all(len(j["reasoning"]) <= REASONING_CHARS + 40 for j in verdicts)


def test_report_holds_the_summary_costs_plots_and_sample(ranked: Path) -> None:
    rows = read_rows(ranked)
    page = render_report(rows, sample=3, seed=1)
    calls = sum(row["genrm"]["calls"] for row in rows)
    tokens = sum(row["genrm"]["prompt_tokens"] for row in rows)
    assert f"<th>judge calls paid</th><td>{calls:,} ({calls / 12:.1f} a row)</td>" in page
    assert f"<th>prompt tokens</th><td>{tokens:,}</td>" in page
    assert "<th>strategies</th><td>knockout: 12</td>" in page
    assert "<th>rows failed (errors file)</th><td>not found</td>" in page
    assert page.count("<svg class=plot") == 5 + 2 * 3  # 5 run plots, a graph and strengths a row
    assert page.count("<div class=row>") == 3
    # Every pair's verdicts sit in a <details> that a graph edge links to, with the reasoning.
    targets = re.findall(r'<a href="#(row\d+-pair\d+-\d+)"', page)
    assert len(targets) == 3 * 4 and all(f"<details id={t}>" in page for t in targets)
    reasoning = rows[0]["genrm"]["judgements"][0]["reasoning"]
    sampled = [int(m) for m in re.findall(r"<h3 id=row(\d+)>", page)]
    if 0 in sampled:
        assert html.escape(reasoning) in page
    assert page.count("<pre class=reasoning>") == 3 * 8
    # Text from the rows is escaped, and nothing is fetched from elsewhere.
    assert "Question" in page and "<b>&</b>" not in page and "&lt;b&gt;&amp;&lt;/b&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_sample_is_seeded_and_bounded(ranked: Path) -> None:
    rows = read_rows(ranked)
    ids = lambda page: re.findall(r"<h3 id=row(\d+)>", page)  # noqa: E731
    # The sample is the standard library's seeded draw, so a reader can redraw it from the seed
    # the page states.
    page = render_report(rows, sample=4, seed=2)
    assert ids(page) == [str(i) for i in sorted(random.Random(2).sample(range(12), 4))]
    assert "drawn with seed 2" in page
    assert ids(render_report(rows, sample=4, seed=2)) != ids(render_report(rows, sample=4, seed=3))
    assert len(ids(render_report(rows, sample=50))) == 12
    assert ids(render_report(rows, sample=0)) == []


def test_rows_without_verdicts_say_how_to_get_them(ranked: Path) -> None:
    rows = read_rows(ranked)
    for row in rows:
        del row["genrm"]["judgements"]
    page = render_report(rows, sample=2)
    assert "genrm-rank rank --judgements" in page and "<pre class=reasoning>" not in page
    assert page.count("<div class=row>") == 2 and 'aria-label="pair graph"' not in page


def test_select_rows_and_sidecars_are_counted(tmp_path: Path) -> None:
    write_input(tmp_path / "in.jsonl", n=6, k=3)
    with open(tmp_path / "in.jsonl", "a") as f:
        f.write('{"id": "broken", "prompt": \n')
    status = main(
        ["select", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "best.jsonl"), "--judge",
         "simulated", "--min-p-best", "0.9", "-q"]
    )  # fmt: skip
    assert status == 1  # the broken line failed
    selected = read_rows(tmp_path / "best.jsonl")
    rejected = sum(row["selected"] is None for row in selected)
    page = (write_report(tmp_path / "best.jsonl")).read_text()
    assert (tmp_path / "best.report.html").is_file()
    assert "<th>rows failed (errors file)</th><td>1</td>" in page
    assert f"<th>rows rejected (threshold)</th><td>{rejected}</td>" in page
    assert "genrm-rank rank --judgements" in page  # select rows carry no verdicts


LONG = "Step one, then the next. " * 30 + "<script>alert('end')</script> The end."


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ranked row with a multi-turn prompt, a short candidate and a long one, both with markup."""
    folder = tmp_path_factory.mktemp("texts")
    row = {
        "id": "q0",
        "messages": [
            {"role": "system", "content": "Be brief & exact."},
            {"role": "user", "content": "Why <b>TCP</b> slow start?"},
        ],
        "candidates": ["Short <i>answer</i>.", LONG, "Third."],
    }
    (folder / "in.jsonl").write_text(json.dumps(row) + "\n")
    status = main(
        ["rank", str(folder / "in.jsonl"), "-o", str(folder / "out.jsonl"), "--judge",
         "simulated", "--judgements", "-q"]
    )  # fmt: skip
    assert status == 0
    return folder / "out.jsonl"


def test_sample_rows_show_the_texts_shortened_with_the_full_text_on_demand(texts: Path) -> None:
    page = render_report(read_rows(texts), sample=1)
    # A short candidate in full; a long one cut, whole in a <details>; all of it escaped.
    assert "<td class=text><div class=candidate>Short &lt;i&gt;answer&lt;/i&gt;.</div></td>" in page
    assert "<div class=candidate>Third.</div>" in page
    summary = re.search(r"<details class=candidate><summary>(.*?)</summary>", page)
    assert summary is not None and summary.group(1).startswith("Step one, then the next.")
    assert summary.group(1).endswith("\u2026") and len(html.unescape(summary.group(1))) == 160
    assert f"<pre class=fulltext>{html.escape(LONG)}</pre></details>" in page
    # The prompt: its last user turn, the whole conversation a click away.
    assert (
        "<details class=prompt><summary>Why &lt;b&gt;TCP&lt;/b&gt; slow start?</summary>"
        "<pre class=fulltext>system: Be brief &amp; exact.\n\nuser: Why &lt;b&gt;TCP&lt;/b&gt; "
        "slow start?</pre></details>"
    ) in page
    assert "<script>alert" not in page and "<i>answer" not in page


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ('{"id": 1}\n', {}, "no row holds a ranking under 'genrm' .* keys \\['id'\\]"),
        ("[1, 2]\n", {}, "line 1 of .* is a JSON list, not an object"),
        ('{"id": 1}\n{"id": \n', {}, "line 2 of .* is not valid JSON"),
        ('{"genrm": {}}\n', {"sample": -1}, "'sample' must be an int >= 0, not -1"),
    ],
)
def test_bad_input_is_refused_naming_what_was_wrong(
    tmp_path: Path, content: str, kwargs: dict[str, int], message: str
) -> None:
    (tmp_path / "out.jsonl").write_text(content)
    with pytest.raises(ValueError, match=message):
        write_report(tmp_path / "out.jsonl", **kwargs)  # type: ignore[arg-type]


def test_cli_report(ranked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "r.html"
    assert main(["report", str(ranked), "-o", str(target), "--sample", "2"]) == 0
    assert f"report written to {target}" in capsys.readouterr().out
    assert target.read_text().count("<div class=row>") == 2
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2
    assert "argument OUT.jsonl: no such file" in capsys.readouterr().err
    assert main(["report", str(ranked), "--result-field", "nope"]) == 2
    assert "argument --result-field: no row holds a ranking under 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# In a real browser

BAR_RGB = np.array([0x4C, 0x72, 0xB0]) / 255.0
MEASURE = """<script>
document.addEventListener("DOMContentLoaded", function () {  // after the page's own handler
document.body.dataset.plots = JSON.stringify(Array.from(document.querySelectorAll("svg.plot"))
  .map(function (s) { var r = s.getBoundingClientRect();
    return [r.left, r.top + window.scrollY, r.width, r.height, s.getAttribute("aria-label")]; }));
document.body.dataset.open = JSON.stringify(Array.from(document.querySelectorAll("details[open]"))
  .map(function (d) { return d.id; }));
});
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise RuntimeError("the browser tests need Chromium: apt-get install -y chromium")
    return subprocess.run(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
         "--v=0", "--hide-scrollbars", "--force-device-scale-factor=1",
         "--window-size=1280,2400", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def console(stderr: str) -> list[str]:
    """The page's console messages (errors, uncaught exceptions, warnings) from the log."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def measured(page: Path, hash_: str = "", script: str = MEASURE) -> dict[str, Any]:
    """Plot boxes and open <details> of ``page`` as rendered (a copy with MEASURE added), or
    what another ``script`` records in the body's data attributes."""
    copy = page.with_name("measured-" + page.name)
    copy.write_text(page.read_text().replace("</body>", script + "</body>"))
    r = chromium("--dump-dom", copy.as_uri() + hash_)
    assert r.returncode == 0, r.stderr[-2000:]
    assert console(r.stderr) == []
    body = re.search(r"<body([^>]*)>", r.stdout)
    assert body is not None
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    return {k: json.loads(html.unescape(v)) for k, v in attrs.items()}


@pytest.mark.browser
def test_console_check_catches_errors(tmp_path: Path) -> None:
    """The check used below is able to fail: a page with an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><script>console.error("x"); notDefined();</script><p>x</p>')
    r = chromium("--dump-dom", bad.as_uri())
    messages = console(r.stderr)
    assert len(messages) == 2 and "Uncaught ReferenceError" in messages[1]


@pytest.mark.browser
def test_report_renders_with_its_plots_and_no_console_message(ranked: Path) -> None:
    page = write_report(ranked, sample=3)
    shot = page.with_suffix(".png")
    r = chromium(f"--screenshot={shot}", page.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    assert console(r.stderr) == [], console(r.stderr)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    height, width = pixels.shape[:2]
    assert (width, height) == (1280, 2400)
    boxes = measured(page)["plots"]
    assert len(boxes) == 5 + 2 * 3
    seen = 0
    for left, top, w, h, label in boxes:
        if top + h > height:
            continue  # below the screenshot's fold
        region = pixels[int(top) : int(top + h), int(left) : int(left + w)]
        near_bar = np.abs(region - BAR_RGB).max(axis=-1) < 0.08
        assert near_bar.mean() > 0.002, f"plot {label!r} looks empty on the screenshot"
        assert region.std() > 0.05, f"plot {label!r} is a flat colour"
        seen += 1
    assert seen >= 6  # the five run plots and at least the first sample row's
    # Outside the plots the page is mostly white: the bars are the plots', not a background.
    assert np.abs(pixels - 1.0).max(axis=-1).__lt__(0.02).mean() > 0.6


@pytest.mark.browser
def test_a_pair_link_opens_its_verdicts(ranked: Path) -> None:
    page = write_report(ranked, sample=3)
    target = re.findall(r'<a href="#(row\d+-pair\d+-\d+)"', page.read_text())[-1]
    assert measured(page)["open"] == []
    assert measured(page, "#" + target)["open"] == [target]


@pytest.mark.browser
def test_a_long_text_opens_on_a_click(texts: Path, tmp_path: Path) -> None:
    page = write_report(texts, tmp_path / "texts.html", sample=1)
    probe = """<script>
document.addEventListener("DOMContentLoaded", function () {
  var d = document.querySelector("details.candidate"), pre = d.querySelector("pre");
  var shut = [d.open, pre.checkVisibility(), pre.getBoundingClientRect().height];
  d.querySelector("summary").click();
  var opened = [d.open, pre.checkVisibility(), pre.getBoundingClientRect().height];
  document.body.dataset.states = JSON.stringify([shut, opened]);
  document.body.dataset.alerts = JSON.stringify(document.querySelectorAll("td script").length);
});
</script>"""
    data = measured(page, script=probe)
    shut, opened = data["states"]
    assert shut[:2] == [False, False]  # the full text is hidden at first
    assert opened[:2] == [True, True] and opened[2] > 40  # and shown whole on a click
    assert data["alerts"] == 0  # the candidate's markup is text, not a script
