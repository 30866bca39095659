"""Keeping the garbage collector's full passes out of an ops-data reload.

A full collection walks every tracked object of the process in one C call, holding the GIL
throughout: with a 20,000-group version live that takes 0.2-0.6 s, and a reload, building a
second version beside the first, sets off several, each stalling the event loop (and so a
member's reply) although the reload itself runs in a worker thread. So:

* while a reload builds the new version, automatic collection is paused
  (:func:`collection_paused`; process-wide, for the seconds the reload takes);
* once the new version is live, every object alive is moved to the permanent generation
  (:func:`settle`, ``gc.freeze``), which later full passes do not walk, so the long-lived ops
  data is not walked again and again either.

Frozen objects are still freed by reference counting as soon as nothing refers to them: an
ops-data version holds no reference cycles (tests/unit/test_opsdata_heap.py), so the previous
version is freed when it is swapped out. Only cyclic garbage alive at the moment of freezing
stays (a little per reload; reloads follow ops edits, which are rare).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = True


@contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic garbage collection off inside the block (nested or concurrent blocks are
    fine: it comes back on, if it was on before the first, when the last one ends)."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()


def settle() -> None:
    """Move every object alive to the permanent generation: full collections stop walking the
    live ops-data version (call right after a new version goes live)."""
    gc.freeze()
