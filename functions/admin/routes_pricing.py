"""`/api/pricing`: the pricing table (USD per 1M tokens), the owner's prices over the built-in defaults."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field, RootModel

from functions.admin.auth import AdminDep, ServicesDep
from shared.services.admin_pricing import PricingService

router = APIRouter(prefix="/api", dependencies=[AdminDep])


def pricing_service(svc: ServicesDep) -> PricingService:
    return svc.pricing


PricingDep = Annotated[PricingService, Depends(pricing_service)]

ProviderId = Annotated[str, Field(min_length=1, max_length=200)]
ModelId = Annotated[str, Field(min_length=1, max_length=512)]


class PricingPatch(RootModel[dict[ProviderId, dict[ModelId, dict[str, Any] | None]]]):
    """`{provider: {model: {input, output, cached?, cacheCreation?, reasoning?} | null}}`; the rates are
    checked by the service, which names the provider, model and field of the first bad one."""


@router.get("/pricing")
def get_pricing(pricing: PricingDep) -> dict[str, Any]:
    return pricing.list()


@router.patch("/pricing")
def patch_pricing(body: PricingPatch, pricing: PricingDep) -> dict[str, Any]:
    return pricing.patch(body.root)


@router.delete("/pricing")
def reset_pricing(
    pricing: PricingDep, provider: Annotated[str | None, Query(min_length=1, max_length=200)] = None
) -> dict[str, int]:
    """Remove the owner's prices (all, or one provider's): the defaults apply again."""
    return {"removed": pricing.reset(provider)}
