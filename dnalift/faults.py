"""Test-only fault injection points (beside the data flow: used by fileio, scorefile, scoring
and the command line to simulate signals and I/O errors at exact moments of a job).

Nothing happens unless the environment variable ``DNALIFT_FAULT`` is set, e.g.::

    DNALIFT_FAULT="rename@0:SIGTERM"        # SIGTERM to itself during the first final rename
    DNALIFT_FAULT="write@1:ENOSPC"          # the HDF5 writer's second batch: disk full
    DNALIFT_FAULT="write@0:SIGINT,start:SIGHUP"

Each item is ``POINT[@INDEX]:ACTION`` (INDEX 0 when omitted). Points (the caller passes its
own 0-based counter, so this module keeps no state):

* ``start``: the console entry point, before anything heavy is imported;
* ``lock``: the job has just created the lock file of its output number INDEX
  (:mod:`dnalift.locks`), under the output registry's lock;
* ``loaded``: the model is loaded and the engine built, before the first batch;
* ``write``: the HDF5 writer appends batch INDEX (0: the first batch is scored);
* ``rename``: the job's final rename number INDEX, under the output registry's lock.

Actions: ``SIGINT``, ``SIGTERM``, ``SIGHUP``, ``SIGKILL`` (sent to this process, which then
stands still at the point for :data:`PAUSE_S` seconds, so that the signal is handled while the
job is exactly there instead of racing past it) and ``ENOSPC``, ``EIO`` (an :class:`OSError`
with that errno is raised at the point).
"""

from __future__ import annotations

import errno
import os
import signal
import time

#: Environment variable read by :func:`inject`.
ENV = "DNALIFT_FAULT"
#: Seconds a process stands at the point after signalling itself.
PAUSE_S = 0.5


def inject(point: str, index: int = 0) -> None:
    """Carry out the actions ``DNALIFT_FAULT`` asks for at ``point`` number ``index``."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    for item in spec.split(","):
        where, _, action = item.strip().partition(":")
        name, _, at = where.partition("@")
        if name != point or int(at or 0) != index:
            continue
        if action.startswith("SIG"):
            os.kill(os.getpid(), getattr(signal, action))
            time.sleep(PAUSE_S)
        elif action in ("ENOSPC", "EIO"):
            code = getattr(errno, action)
            raise OSError(code, os.strerror(code), f"{point}@{index} ({ENV})")
        else:
            raise ValueError(f"{ENV}: unknown action {action!r} in {item!r}")
