"""Recording a routed send's results off the routing thread, so that a worker routes the next
post while the last one's copies are still being paced out.

A community post's 49 copies take about 60 ms of pacing at a number's 800 messages/s, and a
worker that waits for them before it routes the next post spends a burst of posts one after
another (decision 0057: routing and pacing did not overlap). With the pipeline on, the routing
thread claims the copies, writes their Message rows and starts their requests, then hands the
batch to this process's recorder thread and goes on; the recorder waits for each batch's
requests, in the order they started, and records the results.

Nothing is lost if the process dies between the two: the rows stay 'sending' and
`outbox_recover_stale` settles them from the provider's status webhooks, as after any crash
during a send. Long-lived workers turn the pipeline on (`tertulia worker`); the tests, the demos
and `run_until_idle` record in place, where the caller's connection sees everything.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable

from django.db import close_old_connections

from tertulia.messaging.sender import SendReport, StartedBatch, outbox_send_finish

logger = logging.getLogger(__name__)

# Started batches waiting to be recorded, at most: a routing thread that gets this far ahead of
# the number's rate waits for the recorder rather than start more requests.
BACKLOG = 32

Then = Callable[[SendReport], None]


class _Recorder:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self._queue: queue.Queue[tuple[StartedBatch, Then | None] | None] = queue.Queue(BACKLOG)
        self._thread = threading.Thread(target=self._run, name="tertulia-send-recorder")
        self._thread.daemon = True
        self._thread.start()

    def submit(self, batch: StartedBatch, then: Then | None) -> None:
        self._queue.put((batch, then))

    def stop(self, timeout: float | None) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                close_old_connections()
                return
            batch, then = item
            try:
                close_old_connections()
                report = outbox_send_finish(batch)
                if then is not None:
                    then(report)
            except Exception:
                # The rows stay 'sending': outbox_recover_stale settles them after the lease.
                logger.exception("recording a started send batch failed")


_lock = threading.Lock()
_recorder: _Recorder | None = None


def pipeline_start() -> None:
    """Record routed sends on a thread of this process from now on (a long-lived worker)."""
    global _recorder
    with _lock:
        if _recorder is None or _recorder.pid != os.getpid():
            _recorder = _Recorder()


def pipeline_stop(timeout: float | None = 30.0) -> None:
    """Record what was started, then go back to recording in place."""
    global _recorder
    with _lock:
        recorder, _recorder = _recorder, None
    if recorder is not None and recorder.pid == os.getpid():
        recorder.stop(timeout)


def send_recorded(batch: StartedBatch, then: Then | None = None) -> SendReport | None:
    """Record `batch`: on the recorder thread when the pipeline is on (returns None at once;
    `then` gets the report there), otherwise here (returns the report, after `then`)."""
    recorder = _recorder
    if recorder is not None and recorder.pid == os.getpid():
        recorder.submit(batch, then)
        return None
    report = outbox_send_finish(batch)
    if then is not None:
        then(report)
    return report
