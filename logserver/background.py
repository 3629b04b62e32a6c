"""What a serving process runs beside its requests (`tlog-server serve`, logserver/cli.py): the sequencer, the request
log's flushes, the status indexer, witnessing and its refresh, the static tiles directory. Each is a `logged_task`:
a failure is said when it happens and ends that task alone."""

import asyncio
import logging
from collections.abc import Callable

from logserver.config import ServerConfig
from logserver.indexerprocess import IndexerProcess
from logserver.requestlines import flush_every
from logserver.sequencer import Sequencer
from logserver.static_tiles import StaticTiles
from logserver.storage import Head
from logserver.tasks import logged_task
from logserver.witnessing import Witnessing
from tlogcore.freshness import MAX_AGE_SECONDS

log = logging.getLogger("logserver")


def sequencing_head(sequencer: Sequencer) -> Callable[[], Head | None]:
    """The head to have cosigned afresh (Witnessing.refresh): this process's, while it sequences."""
    return lambda: sequencer.head if sequencer.not_sequencing is None else None


def background_tasks(
    sequencer: Sequencer,
    witnessing: Witnessing,
    static: StaticTiles | None,
    indexer: IndexerProcess | None,
    config: ServerConfig,
) -> list["asyncio.Task[object]"]:
    tasks = [logged_task(sequencer.run(), "sequencer")]
    if config.request_log_flush_ms:
        tasks.append(logged_task(flush_every(config.request_log_flush_ms / 1000), "request log"))
    if indexer is not None:
        tasks.append(logged_task(indexer.run(), "status indexer"))
    sequencing = sequencing_head(sequencer)
    head = sequencing()
    if witnessing.witnesses and head is not None:  # a head left unwitnessed by a crash (not a standby's: it is old)
        tasks.append(logged_task(witnessing.on_checkpoint(head), "witnessing"))
    publish, every = sequencer.on_checkpoint, config.witness_refresh_seconds
    if witnessing.witnesses and every and publish is not None:  # an idle log's cosignatures kept fresh
        tasks.append(logged_task(witnessing.refresh(sequencing, publish, every), "witness refresh"))
    if witnessing.witnesses and not 0 < every < MAX_AGE_SECONDS:
        log.warning(
            "witness_refresh_seconds = %d: an idle log's checkpoint grows older than the %d s verifiers accept, "
            "and its documents' status reads 'not proven current' (docs/trust.md \"Freshness\")",
            every,
            MAX_AGE_SECONDS,
        )
    if static is not None:  # catches up at once: a crash between commit and file writes heals here
        tasks.append(logged_task(static.run(), "static tiles"))
    return tasks
