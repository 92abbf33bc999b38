"""The garbage collector of a long-running process (the API, the timer and notification workers).

A SpiffWorkflow task tree is a web of cycles (each task points at its parent and at its children), so
each workflow restored to complete a step or fire a timer is freed by the cyclic collector, not by
reference counts. With CPython's defaults (a young collection every 700 new containers, and now and
then a full one that walks every object of the process, its modules, mappers, models and routes
included) a timer worker firing escalations of the shipped model spent over a quarter of its CPU
collecting: 1.6 ms of a 6 ms escalation (bench/RESULTS.md, sixth pass). Once start-up is over, what
exists lives as long as the process: `settle` moves it out of the collector's sight and makes young
collections rarer.
"""

from __future__ import annotations

import gc

# New containers between two young collections (CPython's default is 700). A young collection walks
# only what survived since the previous one, so ten thousand cost little memory (a few MB at most).
YOUNG_COLLECTION_THRESHOLD = 10_000

_settled = False


def settle() -> None:
    """Once per process, when start-up is over: collect, freeze what is left, collect the young less often.

    Frozen objects are never examined again (`gc.freeze`); those that die later are still freed by their
    reference counts, and a cycle among them stays allocated, which is why this runs once, not per
    application built (tests build hundreds).
    """
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)
