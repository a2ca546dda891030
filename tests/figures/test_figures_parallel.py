"""Figures drawn together: the process pool keeps the calls' order, and a deferred figure is
the same bytes as one drawn where it is called."""

from __future__ import annotations

import os
import time

import pytest

from jaggy.figures._charts import Series, line_chart
from jaggy.figures._deferred import deferred_figures
from jaggy.figures._parallel import run_calls, start_calls, worker_count
from jaggy.figures._sequence import views_and_curve_svg


def _square_and_pid(i: int) -> tuple[int, int]:
    return i * i, os.getpid()


def _slow_square_and_pid(i: int, log=None) -> tuple[int, int]:
    time.sleep(0.2)
    if log is not None:
        with open(log, "a") as file:  # one line per call made, whichever process made it
            file.write(f"{i}\n")
    return _square_and_pid(i)


@pytest.mark.parametrize("workers", [1, 2, None])
def test_results_come_back_in_call_order(workers):
    calls = [lambda i=i: _slow_square_and_pid(i) for i in range(9)]
    results = run_calls(calls, workers)
    assert [r[0] for r in results] == [i * i for i in range(9)]
    if workers == 1:
        assert {r[1] for r in results} == {os.getpid()}  # no processes asked for: none used
    elif worker_count(9) > 1:
        assert {r[1] for r in results} - {os.getpid()}  # workers made some


def test_the_caller_makes_the_calls_no_worker_has_started_each_once(tmp_path):
    if worker_count(2) < 2:
        pytest.skip("one core or no fork here: the calls run in this process")
    log = tmp_path / "made.txt"
    pending = start_calls([lambda i=i: _slow_square_and_pid(i, log) for i in range(8)], 2)
    results = pending.results()  # at once: the workers have barely started
    assert [r[0] for r in results] == [i * i for i in range(8)]
    made_here = [i for i, r in enumerate(results) if r[1] == os.getpid()]
    assert made_here and made_here == list(range(made_here[0], 8))  # the tail, from the back
    assert len(made_here) < 8  # and the workers the front
    assert sorted(int(line) for line in log.read_text().split()) == list(range(8))


def test_calls_started_first_keep_their_own_results_while_others_run():
    first = start_calls([lambda i=i: _square_and_pid(i) for i in range(5)], 2)
    second = run_calls([lambda i=i: _square_and_pid(10 + i) for i in range(5)], 2)
    assert [r[0] for r in second] == [(10 + i) ** 2 for i in range(5)]
    assert [r[0] for r in first.results()] == [i * i for i in range(5)]


def test_an_error_in_a_worker_is_raised_here():
    def fails():
        raise ValueError("bad figure")

    with pytest.raises(ValueError, match="bad figure"):
        run_calls([lambda: 1, fails], 2)


def test_deferred_figures_are_the_bytes_drawn_at_once():
    series = [Series("a <b>", [0, 1, 2], [0.1, 0.5, 0.9], point_titles=["x", "y", "z"])]
    direct = line_chart(series, title="t")
    sequence = views_and_curve_svg([], [0.2, 0.4], [True, False], ["0", "1"])
    with deferred_figures() as figures:
        chart = line_chart(series, title="t")
        unused = line_chart([Series("never shown", [0, 1], [1, 2])])
        later = views_and_curve_svg([], [0.2, 0.4], [True, False], ["0", "1"])
    assert chart != direct and "<svg" not in chart + unused + later  # placeholders
    forged = "\x00figure-0-0\x00"  # a string in the data that looks like a placeholder
    page = figures.resolve(f"<p>{chart}</p>{forged}<p>{later}{chart}</p>", workers=2)
    assert page == f"<p>{direct}</p>{forged}<p>{sequence}{direct}</p>"
    assert "never shown" not in page
    assert line_chart(series, title="t") == direct  # outside the block: drawn at once


def _torch_sum_and_pid() -> tuple[float, int]:
    import torch

    x = torch.ones(64, 1024, 1024)
    return float((x * 2).sum()), os.getpid()


def test_workers_use_torch_after_the_parent_ran_it_on_several_threads(monkeypatch):
    import torch

    from jaggy.figures import _parallel

    if worker_count(2) < 2:
        pytest.skip("one core or no fork here: the calls run in this process")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.ones(64, 1024, 1024).mul(2).sum()  # the parent's OpenMP threads are started
        monkeypatch.setattr(_parallel, "CALL_TIMEOUT_S", 60.0)
        pending = start_calls([_torch_sum_and_pid, _torch_sum_and_pid], 2)
        time.sleep(0.5)  # the workers start both calls before this process could take one
        results = pending.results()
    finally:
        torch.set_num_threads(before)
    assert [r[0] for r in results] == [2.0 * 64 * 1024 * 1024] * 2
    assert os.getpid() not in {r[1] for r in results}  # done in the workers, not after a hang


def _nested_worker_count(_: int) -> int:
    return worker_count(8)


def test_a_daemonic_process_makes_its_calls_itself():
    import multiprocessing

    if worker_count(2) < 2:
        pytest.skip("one core or no fork here")
    with multiprocessing.get_context("fork").Pool(1) as pool:  # its workers are daemonic
        assert pool.map(_nested_worker_count, [0]) == [1]
