"""Graph diagnostics of a comparison set: connectivity and intransitive majority cycles.

Bradley-Terry strengths are identified by a connected comparison graph (Ford, 1957; Hunter,
2004); cycles of the majority digraph (Condorcet cycles) show how far a judge is from any
ranking. Graphs are numpy adjacency matrices (scipy's csgraph convention: ``[i, j]`` is the
edge ``i -> j``). The package's one place for graph algorithms: ``identification`` uses it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csgraph, csr_matrix

from genrm_rank import validate as check

from .comparisons import Comparisons

__all__ = [
    "comparison_graph",
    "component_labels",
    "connected_components",
    "intransitive_cycles",
    "is_connected",
    "majority_digraph",
    "reachability",
]

DENSE_MAX = 64
"""Graphs up to this many items are searched with dense numpy (microseconds for a prompt's
candidates); larger ones (leaderboards) with scipy's sparse graph routines."""


def reachability(adjacency: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Which item reaches which by a path of length >= 0, by repeated squaring (small graphs).

    >>> reachability(np.array([[False, True], [False, False]])).tolist()
    [[True, True], [False, True]]
    """
    reach = adjacency | np.eye(len(adjacency), dtype=bool)
    while True:
        step = reach.astype(np.int64)
        wider = (step @ step) > 0
        if np.array_equal(wider, reach):
            return reach
        reach = wider


def component_labels(
    adjacency: NDArray[np.bool_], connection: str = "weak"
) -> tuple[int, NDArray[np.int64]]:
    """Number of weakly or strongly connected components of a digraph, and a label per item
    (dense up to :data:`DENSE_MAX` items, else :func:`scipy.sparse.csgraph.connected_components`).

    >>> component_labels(np.array([[False, True], [False, False]]), "strong")[0]
    2
    """
    if len(adjacency) > DENSE_MAX:
        count, labels = csgraph.connected_components(
            csr_matrix(adjacency), directed=True, connection=connection
        )
        return int(count), np.asarray(labels, dtype=np.int64)
    if connection == "weak":
        adjacency = adjacency | adjacency.T
    reach = reachability(adjacency)
    mutual = reach & reach.T
    labels = np.argmax(mutual, axis=1).astype(np.int64)  # the first item of each component
    return len(np.unique(labels)), labels


def comparison_graph(comparisons: Comparisons) -> NDArray[np.int64]:
    """Undirected comparison graph: how often each pair was compared, in either slot order.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.

    Returns
    -------
    numpy.ndarray of int, shape (n_items, n_items)
        Symmetric counts of comparisons (weights: :meth:`Comparisons.pair_totals`).

    Examples
    --------
    >>> comparison_graph(Comparisons.from_pairs(3, [(0, 1), (1, 0)])).tolist()
    [[0, 2, 0], [2, 0, 0], [0, 0, 0]]
    """
    c = check.instance("comparisons", comparisons, Comparisons)
    n = c.n_items
    counts = np.bincount(c.first * n + c.second, minlength=n * n).reshape(n, n)
    return np.asarray(counts + counts.T, dtype=np.int64)


def connected_components(comparisons: Comparisons) -> list[list[int]]:
    """Items grouped by connected component of :func:`comparison_graph`.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.

    Returns
    -------
    list of list of int
        Each component sorted, ordered by their smallest item (an item never compared is one).

    Examples
    --------
    >>> connected_components(Comparisons.from_pairs(4, [(0, 1), (3, 2)]))
    [[0, 1], [2, 3]]
    """
    _, labels = component_labels(comparison_graph(comparisons) > 0, "weak")
    order = np.argsort(labels, kind="stable")
    parts = np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)
    return sorted(part.tolist() for part in parts)


def is_connected(comparisons: Comparisons) -> bool:
    """Whether a chain of comparisons links every item to every other.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.

    Returns
    -------
    bool
        Whether :func:`connected_components` has one part.
    """
    return len(connected_components(comparisons)) == 1


def majority_digraph(comparisons: Comparisons) -> NDArray[np.float64]:
    """Majority-preference digraph: an edge ``i -> j`` when ``i`` beats ``j`` on aggregate.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.

    Returns
    -------
    numpy.ndarray of float, shape (n_items, n_items)
        ``[i, j]``: ``i``'s weighted mean outcome over ``j``, both slot orders, where it exceeds
        0.5 (by more than 1e-9); else 0.

    Examples
    --------
    >>> majority_digraph(Comparisons.from_arrays(2, [0, 1], [1, 0], [0.9, 0.5])).round(3).tolist()
    [[0.0, 0.7], [0.0, 0.0]]
    """
    c = check.instance("comparisons", comparisons, Comparisons)
    total_weight, total_wins = c.pair_totals()
    games = total_weight + total_weight.T
    wins = total_wins + (total_weight - total_wins).T
    share = np.full(games.shape, 0.5)
    np.divide(wins, games, out=share, where=games > 0)
    return np.where(share > 0.5 + 1e-9, share, 0.0)


def intransitive_cycles(comparisons: Comparisons, max_length: int = 3) -> list[list[int]]:
    """Cycles of :func:`majority_digraph` (Condorcet cycles; none for a transitive judge).

    Each is found once, by a depth-first search from its smallest item through larger ones,
    cut at ``max_length`` (Johnson's bounded search, 1975, without its blocking).

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.
    max_length : int, optional
        Longest cycle to list (at least 3; the number of cycles grows fast with it).

    Returns
    -------
    list of list of int
        Each cycle from its smallest item, in the order of preference, by length then order.

    Examples
    --------
    >>> c = Comparisons.from_pairs(3, [(0, 1), (1, 2), (2, 0)])
    >>> intransitive_cycles(c)
    [[0, 1, 2]]
    """
    bound = check.integer("max_length", max_length, 3)
    edges = majority_digraph(comparisons) > 0
    successors = [np.flatnonzero(row).tolist() for row in edges]
    cycles: list[list[int]] = []
    for start in range(len(successors)):
        path = [start]
        pending = [iter(successors[start])]
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                pending.pop()
                path.pop()
            elif nxt == start:
                cycles.append(list(path))
            elif nxt > start and nxt not in path and len(path) < bound:
                path.append(nxt)
                pending.append(iter(successors[nxt]))
    return sorted(cycles, key=lambda cycle: (len(cycle), cycle))
