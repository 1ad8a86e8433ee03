"""Statuses only move forward; the four final states never change."""
import itertools

from bbconnect.status import FINAL, Status, may_move


def test_given_each_final_state_when_any_move_is_tried_then_it_is_refused():
    for final in FINAL:
        for other in Status:
            assert not may_move(final, other)


def test_given_the_normal_path_then_each_step_moves_forward_and_never_back():
    path = [Status.ACCEPTED, Status.ROUTED, Status.RENDERED, Status.SENT, Status.DELIVERED]
    for earlier, later in itertools.pairwise(path):
        assert may_move(earlier, later)
        assert not may_move(later, earlier)
    assert may_move(None, Status.ACCEPTED)
    assert may_move(Status.ROUTED, Status.PAPER)
