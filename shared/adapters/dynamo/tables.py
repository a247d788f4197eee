"""Create DynamoDB tables from template.yaml, so tests and local mode use exactly the cloud's definition."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that accepts CloudFormation short-form tags (!Ref, !Sub, !GetAtt, ...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _any_tag)


def template_path() -> Path:
    """template.yaml: `OMNIROUTE_TEMPLATE`, else the checkout this package runs from (`./dev` installs it
    editable, so the tables always come from the same file the cloud deploys)."""
    configured = os.environ.get("OMNIROUTE_TEMPLATE")
    path = Path(configured) if configured else Path(__file__).resolve().parents[3] / "template.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"template.yaml not found at {path}: run from the repository checkout (./dev serve) "
            "or set OMNIROUTE_TEMPLATE to its path"
        )
    return path


def table_definitions(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Logical id → Properties of every AWS::DynamoDB::Table in the template (a fresh copy each call)."""
    return copy.deepcopy(_parsed(path or template_path()))


@functools.lru_cache(maxsize=8)
def _parsed_at(path: Path, mtime_ns: int) -> dict[str, dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    resources: dict[str, Any] = doc.get("Resources", {})
    return {
        name: res["Properties"]
        for name, res in resources.items()
        if isinstance(res, dict) and res.get("Type") == "AWS::DynamoDB::Table"
    }


def _parsed(path: Path) -> dict[str, dict[str, Any]]:
    """Parsed once per file version: the template is ~25 KB of YAML (~0.25 s), read at every local start."""
    return _parsed_at(path, path.stat().st_mtime_ns)


def create_tables(client: Any, names: dict[str, str], path: Path | None = None) -> None:
    """Create each table (logical id → physical name in `names`) unless it exists, TTL included.

    `client` is a boto3 DynamoDB client pointed at moto (in-process or server) or DynamoDB Local.
    """
    existing = set(client.list_tables().get("TableNames", []))
    for logical, props in table_definitions(path).items():
        physical = names.get(logical, logical)
        if physical in existing:
            continue
        kwargs: dict[str, Any] = {
            "TableName": physical,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        for index_key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(index_key):
                kwargs[index_key] = props[index_key]
        client.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            client.update_time_to_live(
                TableName=physical,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
