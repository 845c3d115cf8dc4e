"""One driver per sweep: the driver claims its sweep in the database and renews the claim on a heartbeat while it
runs; a claim not renewed for ``LEASE_S`` (or whose process is gone from this host) is free to take."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sweeps.store.result_store import ResultStore

DRIVER = f"{socket.gethostname()}:{os.getpid()}"  # who claims a sweep in the store while running it
LEASE_S, HEARTBEAT_S = 300.0, 30.0


@contextmanager
def holding(store: ResultStore, sweep_id: int) -> Iterator[None]:
    """Keep this driver's claim on the sweep alive (a heartbeat thread, through the driver's ``store``) while it
    runs; release it afterwards. The claim itself is taken when the sweep is opened (``ResultStore.claim_sweep``)."""
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                store.renew_claim(sweep_id, DRIVER)
            except Exception as exc:  # a missed beat is survivable; the lease outlasts several
                logging.getLogger(__name__).warning("sweep heartbeat failed: %s", exc)

    beating = threading.Thread(target=heartbeat, name="sweep-heartbeat", daemon=True)
    beating.start()
    stopped_by_error = True
    try:
        yield
        stopped_by_error = False
    finally:
        stop.set()
        beating.join()
        try:
            store.release_sweep(sweep_id, DRIVER)
        except Exception as exc:  # the claim lapses with this process; where the sweep stopped on an error (a full
            # disk, a lost server), that error is the one line the user reads, not this
            log = logging.getLogger(__name__)
            (log.debug if stopped_by_error else log.warning)("could not release the sweep: %s",
                                                             str(exc).splitlines()[0])
