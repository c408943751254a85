"""Planning freezes the objects alive before it for the cyclic GC, and always hands them back."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from dbt_stripe_sync.gc_pause import MIN_ROWS, collections_spaced, older_objects_frozen

pytestmark = pytest.mark.timeout(60)
MANY = MIN_ROWS  # rows of a plan big enough to freeze for


def test_objects_are_frozen_while_planning_and_unfrozen_after_the_last_plan():
    gc.unfreeze()
    thresholds = gc.get_threshold()
    before = [object()]  # tracked: a list
    with older_objects_frozen(MANY):
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() >= (10_000, 100, 1_000)
        with older_objects_frozen(MANY):  # nested (a plan per account): still frozen after the inner one
            pass
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds
    assert before


def test_garbage_left_before_the_plan_is_collected_not_frozen():
    class Node:
        pass

    gc.unfreeze()
    cycle = Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    gone = weakref.ref(cycle)
    del cycle  # only the cyclic collector can free it
    with older_objects_frozen(MANY):
        assert gone() is None


def test_a_plan_that_raises_still_unfreezes():
    with pytest.raises(ValueError), older_objects_frozen(MANY):
        raise ValueError("boom")
    assert gc.get_freeze_count() == 0


def test_plans_in_several_threads_unfreeze_only_when_the_last_one_ends():
    inside, leave = threading.Event(), threading.Event()

    def plan() -> None:
        with older_objects_frozen(MANY):
            inside.set()
            leave.wait(10)

    other = threading.Thread(target=plan)
    other.start()
    assert inside.wait(10)
    with older_objects_frozen(MANY):
        pass
    assert gc.get_freeze_count() > 0  # the other plan is still running
    leave.set()
    other.join(10)
    assert gc.get_freeze_count() == 0


def test_a_small_plan_is_left_alone():
    """A plan of fewer rows (every sync of a no-op run) pays for no full collection and freezes nothing."""
    gc.unfreeze()
    thresholds = gc.get_threshold()
    with older_objects_frozen(MIN_ROWS - 1):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == thresholds


def test_collections_spaced_freezes_nothing_and_restores_the_thresholds():
    """Reading a whole diff, or planning fewer rows than a freeze pays back: thresholds raised, no
    full collection first (garbage from before stays until the collector's own time), nothing frozen."""

    class Node:
        pass

    gc.unfreeze()
    thresholds = gc.get_threshold()
    cycle = Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    left = weakref.ref(cycle)
    del cycle
    gc.disable()  # so that only a collection made by collections_spaced could free the cycle
    try:
        with collections_spaced():
            assert gc.get_freeze_count() == 0
            assert gc.get_threshold() >= (10_000, 100, 1_000)
            assert left() is not None  # no gc.collect() first
            with older_objects_frozen(MANY):  # a freeze inside: collected, frozen, then unfrozen
                assert gc.get_freeze_count() > 0
            assert gc.get_freeze_count() == 0
            assert gc.get_threshold() >= (10_000, 100, 1_000)  # still spaced: the outer one is running
        assert gc.get_threshold() == thresholds
    finally:
        gc.enable()


def test_a_plan_told_not_to_freeze_only_spaces_collections():
    gc.unfreeze()
    thresholds = gc.get_threshold()
    with older_objects_frozen(MANY, freeze=False):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() >= (10_000, 100, 1_000)
    assert gc.get_threshold() == thresholds


def test_a_boot_frozen_until_thawed_outlives_the_plans_inside_it():
    """Warehouse.open freezes dbt's boot until close(): a plan that freezes and ends meanwhile must
    not unfreeze it, and the last thaw does."""
    from dbt_stripe_sync.gc_pause import freeze_alive, thaw

    booted = [object() for _ in range(10)]
    freeze_alive()
    try:
        assert gc.get_freeze_count() > 0
        with older_objects_frozen(MIN_ROWS):
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # the plan's exit left the boot frozen
    finally:
        thaw()
    assert gc.get_freeze_count() == 0
    assert booted
