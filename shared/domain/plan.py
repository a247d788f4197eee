"""Turn the model a client asked for into a plan: a tree of targets the router walks, plus fallbacks.

Resolution order (the first that matches wins):
1. a combo's name (also as `combo/<name>`);
2. an alias whose pattern is exactly the model;
3. `prefix/model` with a configured node's or a catalogue provider's prefix;
4. the most specific wildcard alias (`*`, `?`);
5. an unprefixed model id one configured provider serves (`shared.domain.resolve`).

A combo becomes a `ComboNode` whose children are its targets (models or nested combos); a target that
does not resolve right now (its provider was removed, its pinned account disabled) is left out, and the
combo fails only when none is left. The most specific fallback chain matching the requested model adds
its models after everything else. The order inside a combo is decided per request by its strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.domain.combos import MAX_DEPTH, Combo, ComboTarget, best_match, is_wildcard
from shared.domain.config import ConfigSnapshot
from shared.domain.resolve import Route, resolve_model
from shared.errors import GatewayError, InvalidRequest, ModelNotFound
from shared.providers.catalog import get_provider

MAX_ALIAS_HOPS = 4


@dataclass(frozen=True, slots=True)
class Leaf:
    """One upstream model with its candidate accounts; `target` carries the combo entry's weight/pin."""

    route: Route
    target: ComboTarget | None = None


@dataclass(frozen=True, slots=True)
class ComboNode:
    combo: Combo
    children: tuple[Leaf | ComboNode, ...]
    targets: tuple[ComboTarget, ...]  # the combo entry of each child (weights, use counts)
    # Combo targets left out because they did not resolve, with why (shown when everything else fails).
    skipped: tuple[str, ...] = ()


Node = Leaf | ComboNode


@dataclass(frozen=True, slots=True)
class Plan:
    requested: str
    root: Node
    fallbacks: tuple[Node, ...] = ()

    @property
    def combo(self) -> str | None:
        return self.root.combo.name if isinstance(self.root, ComboNode) else None


def plan_for(model: str, snapshot: ConfigSnapshot) -> Plan:
    model = model.strip()
    if not model:
        raise InvalidRequest("you must provide a model parameter", param="model", code="missing_model")
    root = _node(model, snapshot, depth=0, hops=0)
    return Plan(requested=model, root=root, fallbacks=_fallbacks(model, root, snapshot))


def _node(model: str, snapshot: ConfigSnapshot, *, depth: int, hops: int) -> Node:
    combo = _combo(model, snapshot)
    if combo is not None:
        return _combo_node(combo, snapshot, depth=depth + 1)
    if hops < MAX_ALIAS_HOPS:
        aliases = {a.pattern: a.target for a in snapshot.aliases}
        target = aliases.get(model)
        if target is not None and not is_wildcard(model):
            return _node(target, snapshot, depth=depth, hops=hops + 1)
        if not _has_known_prefix(model, snapshot):
            pattern = best_match([p for p in aliases if is_wildcard(p)], model)
            if pattern is not None:
                return _node(aliases[pattern], snapshot, depth=depth, hops=hops + 1)
    return Leaf(resolve_model(model, snapshot))


def _combo(model: str, snapshot: ConfigSnapshot) -> Combo | None:
    combo = snapshot.combos.get(model)
    if combo is None and model.startswith("combo/"):
        combo = snapshot.combos.get(model.removeprefix("combo/"))
    return combo


def _has_known_prefix(model: str, snapshot: ConfigSnapshot) -> bool:
    prefix, sep, rest = model.partition("/")
    if not (sep and rest):
        return False
    return prefix.lower() in snapshot.nodes_by_prefix or get_provider(prefix) is not None


def _combo_node(combo: Combo, snapshot: ConfigSnapshot, *, depth: int) -> ComboNode:
    if depth > MAX_DEPTH:
        raise InvalidRequest(
            f"The combo `{combo.name}` nests deeper than {MAX_DEPTH} levels.", param="model", code="invalid_combo"
        )
    children: list[Node] = []
    kept: list[ComboTarget] = []
    skipped: list[str] = []
    for target in combo.targets:
        try:
            child = _node(target.model, snapshot, depth=depth, hops=0)
        except GatewayError as err:
            skipped.append(f"{target.model}: {err.message}")
            continue
        if isinstance(child, Leaf):
            pinned = _pinned(child, target)
            if pinned is None:
                skipped.append(f"{target.model}: its pinned account {target.connection_id} is not usable")
                continue
            child = pinned
        children.append(child)
        kept.append(target)
    if not children:
        raise ModelNotFound(
            f"No target of the combo `{combo.name}` can be used now: " + "; ".join(skipped),
            param="model",
            code="combo_unavailable",
        )
    return ComboNode(combo=combo, children=tuple(children), targets=tuple(kept), skipped=tuple(skipped))


def _pinned(leaf: Leaf, target: ComboTarget) -> Leaf | None:
    if target.connection_id is None:
        return replace(leaf, target=target)
    kept = tuple(c for c in leaf.route.connections if c is not None and c.id == target.connection_id)
    if not kept:
        return None
    return Leaf(replace(leaf.route, connections=kept), target)


def _fallbacks(model: str, root: Node, snapshot: ConfigSnapshot) -> tuple[Node, ...]:
    if not snapshot.fallbacks:
        return ()
    chains = {f.pattern: f.models for f in snapshot.fallbacks}
    pattern = best_match(list(chains), model)
    if pattern is None:
        return ()
    nodes: list[Node] = []
    for entry in chains[pattern]:
        if entry == model:
            continue
        try:
            nodes.append(_node(entry, snapshot, depth=0, hops=0))
        except GatewayError:
            continue  # a fallback that does not resolve now is no reason to fail the request
    return tuple(nodes)


def leaves(node: Node) -> list[Leaf]:
    """Every leaf under a node, in list order (for listings and health views)."""
    if isinstance(node, Leaf):
        return [node]
    found: list[Leaf] = []
    for child in node.children:
        found.extend(leaves(child))
    return found
