"""The embedded store's repair: a findAndModify's write finds its document by `_id`, not by a scan.

SecantusDB's `findAndModify` writes through `{_id: <found>, $and: [<query>]}`
(`secantus.commands._find_and_modify_impl`); these drive its storage with that filter, in
process, and count the documents its write path reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from secantus.storage import Storage

from backend_services import embedded_mongo

DOCUMENTS = 200


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Storage, list[str]]]:
    """A SecantusDB storage of DOCUMENTS counters, and the ids of each collection scan's rows."""
    scanned: list[str] = []
    scan = Storage._scan_docs

    def counted_scan(self: Storage, db: str, coll: str) -> Iterator[Any]:
        for row in scan(self, db, coll):
            scanned.append(coll)
            yield row

    monkeypatch.setattr(Storage, "_scan_docs", counted_scan)
    # Whatever a test installs is undone with it.
    monkeypatch.setattr(Storage, "_candidates_iter", Storage._candidates_iter)
    store = Storage(":memory:")
    store.insert("db", "counters", [{"_id": f"c{i}", "n": 0} for i in range(DOCUMENTS)])
    scanned.clear()
    try:
        yield store, scanned
    finally:
        store.close()


def find_and_modify_write(store: Storage, doc_id: Any, query: dict[str, Any]) -> int:
    """The write a findAndModify makes once it has found `doc_id` by `query`."""
    result = store.update_matching(
        "db", "counters", {"_id": doc_id, "$and": [query]}, {"$inc": {"n": 1}}
    )
    return int(result["modified"])


def counter(store: Storage, doc_id: str) -> int:
    (doc,) = store.find_matching("db", "counters", {"_id": doc_id})
    return int(doc["n"])


def test_unrepaired_secantus_scans_the_collection(storage: tuple[Storage, list[str]]) -> None:
    # What the repair is for: if this starts failing, SecantusDB plans the write itself and the
    # repair can go.
    store, scanned = storage
    assert find_and_modify_write(store, "c7", {"_id": "c7"}) == 1
    assert len(scanned) == DOCUMENTS


def test_repaired_write_reads_only_its_document(storage: tuple[Storage, list[str]]) -> None:
    store, scanned = storage
    assert embedded_mongo.install()
    assert find_and_modify_write(store, "c7", {"_id": "c7"}) == 1
    assert find_and_modify_write(store, "c7", {"_id": "c7", "n": 1}) == 1
    assert scanned == []
    assert counter(store, "c7") == 2
    assert counter(store, "c8") == 0


def test_repaired_write_still_checks_the_query(storage: tuple[Storage, list[str]]) -> None:
    # A concurrent writer changed the document between the find and the write: no write, so
    # findAndModify finds again.
    store, _ = storage
    assert embedded_mongo.install()
    assert find_and_modify_write(store, "c7", {"n": 5}) == 0
    assert find_and_modify_write(store, "missing", {"_id": "missing"}) == 0
    assert counter(store, "c7") == 0


def test_other_filters_are_planned_as_before(storage: tuple[Storage, list[str]]) -> None:
    store, scanned = storage
    assert embedded_mongo.install()
    result = store.update_matching(
        "db",
        "counters",
        {"_id": {"$in": ["c1", "c2"]}, "$and": [{"n": 0}]},
        {"$set": {"n": 3}},
        multi=True,
    )
    assert result["modified"] == 2
    assert len(scanned) == DOCUMENTS
    assert (counter(store, "c1"), counter(store, "c2"), counter(store, "c3")) == (3, 3, 0)


def test_install_is_idempotent(storage: tuple[Storage, list[str]]) -> None:
    assert embedded_mongo.install()
    wrapped = Storage._candidates_iter
    assert embedded_mongo.install()
    assert Storage._candidates_iter is wrapped
