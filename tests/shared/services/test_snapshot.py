"""ConfigCache: no request waits for the store once a snapshot exists; failures keep the last good one."""

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from shared.domain.config import Record
from shared.errors import GatewayBusy
from shared.services.snapshot import ConfigCache


class PlainCipher:
    def encrypt(self, plaintext: str, context: Mapping[str, str]) -> str:
        return plaintext

    def decrypt(self, ciphertext: str, context: Mapping[str, str]) -> str:
        return ciphertext


class SlowStore:
    """A store whose scans block until released, counting them; `fail` makes the next scan raise."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.scans = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def list_all(self) -> list[Record]:
        self.scans += 1
        assert self.gate.wait(5)
        if self.fail:
            raise RuntimeError("store down")
        return list(self.records)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"ConfigCache must only scan, not call {name}")


def key_record(i: int) -> Record:
    return Record("apikey", f"k{i}", {"keyHash": f"h{i}"}, 1, "t")


pytestmark = pytest.mark.anyio


async def test_first_load_waits_once_for_concurrent_callers() -> None:
    store = SlowStore()
    store.records = [key_record(1)]
    cache = ConfigCache(store, PlainCipher(), ttl=60)  # type: ignore[arg-type]
    snaps = await asyncio.gather(*(cache.current() for _ in range(20)))
    assert store.scans == 1
    assert all(s is snaps[0] for s in snaps)
    assert set(snaps[0].keys_by_hash) == {"h1"}


async def test_expired_copy_is_served_while_one_background_reload_runs() -> None:
    store = SlowStore()
    store.records = [key_record(1)]
    cache = ConfigCache(store, PlainCipher(), ttl=0.3)  # type: ignore[arg-type]
    first = await cache.current()
    store.records = [key_record(2)]
    store.gate.clear()  # the next scan hangs
    await asyncio.sleep(0.35)  # past the TTL, inside the grace period
    served = await asyncio.wait_for(asyncio.gather(*(cache.current() for _ in range(50))), timeout=0.2)
    assert all(s is first for s in served)  # nobody waited for the hanging scan
    for _ in range(100):
        if store.scans == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.gather(*(cache.current() for _ in range(50)))
    assert store.scans == 2  # exactly one reload started, however many requests saw the expired copy
    store.gate.set()
    for _ in range(100):
        await asyncio.sleep(0.01)
        if set((await cache.current()).keys_by_hash) == {"h2"}:
            break
    assert set((await cache.current()).keys_by_hash) == {"h2"}


async def test_a_copy_past_twice_the_ttl_is_never_served_without_a_reload() -> None:
    """An idle (or frozen) instance must not act on old configuration, e.g. a key revoked meanwhile."""
    store = SlowStore()
    store.records = [key_record(1)]
    cache = ConfigCache(store, PlainCipher(), ttl=0.05)  # type: ignore[arg-type]
    await cache.current()
    store.records = [key_record(2)]  # "revoked" key 1
    await asyncio.sleep(0.12)
    snaps = await asyncio.gather(*(cache.current() for _ in range(20)))
    assert all(set(s.keys_by_hash) == {"h2"} for s in snaps)
    assert store.scans == 2  # the waiting requests shared one reload


async def test_failed_reload_keeps_the_last_good_snapshot_up_to_max_stale(caplog: pytest.LogCaptureFixture) -> None:
    store = SlowStore()
    store.records = [key_record(1)]
    cache = ConfigCache(store, PlainCipher(), ttl=0.02, max_stale=0.3)  # type: ignore[arg-type]
    good = await cache.current()
    store.fail = True
    await asyncio.sleep(0.05)
    assert await cache.current() is good  # store down, still fresh enough to serve
    assert "reload failed" in caplog.text
    await asyncio.sleep(0.3)
    with pytest.raises(GatewayBusy) as exc:
        await cache.current()  # too old to trust: refuse rather than guess
    assert exc.value.code == "config_unavailable"
    store.fail = False
    assert set((await cache.current()).keys_by_hash) == {"h1"}


async def test_without_ttl_only_invalidate_reloads() -> None:
    store = SlowStore()
    cache = ConfigCache(store, PlainCipher(), ttl=None)  # type: ignore[arg-type]
    await cache.current()
    await asyncio.sleep(0.01)
    await cache.current()
    assert store.scans == 1
    store.records = [key_record(3)]
    cache.invalidate()
    assert set((await cache.current()).keys_by_hash) == {"h3"}
