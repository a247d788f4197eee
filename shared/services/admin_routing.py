"""Combos, model aliases and fallback chains behind the admin API.

Shapes and bounds are checked by the parsers in `shared.domain.combos` (the snapshot reads records with
the same ones); this service adds what needs the rest of the configuration: every target must exist (a
combo, an exact alias, or `prefix/model` with a known prefix), combo references stay acyclic and at most
`MAX_DEPTH` deep, and nothing that another record points at can be deleted.

The checks read the store and the write follows; two concurrent writes could still join into a cycle, so
the router bounds its own recursion as well.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.domain.combos import (
    MAX_DEPTH,
    Combo,
    check_combo_name,
    combo_data,
    deepest_chain,
    find_cycle,
    is_wildcard,
    parse_alias,
    parse_combo,
    parse_fallback,
    referrers,
)
from shared.domain.config import Kind, Record
from shared.errors import Conflict, GatewayError, InvalidRequest, NotFound
from shared.ports import ConfigStore
from shared.providers.catalog import get_provider

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _invalid_combo(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_combo")


def view(r: Record) -> dict[str, Any]:
    return {**r.data, "version": r.version, "updatedAt": r.updated_at}


@dataclass(frozen=True, slots=True)
class _Known:
    """What a target may name, read from the store once per write."""

    combos: Mapping[str, Combo | None]  # None: a stored combo that does not parse (it still exists)
    aliases: Mapping[str, str]  # exact pattern → target
    node_prefixes: Mapping[str, str]  # lowercased prefix → node id

    def owner(self, prefix: str) -> str | None:
        """The catalogue id or node id a model prefix names, or None."""
        node = self.node_prefixes.get(prefix.strip().lower())
        if node is not None:
            return node
        spec = get_provider(prefix)
        return spec.id if spec is not None else None

    def model_owner(self, target: str) -> str | None:
        prefix, sep, rest = target.partition("/")
        return self.owner(prefix) if sep and rest else None

    def combo_refs(self, combo: Combo) -> tuple[str, ...]:
        """The combos a combo's targets lead to: by name, or through an exact alias."""
        out: list[str] = []
        for t in combo.targets:
            if t.model in self.combos:
                out.append(t.model)
            elif self.aliases.get(t.model) in self.combos:
                out.append(self.aliases[t.model])
        return tuple(out)

    def graph(self) -> dict[str, tuple[str, ...]]:
        return {name: self.combo_refs(c) for name, c in self.combos.items() if c is not None}


