"""Two helper threads that overlap reading/encoding and writing with the engine.

TensorFlow releases the GIL while it computes, so preparing the next batch (FASTA reads,
one-hot encoding, references) and writing the previous one (HDF5 compression) run while
the engine works on the current batch. Order is preserved and memory stays bounded by
``depth`` batches on each side.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterable, Iterator

_POLL = 0.1  # seconds between checks of the stop flag while a queue is full


class Prefetch:
    """Iterate ``iterable`` in a daemon thread, up to ``depth`` items ahead.

    Exceptions raised by the iterable are re-raised in the consumer, in order.
    Call :meth:`close` (or use as a context manager) to stop the thread early.
    """

    def __init__(self, iterable: Iterable[Any], depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iterable,), daemon=True,
                                        name="dnalift-prefetch")
        self._thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, iterable: Iterable[Any]) -> None:
        try:
            for item in iterable:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as err:  # handed to the consumer
            self._put(("error", err))

    def __iter__(self) -> Iterator[Any]:
        while True:
            kind, value = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        """Stop the producer thread and wait for it."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BackgroundCalls:
    """Run submitted calls one after another in a worker thread (at most ``depth`` queued).

    The first exception stops further calls and is re-raised by the next :meth:`submit`
    or by :meth:`finish`.
    """

    def __init__(self, depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="dnalift-writer")
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue
            fn, args = item
            try:
                fn(*args)
            except BaseException as err:
                self._error = err

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((fn, args))

    def finish(self, raise_error: bool = True) -> None:
        """Wait until every submitted call has run; re-raise the first error."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if raise_error and self._error is not None:
            raise self._error
