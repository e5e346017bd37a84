"""Graph diagnostics of a comparison set: connectivity and intransitive majority cycles.

Whether Bradley-Terry strengths are identified depends on the comparison graph (Ford, 1957;
Hunter, 2004), and cycles in the majority-preference digraph (Condorcet cycles) measure how far
a judge is from any ranking.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from .comparisons import Comparisons

__all__ = [
    "comparison_graph",
    "connected_components",
    "intransitive_cycles",
    "is_connected",
    "majority_digraph",
]


def _check(comparisons: object) -> Comparisons:
    if not isinstance(comparisons, Comparisons):
        raise TypeError(
            f"Argument 'comparisons' must be a Comparisons, not {type(comparisons).__name__}."
        )
    return comparisons


def comparison_graph(comparisons: Comparisons) -> nx.Graph:
    """Undirected graph with one node per item and an edge per compared pair.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.

    Returns
    -------
    networkx.Graph
        Nodes ``0 .. n_items - 1``; edge ``{i, j}`` carries ``count`` (number of comparisons
        of the pair, either slot order) and ``total_weight``.

    Examples
    --------
    >>> g = comparison_graph(Comparisons.from_pairs(3, [(0, 1), (1, 0)]))
    >>> g.number_of_nodes(), g.edges[0, 1]["count"]
    (3, 2)
    """
    c = _check(comparisons)
    n = c.n_items
    total_weight, _ = c.pair_totals()
    counts = np.bincount(c.first * n + c.second, minlength=n * n).reshape(n, n)
    counts = counts + counts.T
    weights = total_weight + total_weight.T
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    rows, cols = np.nonzero(np.triu(counts, k=1))
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        graph.add_edge(i, j, count=int(counts[i, j]), total_weight=float(weights[i, j]))
    return graph


def connected_components(comparisons: Comparisons) -> list[list[int]]:
    """Items grouped by connected component of :func:`comparison_graph`.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.

    Returns
    -------
    list of list of int
        Each component sorted ascending; components ordered by their smallest item. An item
        never compared forms its own component.

    Examples
    --------
    >>> connected_components(Comparisons.from_pairs(4, [(0, 1), (3, 2)]))
    [[0, 1], [2, 3]]
    """
    parts = [
        sorted(int(i) for i in part)
        for part in nx.connected_components(comparison_graph(comparisons))
    ]
    return sorted(parts, key=lambda part: part[0])


def is_connected(comparisons: Comparisons) -> bool:
    """Whether every item is linked to every other by a chain of comparisons.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.

    Returns
    -------
    bool
        ``True`` when :func:`connected_components` has a single part.
    """
    return len(connected_components(comparisons)) == 1


def majority_digraph(comparisons: Comparisons) -> nx.DiGraph:
    """Majority-preference digraph: an edge ``i -> j`` when ``i`` beats ``j`` on aggregate.

    The aggregate of a pair is the weighted mean outcome for ``i`` over all comparisons of the
    pair in either slot order; the edge exists when it exceeds 0.5 (by more than 1e-9), and
    carries it as ``preference``.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.

    Returns
    -------
    networkx.DiGraph
        Nodes ``0 .. n_items - 1``.
    """
    c = _check(comparisons)
    total_weight, total_wins = c.pair_totals()
    games = total_weight + total_weight.T
    wins = total_wins + (total_weight - total_wins).T
    share = np.full(games.shape, 0.5)
    np.divide(wins, games, out=share, where=games > 0)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(c.n_items))
    rows, cols = np.nonzero(share > 0.5 + 1e-9)
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        graph.add_edge(i, j, preference=float(share[i, j]))
    return graph


def intransitive_cycles(comparisons: Comparisons, max_length: int = 3) -> list[list[int]]:
    """Cycles of the majority-preference digraph (Condorcet cycles), as a diagnostic.

    A cycle ``[a, b, c]`` means ``a`` beats ``b``, ``b`` beats ``c`` and ``c`` beats ``a`` on
    aggregate; no ranking agrees with all its edges. A transitive judge has none.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.
    max_length : int, optional
        Longest cycle to list (at least 3; the number of cycles grows fast with it).

    Returns
    -------
    list of list of int
        Each cycle rotated to start at its smallest item, in the order of preference; the list
        is sorted by length, then lexicographically.

    Examples
    --------
    >>> c = Comparisons.from_pairs(3, [(0, 1), (1, 2), (2, 0)])
    >>> intransitive_cycles(c)
    [[0, 1, 2]]
    """
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
        raise TypeError(f"Argument 'max_length' must be an int, not {type(max_length).__name__}.")
    if max_length < 3:
        raise ValueError(f"Argument 'max_length' must be at least 3, not {max_length}.")
    graph = majority_digraph(comparisons)
    cycles = []
    for cycle in nx.simple_cycles(graph, length_bound=int(max_length)):
        start = cycle.index(min(cycle))
        cycles.append([int(v) for v in cycle[start:] + cycle[:start]])
    return sorted(cycles, key=lambda cycle: (len(cycle), cycle))
