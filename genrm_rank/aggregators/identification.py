"""Does a Bradley-Terry fit have a finite, unique maximum-likelihood estimate?

Answered exactly from the per-ordered-pair totals, for the unpenalised likelihood of
:func:`~genrm_rank.aggregators.bradley_terry.bradley_terry`, which sees the parameters only
through the margins ``d = theta_first - theta_second + h`` of the observed pairs.

**Identification.** A direction leaving every observed margin unchanged cannot be learnt: a
shift of one connected component against the others, and, with ``h``, ``h + 1`` with
``theta_second - theta_first = 1`` on every observed pair, which exists exactly when every
cycle of compared pairs is walked as often along the slot order as against it.

**Existence.** The MLE is finite iff no direction moves every one-sided pair (only wins, or
only losses) its favoured way and leaves two-sided pairs unchanged (Albert & Anderson, 1984;
Zermelo, 1929; Ford, 1957). With ``h`` fixed at 0: each component's graph of wins is strongly
connected. With ``h``, ``h -> +inf`` is a direction exactly when the graph of wins weighted +1
for a slot-1 win and -1 for a slot-2 win has no negative cycle (Bellman-Ford; Cormen et al.,
*Introduction to Algorithms*, sec. 24.4), and symmetrically for ``h -> -inf``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import NegativeCycleError, bellman_ford

from .graph import DENSE_MAX, component_labels, reachability

__all__ = ["Identification", "identify"]

_TOL = 1e-12


@dataclass(frozen=True, eq=False)
class Identification:
    """What the data can say about a Bradley-Terry fit.

    Attributes
    ----------
    mle_exists : bool
        Whether the unpenalised likelihood has a finite maximiser (``alpha == 0`` needs one).
    identified : numpy.ndarray of bool, shape (n_items,)
        Whether each centred strength is identified by the data.
    position_bias_identified : bool or None
        Whether ``h`` is identified; ``None`` when it is not fitted.
    reason : str
        Why the MLE does not exist or a parameter is not identified; empty when neither.
    """

    mle_exists: bool
    identified: NDArray[np.bool_]
    position_bias_identified: bool | None
    reason: str

    @property
    def ok(self) -> bool:
        """Whether the MLE exists and every parameter is identified."""
        return (
            self.mle_exists
            and bool(self.identified.all())
            and self.position_bias_identified is not False
        )


def _slot_potentials(seen: NDArray[np.bool_], roots: list[int]) -> NDArray[np.float64] | None:
    """Potentials ``phi`` with ``phi[s] = phi[f] + 1`` on every seen ``(f, s)``, or ``None``."""
    edges_f, edges_s = np.nonzero(seen)
    phi = np.full(len(seen), np.nan)
    adjacency: list[list[tuple[int, float]]] = [[] for _ in range(len(seen))]
    for f, s in zip(edges_f.tolist(), edges_s.tolist(), strict=True):
        adjacency[f].append((s, 1.0))
        adjacency[s].append((f, -1.0))
    for root in roots:
        phi[root] = 0.0
        stack = [root]
        while stack:
            u = stack.pop()
            for v, step in adjacency[u]:
                if np.isnan(phi[v]):
                    phi[v] = phi[u] + step
                    stack.append(v)
    if np.any(phi[edges_s] - phi[edges_f] != 1.0):
        return None
    return phi


def _has_negative_cycle(weights: NDArray[np.float64], sources: list[int]) -> bool:
    """Whether a cycle of negative total weight is reachable from ``sources`` (0: no edge)."""
    if not sources:
        return False
    if len(weights) <= DENSE_MAX:
        edges = weights != 0
        distance = np.where(edges, weights, np.inf)
        np.fill_diagonal(distance, np.minimum(np.diag(distance), 0.0))
        for k in range(len(weights)):  # Floyd-Warshall (Cormen et al., sec. 25.2)
            distance = np.minimum(distance, distance[:, k : k + 1] + distance[k : k + 1, :])
        on_negative_cycle = np.diag(distance) < 0
        reachable = reachability(edges)[sources].any(axis=0)
        return bool(np.any(on_negative_cycle & reachable))
    try:
        bellman_ford(csr_matrix(weights), directed=True, indices=sources)
    except NegativeCycleError:
        return True
    return False


def identify(
    total_weight: NDArray[np.float64], total_wins: NDArray[np.float64], fit_position_bias: bool
) -> Identification:
    """Decide existence and identification of the Bradley-Terry MLE from pair totals.

    Parameters
    ----------
    total_weight, total_wins : numpy.ndarray, shape (n_items, n_items)
        Per ordered pair (slot-1 item, slot-2 item): the total weight and the soft wins of the
        slot-1 item, as :meth:`~genrm_rank.aggregators.Comparisons.pair_totals` returns.
    fit_position_bias : bool
        Whether the model has the slot-1 term ``h``.

    Returns
    -------
    Identification
        The flags and, when something fails, the reason.

    Examples
    --------
    A 3-cycle whose every pair slot 1 won is explained by ``h -> +inf`` alone:

    >>> w = np.zeros((3, 3)); w[0, 1] = w[1, 2] = w[2, 0] = 1.0
    >>> identify(w, w.copy(), fit_position_bias=True).mle_exists
    False
    >>> identify(w, w.copy(), fit_position_bias=False).mle_exists
    True
    """
    n = total_weight.shape[0]
    losses = total_weight - total_wins
    seen = total_weight > _TOL
    n_weak, labels = component_labels(seen, "weak")
    roots = np.unique(labels, return_index=True)[1].tolist()  # an item of each component
    reasons: list[str] = []

    h_identified: bool | None = None
    phi: NDArray[np.float64] | None = None
    if fit_position_bias:
        phi = _slot_potentials(seen, roots)
        h_identified = phi is None
        if not h_identified:
            reasons.append(
                "the position term h is not identified: every cycle of compared pairs is shown "
                "as often in one slot order as in the other (e.g. each pair in one order only), "
                "so a larger h with a matching spread of strengths fits the data equally well"
            )

    identified = np.ones(n, dtype=bool)
    if n_weak > 1:
        identified[:] = False
        reasons.append(
            f"the comparisons split the items into {int(n_weak)} unconnected groups, whose "
            "relative strengths the data cannot tell"
        )
    if phi is not None:
        identified &= np.abs(phi - phi.mean()) < 1e-9

    slot1_win = total_wins > _TOL  # u beat v from slot 1
    slot2_win = losses.T > _TOL  # u beat v from slot 2
    n_strong, _ = component_labels(slot1_win | slot2_win, "strong")
    mle_exists = n_strong == n_weak
    if not mle_exists:
        reasons.append(
            "no finite MLE: some group of items never loses (or never wins) against the rest "
            "(the graph of wins is not strongly connected; Zermelo, 1929; Ford, 1957)"
        )
    elif h_identified:
        for direction, winner, favoured, other in (
            ("+inf", "slot 1", slot2_win, slot1_win),
            ("-inf", "slot 2", slot1_win, slot2_win),
        ):
            # A 2-cycle of wins from the favoured slot settles it without a graph search.
            if bool(np.any(favoured & favoured.T)):
                continue
            weights = np.where(favoured, -1.0, np.where(other, 1.0, 0.0))
            if not _has_negative_cycle(weights, roots):
                mle_exists = False
                reasons.append(
                    f"no finite MLE: h -> {direction} fits better and better, because no cycle "
                    f"of wins has more wins from the other slot than from {winner}"
                )
    return Identification(
        mle_exists=mle_exists,
        identified=identified,
        position_bias_identified=h_identified,
        reason="; ".join(reasons),
    )