class RoutingConfigService:
    def __init__(self, store: ConfigStore, on_change: Callable[[], None]) -> None:
        self._store = store
        self._on_change = on_change

    # ----- what exists ---------------------------------------------------------------------------------

    def _known(self) -> _Known:
        combos: dict[str, Combo | None] = {}
        for r in self._store.list(Kind.COMBO):
            try:
                combos[r.id] = parse_combo(r.id, r.data)
            except (GatewayError, TypeError, ValueError) as exc:
                log.warning("stored combo %r does not parse (%s); replace or delete it", r.id, exc)
                combos[r.id] = None
        aliases = {r.id: str(r.data.get("target")) for r in self._store.list(Kind.ALIAS) if not is_wildcard(r.id)}
        prefixes = {str(r.data.get("prefix", "")).lower(): r.id for r in self._store.list(Kind.NODE)}
        return _Known(combos=combos, aliases=aliases, node_prefixes=prefixes)

    def _require(self, kind: str, id: str, label: str) -> Record:
        rec = self._store.get(kind, id)
        if rec is None:
            raise NotFound(f"No {label} `{id}`.")
        return rec

    @staticmethod
    def _check_model(known: _Known, target: str, param: str, *, aliases: bool) -> None:
        """`target` is a combo, `prefix/model` with a known prefix, or (where `aliases`) an exact alias."""
        if target in known.combos or known.model_owner(target) is not None:
            return
        if aliases and target in known.aliases:
            return
        also = ", an exact alias pattern" if aliases else ""
        raise _invalid_combo(
            f"`{param}` is `{target}`: not a combo{also} or `prefix/model` with a known prefix (a catalogue "
            "provider's alias or id, or a provider node's prefix).",
            param,
        )

    # ----- combos --------------------------------------------------------------------------------------

    def list_combos(self) -> list[dict[str, Any]]:
        return [view(r) for r in sorted(self._store.list(Kind.COMBO), key=lambda r: r.id)]

    def get_combo(self, name: str) -> dict[str, Any]:
        return view(self._require(Kind.COMBO, name, "combo"))

    def create_combo(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        name = check_combo_name(fields.get("name"))
        data = self._checked_combo(name, {**fields, "config": _without_nulls(fields.get("config"))})
        try:
            rec = self._store.create(Kind.COMBO, name, {**data, "createdAt": _now()})
        except Conflict as exc:
            raise Conflict(
                f"A combo named `{name}` already exists; change it with PUT or PATCH /api/combos/{name}.",
                param="name",
                code="combo_exists",
            ) from exc
        self._on_change()
        return view(rec)

    def replace_combo(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PUT: the body is the whole combo; what it leaves out goes back to its default."""
        rec = self._require(Kind.COMBO, name, "combo")
        _same_name(name, fields)
        data = self._checked_combo(name, {**fields, "config": _without_nulls(fields.get("config"))})
        return self._write_combo(rec, data)

    def update_combo(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH: the sent fields replace the stored ones; `config` is merged field by field (null clears)."""
        rec = self._require(Kind.COMBO, name, "combo")
        _same_name(name, fields)
        merged = {**rec.data, **fields}
        stored, sent = rec.data.get("config"), fields.get("config")
        if isinstance(stored, Mapping) and isinstance(sent, Mapping):
            merged["config"] = _without_nulls({**stored, **sent})
        else:
            merged["config"] = _without_nulls(merged.get("config"))  # a null `config` clears every field
        return self._write_combo(rec, self._checked_combo(name, merged))

    def _write_combo(self, rec: Record, data: dict[str, Any]) -> dict[str, Any]:
        created = rec.data.get("createdAt") or rec.updated_at
        updated = self._store.update(Kind.COMBO, rec.id, {**data, "createdAt": created}, rec.version)
        self._on_change()
        return view(updated)

    def _checked_combo(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        combo = parse_combo(name, fields)
        known = self._known()
        self._check_combo_name(known, name)
        # The graph after this write: the combo exists (a self-reference is a cycle, not an unknown target).
        known = _Known({**known.combos, name: combo}, known.aliases, known.node_prefixes)
        connections: dict[str, str] | None = None
        for i, t in enumerate(combo.targets):
            self._check_model(known, t.model, f"models[{i}]", aliases=True)
            if t.connection_id is not None:
                if connections is None:
                    connections = {r.id: str(r.data.get("provider")) for r in self._store.list(Kind.PROVIDER)}
                _check_pinned(known, t.model, t.connection_id, connections, f"models[{i}].connectionId")
        _check_graph(known.graph(), name)
        return combo_data(combo)

    @staticmethod
    def _check_combo_name(known: _Known, name: str) -> None:
        prefix, sep, _ = name.partition("/")
        if sep and known.owner(prefix) is not None:
            raise _invalid_combo(
                f"The combo name `{name}` starts with the provider prefix `{prefix}/`, so it would read as "
                "`prefix/model`; choose a name whose first segment is not a provider prefix.",
                "name",
            )
        if name in known.aliases:
            raise Conflict(
                f"`{name}` is already an alias pattern; a combo of the same name would make it ambiguous.",
                param="name",
                code="name_taken",
            )

    def delete_combo(self, name: str) -> None:
        self._require(Kind.COMBO, name, "combo")
        users = [f"combo `{c.name}`" for c in self._combos_targeting(name) if c.name != name]
        users += [f"alias `{r.id}`" for r in self._store.list(Kind.ALIAS) if r.data.get("target") == name]
        users += [f"fallback chain `{r.id}`" for r in self._store.list(Kind.FALLBACK) if name in _models_of(r)]
        if users:
            raise Conflict(
                f"The combo `{name}` is still used by {', '.join(users)}; change or delete those first.",
                code="combo_in_use",
            )
        self._delete(Kind.COMBO, name, "combo")

    def _combos_targeting(self, model: str) -> list[Combo]:
        return [c for c in self._known().combos.values() if c is not None and any(t.model == model for t in c.targets)]

    # ----- aliases -------------------------------------------------------------------------------------

    def list_aliases(self) -> list[dict[str, Any]]:
        return [view(r) for r in sorted(self._store.list(Kind.ALIAS), key=lambda r: r.id)]

    def create_alias(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        alias = parse_alias(fields.get("pattern"), fields)
        known = self._known()
        if alias.target not in known.combos and known.model_owner(alias.target) is None:
            raise _invalid_combo(
                f"`target` is `{alias.target}`: not a combo or `prefix/model` with a known prefix.", "target"
            )
        if alias.pattern in known.combos:
            raise Conflict(
                f"`{alias.pattern}` is a combo's name; an alias of the same pattern would make it ambiguous.",
                param="pattern",
                code="name_taken",
            )
        data = {"pattern": alias.pattern, "target": alias.target, "createdAt": _now()}
        try:
            rec = self._store.create(Kind.ALIAS, alias.pattern, data)
        except Conflict as exc:
            raise Conflict(
                f"The alias `{alias.pattern}` already exists; delete it first to point it elsewhere.",
                param="pattern",
                code="alias_exists",
            ) from exc
        self._on_change()
        return view(rec)

    def delete_alias(self, pattern: str) -> None:
        self._require(Kind.ALIAS, pattern, "alias")
        users = [f"combo `{c.name}`" for c in self._combos_targeting(pattern)]
        if users:
            raise Conflict(
                f"The alias `{pattern}` is a target of {', '.join(users)}; change those first.", code="alias_in_use"
            )
        self._delete(Kind.ALIAS, pattern, "alias")

    # ----- fallback chains -----------------------------------------------------------------------------

    def list_fallbacks(self) -> list[dict[str, Any]]:
        return [view(r) for r in sorted(self._store.list(Kind.FALLBACK), key=lambda r: r.id)]

    def create_fallback(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        data = self._checked_fallback(fields.get("pattern"), fields)
        try:
            rec = self._store.create(Kind.FALLBACK, data["pattern"], {**data, "createdAt": _now()})
        except Conflict as exc:
            raise Conflict(
                f"A fallback chain for `{data['pattern']}` already exists; replace it with PUT.",
                param="pattern",
                code="fallback_exists",
            ) from exc
        self._on_change()
        return view(rec)

    def replace_fallback(self, pattern: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        rec = self._require(Kind.FALLBACK, pattern, "fallback chain")
        if fields.get("pattern", pattern) != pattern:
            raise InvalidRequest(
                "`pattern` differs from the one in the path; create a new chain to use another pattern.",
                param="pattern",
                code="invalid_value",
            )
        data = self._checked_fallback(pattern, fields)
        created = rec.data.get("createdAt") or rec.updated_at
        updated = self._store.update(Kind.FALLBACK, pattern, {**data, "createdAt": created}, rec.version)
        self._on_change()
        return view(updated)

    def _checked_fallback(self, pattern: object, fields: Mapping[str, Any]) -> dict[str, Any]:
        chain = parse_fallback(pattern, fields)
        known = self._known()
        for i, model in enumerate(chain.models):
            self._check_model(known, model, f"models[{i}]", aliases=False)
        return {"pattern": chain.pattern, "models": list(chain.models)}

    def delete_fallback(self, pattern: str) -> None:
        self._delete(Kind.FALLBACK, pattern, "fallback chain")

    # ----- helpers -------------------------------------------------------------------------------------

    def _delete(self, kind: str, id: str, label: str) -> None:
        if not self._store.delete(kind, id):
            raise NotFound(f"No {label} `{id}`.")
        self._on_change()


def _without_nulls(config: object) -> dict[str, Any] | None:
    """A combo's `config` as stored: a null field means "back to the default", so it is dropped."""
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise InvalidRequest("`config` must be an object.", param="config", code="invalid_value")
    return {k: v for k, v in config.items() if v is not None}


def _models_of(r: Record) -> list[str]:
    models = r.data.get("models")
    return [m for m in models if isinstance(m, str)] if isinstance(models, list) else []


def _same_name(name: str, fields: Mapping[str, Any]) -> None:
    if fields.get("name", name) != name:
        raise InvalidRequest(
            "`name` differs from the combo in the path; combos are not renamed (create the new name, point its "
            "users at it, then delete the old one).",
            param="name",
            code="invalid_value",
        )


def _check_pinned(known: _Known, model: str, connection_id: str, connections: Mapping[str, str], param: str) -> None:
    """A pinned account must exist and belong to the target's provider (pinning a combo means nothing)."""
    owner = known.model_owner(model) if model not in known.combos else None
    if owner is None:
        raise _invalid_combo(f"`{param}` pins an account, which only a `prefix/model` target can do.", param)
    provider = connections.get(connection_id)
    if provider is None:
        raise _invalid_combo(f"`{param}`: no connection `{connection_id}`.", param)
    if provider != owner:
        raise _invalid_combo(
            f"`{param}`: connection `{connection_id}` belongs to {provider}, not to {owner} "
            f"(the provider of `{model}`).",
            param,
        )


def _check_graph(refs: Mapping[str, tuple[str, ...]], changed: str) -> None:
    """No cycle through the changed combo, and neither it nor any combo that reaches it nests too deep."""
    cycle = find_cycle(refs, changed)
    if cycle is not None:
        raise _invalid_combo(f"Combos would reference each other in a cycle: {' → '.join(cycle)}.", "models")
    for name in sorted({changed} | referrers(refs, changed)):
        chain = deepest_chain(refs, name)
        if len(chain) > MAX_DEPTH:
            raise _invalid_combo(
                f"Combos may nest at most {MAX_DEPTH} deep; `{name}` would nest deeper ({' → '.join(chain)}).",
                "models",
            )
