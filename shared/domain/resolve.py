"""Model resolution: turn the `model` a client sent into an upstream target and its candidate accounts.

Order (the first that matches wins):
1. `prefix/model` where prefix is a custom node's prefix;
2. `prefix/model` where prefix is a catalogue alias, id or extra alias (`ds/`, `deepseek/`, `or/`, ...);
3. an unprefixed id (or an unknown prefix, e.g. OpenRouter's `vendor/model`) that exactly one configured
   provider lists (catalogue models or custom models); two or more → "ambiguous", none → "not found".
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.combos import is_wildcard
from shared.domain.config import ConfigSnapshot, Connection, ProviderNode
from shared.errors import InvalidRequest, ModelNotFound
from shared.providers.catalog import PROVIDERS, get_provider
from shared.providers.spec import AuthHeader, AuthKind, ProviderSpec, WireFormat

_NODE_AUTH = {
    WireFormat.ANTHROPIC: AuthHeader.X_API_KEY,
    WireFormat.GEMINI: AuthHeader.X_GOOG_API_KEY,
}


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes. `connections` is ordered by priority; `(None,)` means "call without a key"."""

    provider_id: str
    prefix: str
    wire_format: WireFormat
    auth_header: AuthHeader
    extra_headers: tuple[tuple[str, str], ...]
    base_url: str
    upstream_model: str
    connections: tuple[Connection | None, ...]

    @property
    def public_model(self) -> str:
        return f"{self.prefix}/{self.upstream_model}"

    def base_url_for(self, connection: Connection | None) -> str:
        if connection is not None and connection.base_url:
            return connection.base_url.rstrip("/")
        return self.base_url


def resolve_model(model: str, snapshot: ConfigSnapshot) -> Route:
    model = model.strip()
    if not model:
        raise InvalidRequest("you must provide a model parameter", param="model", code="missing_model")
    prefix, sep, rest = model.partition("/")
    if sep and rest:
        node = snapshot.nodes_by_prefix.get(prefix.lower())
        if node is not None:
            return _node_route(node, rest, snapshot)
        spec = get_provider(prefix)
        if spec is not None:
            return _spec_route(spec, rest, snapshot, requested=model)
    return _unprefixed_route(model, snapshot)


def _refuse_unreadable(owner: str, label: str, requested: str, snapshot: ConfigSnapshot) -> None:
    """No usable connection, but some whose stored key cannot be decrypted: say so, never call keyless."""
    broken = [c.id for c in snapshot.connections if c.provider == owner and c.credential_error]
    if broken:
        raise ModelNotFound(
            f"The model `{requested}` needs a {label} connection; the stored key of {', '.join(broken)} cannot "
            "be decrypted (was secret.key replaced?). Send the key again with PATCH /api/providers/{id}.",
            param="model",
            provider=owner,
            code="credential_unreadable",
        )


def _node_route(node: ProviderNode, model: str, snapshot: ConfigSnapshot) -> Route:
    wire = WireFormat(node.api_type)
    conns: tuple[Connection | None, ...] = snapshot.connections_by_provider.get(node.id, ())
    if not conns:
        _refuse_unreadable(node.id, node.name, f"{node.prefix}/{model}", snapshot)
        conns = (None,)
    return Route(
        provider_id=node.id,
        prefix=node.prefix,
        wire_format=wire,
        auth_header=_NODE_AUTH.get(wire, AuthHeader.BEARER),
        extra_headers=(("anthropic-version", "2023-06-01"),) if wire is WireFormat.ANTHROPIC else (),
        base_url=node.base_url.rstrip("/"),
        upstream_model=model,
        connections=conns,
    )


def _spec_route(spec: ProviderSpec, model: str, snapshot: ConfigSnapshot, *, requested: str) -> Route:
    conns: tuple[Connection | None, ...] = snapshot.connections_by_provider.get(spec.id, ())
    if not conns:
        _refuse_unreadable(spec.id, spec.name, requested, snapshot)
        if spec.auth is not AuthKind.NONE:
            raise ModelNotFound(
                f"The model `{requested}` needs a {spec.name} connection, and none is configured or enabled. "
                f'Add one with POST /api/providers {{"provider": "{spec.id}", "apiKey": "..."}}.',
                param="model",
                provider=spec.id,
            )
        conns = (None,)
    return Route(
        provider_id=spec.id,
        prefix=spec.alias,
        wire_format=spec.wire_format,
        auth_header=spec.auth_header,
        extra_headers=spec.extra_headers,
        base_url=spec.base_url,
        upstream_model=model,
        connections=conns,
    )


def _unprefixed_route(model: str, snapshot: ConfigSnapshot) -> Route:
    owners: dict[str, Route] = {}
    for custom in snapshot.models:
        if custom.model_id == model:
            route = _route_for_owner(custom.provider, model, snapshot)
            if route is not None:
                owners[route.provider_id] = route
    for spec in PROVIDERS:
        if model in spec.models and spec.id in snapshot.connections_by_provider:
            owners.setdefault(spec.id, _spec_route(spec, model, snapshot, requested=model))
    if len(owners) == 1:
        return next(iter(owners.values()))
    if len(owners) > 1:
        choices = ", ".join(sorted(f"{r.prefix}/{model}" for r in owners.values()))
        raise InvalidRequest(
            f"Ambiguous model `{model}`: more than one configured provider serves it. Use one of: {choices}.",
            param="model",
            code="ambiguous_model",
        )
    raise ModelNotFound(
        f"The model `{model}` does not exist or no configured provider serves it. "
        "Use `prefix/model` (for example `ds/deepseek-chat`); GET /v1/models lists what is configured.",
        param="model",
    )


def _route_for_owner(owner: str, model: str, snapshot: ConfigSnapshot) -> Route | None:
    for node in snapshot.nodes:
        if node.id == owner:
            return _node_route(node, model, snapshot)
    spec = get_provider(owner)
    if spec is not None and (spec.id in snapshot.connections_by_provider or spec.auth is AuthKind.NONE):
        return _spec_route(spec, model, snapshot, requested=model)
    return None


def list_models(snapshot: ConfigSnapshot) -> list[tuple[str, str]]:
    """(model id, owner) for everything a client can call right now, in a stable order: `prefix/model` ids
    owned by their provider, combo names owned by "combo", exact alias patterns owned by "alias"."""
    seen: dict[str, str] = {}
    # Combos and exact aliases first: when an id is both, the router takes the combo or alias.
    for name in snapshot.combos:
        seen.setdefault(name, "combo")
    for alias in snapshot.aliases:
        if not is_wildcard(alias.pattern):
            seen.setdefault(alias.pattern, "alias")
    for spec in PROVIDERS:
        if spec.id in snapshot.connections_by_provider:
            for m in spec.models:
                seen.setdefault(f"{spec.alias}/{m}", spec.id)
    for conn in snapshot.connections:
        if conn.enabled and conn.default_model:
            owner = _prefix_of(conn.provider, snapshot)
            if owner:
                seen.setdefault(f"{owner}/{conn.default_model}", conn.provider)
    for custom in snapshot.models:
        owner = _prefix_of(custom.provider, snapshot)
        if owner:
            seen.setdefault(f"{owner}/{custom.model_id}", custom.provider)
    return sorted(seen.items())


def _prefix_of(provider: str, snapshot: ConfigSnapshot) -> str | None:
    for node in snapshot.nodes:
        if node.id == provider:
            return node.prefix
    spec = get_provider(provider)
    if spec is not None and (spec.id in snapshot.connections_by_provider or spec.auth is AuthKind.NONE):
        return spec.alias
    return None
