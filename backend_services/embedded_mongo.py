"""The embedded MongoDB-wire server: SecantusDB, as `python -m backend_services.embedded_mongo`.

Development, the tests and the benchmarks run SecantusDB when no LETSCHAT_MONGODB_URL is given;
production points at a MongoDB. This entry point takes SecantusDB's own flags and starts it with
one repair (`findAndModify` no longer scans the whole collection) and one default: standalone.

SecantusDB (0.7.0b3, the newest published) finds a `findAndModify`'s document through the `_id`
index, then writes it through a filter of `{_id: <found>, $and: [<the query>]}` so the write only
lands if the document still matches. Its write path plans a filter by its top-level fields and
takes any `$`-field as unplannable, so that write scans every document of the collection: one
`$inc` on a counter costs 1.2 ms in a collection of 10 documents and 34 ms in one of 3,000
(bench/README.md, "The embedded store"). Every send takes its seq from such a counter (one
document per conversation), and read markers, quotas and login throttling are kept the same way,
so a deployment on the embedded store slowed down with every conversation it had.

The repair looks the `_id` up directly when a write's filter is exactly that shape. It is safe
because the write path checks every candidate against the whole filter (`matches`) before it
writes, whatever produced the candidates; the lookup only stops it from reading the others.

Standalone (`--standalone`, unless the flags already say it): SecantusDB otherwise presents itself
as a one-member replica set and keeps an oplog, for change streams and replication, which nothing
here uses (no change stream, no transaction, and every URL connects directly). Keeping one costs
every write an oplog entry and every update a diff of the document before and after, value by
value: a round of 125 read markers in a 1,000-member group's document cost it 9 ms of CPU with the
oplog and 5.4 ms without, a send 3.3 against 2.8 ms (bench/README.md, `bench.embedded_store`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

CandidateLookup = Callable[[Any, str, str, Any], Any]
STANDALONE = "--standalone"


def _point_filter(filter: Any) -> dict[str, Any] | None:
    """`{_id: v}` for a write filter of the shape `{_id: v, $and: [...]}`, else None."""
    if not isinstance(filter, Mapping) or set(filter) != {"_id", "$and"}:
        return None
    id_value = filter["_id"]
    # An operator (`{_id: {$in: [...]}}`) or a subdocument is left to SecantusDB's own planning;
    # findAndModify always writes by the found document's `_id`, a plain value.
    if isinstance(id_value, Mapping):
        return None
    return {"_id": id_value}


def repaired(original: CandidateLookup) -> CandidateLookup:
    """Wrap `Storage._candidates_iter` so a `{_id, $and}` write filter is a point lookup."""

    def candidates(self: Any, db: str, coll: str, filter: Any) -> Any:
        point = _point_filter(filter)
        return original(self, db, coll, point if point is not None else filter)

    candidates.__wrapped__ = original  # type: ignore[attr-defined]
    return candidates


def install() -> bool:
    """Apply the repair to SecantusDB's storage; False (and a warning) if its shape changed."""
    from secantus.storage import Storage  # type: ignore[import-untyped]

    original = getattr(Storage, "_candidates_iter", None)
    if original is None:
        log.warning("SecantusDB has no Storage._candidates_iter; findAndModify is left as it is")
        return False
    if hasattr(original, "__wrapped__"):
        return True
    Storage._candidates_iter = repaired(original)
    return True


def arguments(argv: list[str]) -> list[str]:
    """SecantusDB's flags for the embedded store: `argv`, standalone."""
    return argv if STANDALONE in argv else [*argv, STANDALONE]


def main(argv: list[str] | None = None) -> int:
    from secantus.cli import main as secantus_main  # type: ignore[import-untyped]

    install()
    return int(secantus_main(arguments(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
