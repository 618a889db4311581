"""The project's journal kept to a bounded size.

Every plan and apply reads the journal (decl.engine.recovery), and every apply appends to
it: an intent and an outcome per change, a record per tool started. Left alone it would grow
for as long as the project lives, and every command would read it all. At the start of an
apply, under the project lock, a journal past ROTATE_AT bytes becomes PATH.1 (replacing the
generation before it) and PATH starts again with the records still open: the makings with no
outcome and the tools never seen ending, so that recovery reads the same either way.

The journal is renamed first and the new one written after (atomically): a decl killed in
between leaves PATH.1 holding every record, which is read as the journal's first part.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from decl.engine.recovery import open_records, read_journal
from decl.files import write_atomic

log = logging.getLogger(__name__)

ROTATE_AT = 1_000_000  # bytes: about 5,000 records, read in ~20 ms


def rotate_journal(path: str, limit: int = ROTATE_AT,
                   records: list[dict[str, Any]] | None = None) -> bool:
    """Rotate the journal at `path` when it has grown past `limit` bytes; whether it did.
    `records`: the journal as the caller has just read it (read_journal), to read it once.

    Call it holding the project lock. A journal that cannot be rotated is left to grow
    (logged): recovery never depends on the rotation."""
    try:
        if os.path.getsize(path) < limit:
            return False
    except OSError:
        return False
    keep = open_records(read_journal(path) if records is None else records)
    data = "".join(json.dumps(record, default=str, sort_keys=True) + "\n" for record in keep)
    try:
        os.replace(path, f"{path}.1")
        write_atomic(path, data.encode("utf-8"), mode=0o600)
    except OSError as exc:
        log.warning("the journal %s was not rotated: %s", path, exc)
        return False
    log.debug("journal %s rotated (%d open records kept)", path, len(keep))
    return True
