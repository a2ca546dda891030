"""The rows of a batch made together with those of the next batches (on a CPU, `Forward`
collects up to ROW_GROUP_VIEWS views' outputs first): the same bits as rows made batch by
batch, whatever the batches, sequences, labels, pairings and measures; a failed batch changes
nothing."""

from __future__ import annotations

import pytest
import torch

from jaggy.engine._forward import Forward, RowColumns, Segment, ViewPlan
from jaggy.engine._measure import Measure
from jaggy.engine._threads import engine_threads
from jaggy.protocols._base import ViewParams
from jaggy.results._predictions import PREDICTION_SCHEMA
from tinynets import TinyCNN


class Plan:
    def __init__(self, key: str, views: int, pairing: str = "consecutive"):
        self.key = self.name = key
        self.pairing = pairing
        self.views = views

    def view_params(self):
        return [ViewParams(k, -k, 20 + k, 0.5 * k) for k in range(self.views)]


PLANS = [
    ViewPlan(Plan("crop", 7)),
    ViewPlan(Plan("zhang", 6, "disjoint")),
    ViewPlan(Plan("one", 1)),
]


def batches(batch_size: int):
    """(views, segments) of 3 images x PLANS, cut into batches of `batch_size` views."""
    torch.manual_seed(0)
    sequence = []  # (image, label, plan, view)
    for image, label in ((0, -1), (1, 3), (2, -1)):
        for plan in PLANS:
            sequence += [(image, label, plan, k) for k in range(len(plan))]
    views = torch.randn(len(sequence), 3, 32, 32)
    for start in range(0, len(sequence), batch_size):
        part = sequence[start : start + batch_size]
        segments: list[Segment] = []
        for image, label, plan, k in part:
            last = segments[-1] if segments else None
            if last and last.image_index == image and last.plan is plan:
                segments[-1] = Segment(image, f"im{image}", label, plan, last.start, last.count + 1)
            else:
                segments.append(Segment(image, f"im{image}", label, plan, k, 1))
        yield views[start : start + len(part)], segments


def rows_of(batch_size: int, group: int, measure: Measure, fail_at: int | None = None):
    forward = Forward(
        TinyCNN(), torch.device("cpu"), measure=measure, save_features=measure.features
    )
    forward.row_group_views = group
    rows = RowColumns()
    with engine_threads(torch.device("cpu")):
        for i, (views, segments) in enumerate(batches(batch_size)):
            if i == fail_at:  # a batch that fails, then runs again
                real, forward.outputs = forward.outputs, _failing
                with pytest.raises(RuntimeError, match="out of memory"):
                    forward.run(views, segments, rows)
                forward.outputs = real
            forward.run(views, segments, rows)
        forward.drain()
    forward.close()
    return rows


def _failing(views, given=None):
    raise RuntimeError("CPU: can't allocate memory: out of memory")


@pytest.mark.parametrize("measure", [Measure(), Measure(logits=True, features=True)])
@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_rows_made_together_equal_rows_made_batch_by_batch(batch_size, measure):
    each = rows_of(batch_size, 1, measure)
    for group in (3, 64):
        together = rows_of(batch_size, group, measure)
        if group > batch_size:  # batches were grouped
            assert len(together.blocks) < len(each.blocks)
        assert together.to_table(PREDICTION_SCHEMA).equals(each.to_table(PREDICTION_SCHEMA))
        if measure.features:
            assert torch.equal(
                torch.from_numpy(together.features()), torch.from_numpy(each.features())
            )


def test_a_failed_batch_changes_nothing():
    expected = rows_of(2, 64, Measure()).to_table(PREDICTION_SCHEMA)
    for fail_at in (0, 3, 7):
        got = rows_of(2, 64, Measure(), fail_at=fail_at).to_table(PREDICTION_SCHEMA)
        assert got.equals(expected)


def test_views_out_of_order_are_refused_before_the_forward():
    forward = Forward(TinyCNN(), torch.device("cpu"))
    views = torch.randn(2, 3, 32, 32)
    forward.outputs = _failing  # not reached
    with pytest.raises(RuntimeError, match="out of order"):
        forward.run(views, [Segment(0, "im0", -1, PLANS[0], 2, 2)], RowColumns())
