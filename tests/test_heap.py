"""The garbage collector of long-running processes (engine.foundation.heap): settled once, still collecting."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

from engine.foundation import heap

ROOT = Path(__file__).resolve().parent.parent


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_settle_freezes_once_and_collects_the_young_less_often() -> None:
    heap.settle()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert gc.get_threshold()[0] == heap.YOUNG_COLLECTION_THRESHOLD
    later = [Node() for _ in range(1000)]
    heap.settle()  # a second application built in this process: nothing more is frozen
    assert gc.get_freeze_count() == frozen
    del later


def test_cycles_made_after_settling_are_still_collected() -> None:
    heap.settle()
    first, second = Node(), Node()
    first.other, second.other = second, first  # as a SpiffWorkflow task and its parent
    watch = weakref.ref(first)
    del first, second
    assert watch() is not None  # reference counts alone cannot free a cycle
    gc.collect()
    assert watch() is None


def test_the_api_process_settles_when_its_application_is_built(tmp_path: Path) -> None:
    env = {**os.environ, "TANSIQ_HOME": str(tmp_path), "TANSIQ_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}",
           "TANSIQ_SECRET_KEY": "k" * 48}
    probe = ("import gc; from api.app import create_app; before = gc.get_freeze_count(); create_app(); "
             "print(before, gc.get_freeze_count(), gc.get_threshold()[0])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    before, after, young = map(int, out)
    assert before == 0 and after > 10_000  # modules, mappers, routes and schemas: tens of thousands of objects
    assert young == heap.YOUNG_COLLECTION_THRESHOLD
