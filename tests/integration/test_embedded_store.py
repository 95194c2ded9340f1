"""The embedded store as the tests, `scripts/run` and the benchmarks start it
(`python -m backend_services.embedded_mongo`)."""

from __future__ import annotations

import uuid

from pymongo import AsyncMongoClient

from backend_services import embedded_mongo


async def test_the_embedded_store_keeps_no_oplog(mongo_url: str) -> None:
    # Nothing here reads an oplog, and keeping one cost every write an entry and every update
    # a diff of the document (bench/README.md, `bench.embedded_store`).
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        hello = await client.admin.command("hello")
        assert "setName" not in hello  # Standalone: no replica set, so no oplog to feed.
        marker = uuid.uuid4().hex
        await client["embedded_store"]["writes"].insert_one({"_id": marker})
        oplog = client["local"]["oplog.rs"]
        assert await oplog.count_documents({"o._id": marker}) == 0
        await client.drop_database("embedded_store")
    finally:
        await client.close()


def test_standalone_is_added_once() -> None:
    assert embedded_mongo.arguments(["--port", "1"]) == ["--port", "1", "--standalone"]
    assert embedded_mongo.arguments(["--standalone"]) == ["--standalone"]
