"""Tests for genrm_rank.aggregators.graph."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_data import VICUNA_GPT4_PAIRWISE, read_jsonl

from genrm_rank.aggregators import (
    Comparisons,
    bradley_terry,
    comparison_graph,
    connected_components,
    intransitive_cycles,
    is_connected,
    majority_digraph,
)
from genrm_rank.aggregators.graph import DENSE_MAX


def test_comparison_graph_counts_both_orders() -> None:
    c = Comparisons.from_arrays(
        4, [0, 1, 0, 2], [1, 0, 1, 3], [1.0, 0.0, 0.5, 1.0], weight=[1, 2, 3, 4]
    )
    g = comparison_graph(c)
    assert g.shape == (4, 4) and np.array_equal(g, g.T)
    assert g[0, 1] == 3
    assert g[2, 3] == 1
    assert np.count_nonzero(np.triu(g)) == 2


@pytest.mark.parametrize(
    ("n_items", "pairs", "components"),
    [
        (4, [(0, 1), (3, 2)], [[0, 1], [2, 3]]),
        (4, [(0, 1), (1, 2), (2, 3)], [[0, 1, 2, 3]]),
        (5, [(4, 1), (3, 2)], [[0], [1, 4], [2, 3]]),
        (1, [], [[0]]),
    ],
)
def test_connected_components(
    n_items: int, pairs: list[tuple[int, int]], components: list[list[int]]
) -> None:
    c = Comparisons.from_pairs(n_items, pairs)
    assert connected_components(c) == components
    assert is_connected(c) == (len(components) == 1)


def test_disconnected_graph_reported_and_fitted() -> None:
    c = Comparisons.from_pairs(5, [(0, 1), (1, 2), (2, 0), (3, 4), (4, 3)])
    assert connected_components(c) == [[0, 1, 2], [3, 4]]
    assert not is_connected(c)
    fit = bradley_terry(c, alpha=0.01)
    assert np.all(np.isfinite(fit.params))


@pytest.mark.parametrize(
    ("first", "second", "outcome", "cycles"),
    [
        ([0, 1, 2], [1, 2, 0], [1.0, 1.0, 1.0], [[0, 1, 2]]),
        ([0, 1, 2], [1, 2, 0], [0.0, 0.0, 0.0], [[0, 2, 1]]),
        ([0, 1, 0], [1, 2, 2], [1.0, 1.0, 1.0], []),
        # a tie breaks the cycle
        ([0, 1, 2], [1, 2, 0], [1.0, 1.0, 0.5], []),
        # two 3-cycles sharing an edge among four items
        ([0, 1, 2, 1, 3], [1, 2, 0, 3, 0], [1.0] * 5, [[0, 1, 2], [0, 1, 3]]),
    ],
)
def test_intransitive_cycles_cases(
    first: list[int], second: list[int], outcome: list[float], cycles: list[list[int]]
) -> None:
    c = Comparisons.from_arrays(4, first, second, outcome)
    assert intransitive_cycles(c) == cycles


def test_longer_cycles_need_a_larger_bound() -> None:
    c = Comparisons.from_pairs(4, [(0, 1), (1, 2), (2, 3), (3, 0)])
    assert intransitive_cycles(c) == []
    assert intransitive_cycles(c, max_length=4) == [[0, 1, 2, 3]]
    with pytest.raises(ValueError, match=r"'max_length' must be at least 3, not 2"):
        intransitive_cycles(c, max_length=2)


def test_majority_digraph_aggregates_both_orders() -> None:
    c = Comparisons.from_arrays(2, [0, 1], [1, 0], [0.9, 0.5])
    g = majority_digraph(c)
    assert np.argwhere(g).tolist() == [[0, 1]]
    assert g[0, 1] == pytest.approx(0.7)


def test_qlora_judge_has_valid_majority_cycles() -> None:
    rows = [
        r for r in read_jsonl(VICUNA_GPT4_PAIRWISE) if r["winner"] != "error" and r["qid"] == "1"
    ]
    names = sorted({r["model_a"] for r in rows} | {r["model_b"] for r in rows})
    index = {name: i for i, name in enumerate(names)}
    outcome = {"A": 1.0, "B": 0.0, "tie": 0.5}
    c = Comparisons.from_arrays(
        len(names),
        [index[r["model_a"]] for r in rows],
        [index[r["model_b"]] for r in rows],
        [outcome[r["winner"]] for r in rows],
    )
    g = majority_digraph(c)
    for cycle in intransitive_cycles(c):
        assert cycle[0] == min(cycle)
        for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True):
            assert g[a, b] > 0.5


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 7).flatmap(lambda n: st.tuples(st.permutations(range(n)), st.data())))
def test_transitive_judge_has_no_cycles(case: tuple[list[int], st.DataObject]) -> None:
    order, data = case
    rank = {item: r for r, item in enumerate(order)}
    n = len(order)
    first, second, outcome = [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            a, b = (i, j) if data.draw(st.booleans()) else (j, i)
            first.append(a)
            second.append(b)
            outcome.append(1.0 if rank[a] < rank[b] else 0.0)
    assert (
        intransitive_cycles(Comparisons.from_arrays(n, first, second, outcome), max_length=n) == []
    )


def _old_graph_diagnostics(c: Comparisons) -> tuple[list[list[int]], list[list[int]]]:
    """Components and cycles as the networkx implementation this module replaced found them."""
    total_weight, total_wins = c.pair_totals()
    games = total_weight + total_weight.T
    share = np.full(games.shape, 0.5)
    np.divide(total_wins + (total_weight - total_wins).T, games, out=share, where=games > 0)
    undirected = nx.Graph()
    undirected.add_nodes_from(range(c.n_items))
    undirected.add_edges_from(zip(*np.nonzero(np.triu(games, k=1)), strict=True))
    parts = sorted(
        (sorted(int(i) for i in part) for part in nx.connected_components(undirected)),
        key=lambda part: part[0],
    )
    digraph = nx.DiGraph()
    digraph.add_nodes_from(range(c.n_items))
    digraph.add_edges_from(zip(*np.nonzero(share > 0.5 + 1e-9), strict=True))
    cycles = []
    for cycle in nx.simple_cycles(digraph, length_bound=4):
        start = cycle.index(min(cycle))
        cycles.append([int(v) for v in cycle[start:] + cycle[:start]])
    return parts, sorted(cycles, key=lambda cycle: (len(cycle), cycle))


@st.composite
def _games(draw: st.DrawFn) -> tuple[int, list[tuple[int, int, float]]]:
    """A number of items and games among them, with wins, ties and losses."""
    n = draw(st.integers(1, 9))
    item = st.integers(0, n - 1)
    return n, draw(
        st.lists(st.tuples(item, item, st.sampled_from([0.0, 0.5, 1.0])), max_size=3 * n)
    )


@settings(max_examples=200, deadline=None)
@given(_games())
def test_matches_the_networkx_implementation_on_random_graphs(
    case: tuple[int, list[tuple[int, int, float]]],
) -> None:
    n, games = case
    games = [(a, b, o) for a, b, o in games if a != b]
    c = Comparisons.from_arrays(
        n, [g[0] for g in games], [g[1] for g in games], [g[2] for g in games]
    )
    components, cycles = _old_graph_diagnostics(c)
    assert connected_components(c) == components
    assert intransitive_cycles(c, max_length=4) == cycles


def test_large_graphs_take_the_sparse_path_and_agree() -> None:
    """Beyond DENSE_MAX items the components come from scipy; both paths give the same parts."""
    rng = np.random.default_rng(0)
    n = DENSE_MAX + 36
    first = rng.integers(0, n, 90)
    second = (first + rng.integers(1, n, 90)) % n
    c = Comparisons.from_arrays(n, first, second, rng.choice([0.0, 1.0], 90))
    assert connected_components(c) == _old_graph_diagnostics(c)[0]
