"""The order in which a combo's targets, and a provider's accounts, are tried.

Pure functions over indexes: the caller passes what a strategy needs (a global cursor for round-robin,
use counts for least-used, costs, health scores for power-of-two-choices) and gets back every index once,
best first. Whatever comes later in the order is the fallback, so every strategy still falls back through
all candidates; the strategy only decides who goes first.

    strategy         targets (combo)                        accounts (one provider)
    priority         list order                             (fill-first) priority order
    round-robin      start at cursor mod n, then wrap       stay on one account for `sticky` uses, then the next
    weighted         one weighted draw, the rest by weight  -
    random           uniform shuffle                        uniform shuffle
    least-used       fewest uses first                      fewest uses first
    cost-optimized   cheapest known price first             subscriptions before pay-per-token keys
    p2c              better of two random picks first       same
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence


def order_targets(
    strategy: str,
    n: int,
    *,
    rng: random.Random,
    cursor: int = 0,
    weights: Sequence[float] = (),
    uses: Sequence[int] = (),
    costs: Sequence[float | None] = (),
    scores: Sequence[float] = (),
) -> list[int]:
    indexes = list(range(n))
    if n <= 1:
        return indexes
    if strategy == "round-robin":
        start = cursor % n
        return indexes[start:] + indexes[:start]
    if strategy == "weighted":
        return _weighted(indexes, weights, rng)
    if strategy == "random":
        rng.shuffle(indexes)
        return indexes
    if strategy == "least-used":
        return sorted(indexes, key=lambda i: uses[i] if i < len(uses) else 0)
    if strategy == "cost-optimized":
        return sorted(indexes, key=lambda i: _cost_key(costs, i))
    if strategy == "p2c":
        return power_of_two(indexes, scores, rng)
    return indexes  # priority / fill-first


def order_accounts(
    strategy: str,
    ids: Sequence[str],
    *,
    rng: random.Random,
    cursor: int = 0,
    sticky: int = 3,
    uses: Sequence[int] = (),
    costs: Sequence[float] = (),
    scores: Sequence[float] = (),
    session: str | None = None,
) -> list[int]:
    """Account indexes (the caller's list is in priority order). A session id puts the account it hashes
    to first (rendezvous hashing: stable while the set of accounts is, and only that session's share
    moves when one is added or removed), so one conversation keeps one account and its prompt cache."""
    n = len(ids)
    indexes = list(range(n))
    if n <= 1:
        return indexes
    if strategy == "round-robin":
        start = (cursor // max(sticky, 1)) % n
        order = indexes[start:] + indexes[:start]
    elif strategy == "random":
        order = indexes[:]
        rng.shuffle(order)
    elif strategy == "least-used":
        order = sorted(indexes, key=lambda i: uses[i] if i < len(uses) else 0)
    elif strategy == "cost-optimized":
        order = sorted(indexes, key=lambda i: costs[i] if i < len(costs) else 0.0)
    elif strategy == "p2c":
        order = power_of_two(indexes, scores, rng)
    else:
        order = indexes  # fill-first
    if session:
        preferred = max(indexes, key=lambda i: _rendezvous(session, ids[i]))
        order.remove(preferred)
        order.insert(0, preferred)
    return order


def power_of_two(indexes: list[int], scores: Sequence[float], rng: random.Random) -> list[int]:
    """Two distinct random candidates, the higher score first, then the other, then the rest in order."""
    a, b = rng.sample(indexes, 2)
    score_a = scores[a] if a < len(scores) else 0.0
    score_b = scores[b] if b < len(scores) else 0.0
    first, second = (a, b) if score_a >= score_b else (b, a)
    return [first, second, *(i for i in indexes if i not in (a, b))]


def _weighted(indexes: list[int], weights: Sequence[float], rng: random.Random) -> list[int]:
    w = [max(weights[i], 0.0) if i < len(weights) else 1.0 for i in indexes]
    total = sum(w)
    if total <= 0:
        first = rng.choice(indexes)
    else:
        point = rng.random() * total
        first = indexes[-1]
        for i, weight in zip(indexes, w, strict=True):
            point -= weight
            if point < 0:
                first = i
                break
    rest = sorted((i for i in indexes if i != first), key=lambda i: -w[i])
    return [first, *rest]


def _cost_key(costs: Sequence[float | None], i: int) -> tuple[int, float]:
    cost = costs[i] if i < len(costs) else None
    return (1, 0.0) if cost is None else (0, cost)  # unknown prices go last, in list order


def _rendezvous(session: str, account: str) -> int:
    digest = hashlib.blake2b(f"{session}\x00{account}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
