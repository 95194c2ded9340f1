"""`python -m backend_services.message_service.epochs`: after restoring the database from a
backup, give every conversation a new epoch.

Clients resume from cursors (the newest seq they received). In a restored database a
conversation's history went back to the backup's, and new messages take seqs that clients
already counted in the history that is gone: without a new epoch, a client at seq 20 in a
conversation restored to seq 10 would silently miss the new 11-20. With one, every client's
next resume is answered `reset` for every conversation and starts it over.

Run it once, with the services' settings (LETSCHAT_MONGODB_URL, LETSCHAT_MONGODB_DB), after
the restore and before clients reconnect (restart the message services after it, so that
every socket resumes).
"""

from __future__ import annotations

import asyncio

from backend_services.core.config import MessageSettings
from backend_services.core.store import Store


async def renew(settings: MessageSettings) -> int:
    store = Store.connect(
        settings.mongodb_url, settings.mongodb_db, timeout_ms=settings.mongodb_timeout_ms
    )
    try:
        return await store.states.renew_all_epochs()
    finally:
        await store.close()


def main() -> None:
    renewed = asyncio.run(renew(MessageSettings()))
    print(f"{renewed} conversations start a new epoch; clients resuming now start them over.")


if __name__ == "__main__":
    main()
