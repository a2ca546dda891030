"""Arguments out of bounds fail before any work: one line, exit 2, no folder created, and
nothing of the user's touched."""

from __future__ import annotations

import pytest
import torch
from misuse_conftest import TINY_AUDIT, run_jaggy, snapshot

from conftest import write_synthetic_images
from jaggy.engine._bounds import check_work_fits
from jaggy.errors import ArgumentError
from jaggy.models import Preprocessing
from jaggy.protocols import ProtocolOptions, build_protocols
from tinynets import TinyCNN


@pytest.fixture
def images(tmp_path):
    write_synthetic_images(tmp_path / "imgs", 2, side=40)
    return tmp_path / "imgs"


def refused(code, err, message):
    assert code == 2
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


AUDIT_CASES = {
    "seed-negative": (
        ["--seed", "-1"],
        "--seed must be a whole number from 0 to 4294967295 (got -1)",
    ),
    "seed-huge": (["--seed", str(2**40)], "--seed must be a whole number from 0 to 4294967295"),
    "fail-under-nan": (
        ["--fail-under", "p_top1_change=nan"],
        "--fail-under 'p_top1_change=nan': the bound must be a number, not NaN",
    ),
    "crop-steps-memory": (
        ["--protocol", "crop", "--steps", "200000"],
        "crop with --steps 200000 needs about",
    ),
    "grid-views": (
        ["--protocol", "crop", "--path", "grid", "--steps", "2000"],
        "--steps 2000 along 'grid' makes 4,000,000 views per image, more than 1,000,000; use "
        "--steps at most 1,000",
    ),
    "black-steps": (
        ["--protocol", "black", "--steps", "100000"],
        "100000 steps along 'diagonal' move the image 99999 px, too far for the 32 px canvas; "
        "use --steps at most 25",
    ),
    "scale-steps": (
        ["--protocol", "scale", "--steps", "100"],
        "scale: 100 sizes 1 px apart do not fit the 32 px canvas; use --steps at most 25",
    ),
}


@pytest.mark.parametrize("case", list(AUDIT_CASES))
def test_audit_arguments_out_of_bounds(capsys, images, tmp_path, case):
    args, message = AUDIT_CASES[case]
    before = snapshot(tmp_path)
    base = ["--protocol", "crop"] if "--protocol" not in args else []
    code, err = run_jaggy(
        capsys,
        "audit",
        "py:tinynets:tiny",
        images,
        *base,
        *TINY_AUDIT,
        *args,
        "--out",
        tmp_path / "out",
    )
    refused(code, err, message)
    if "size at most -" in err:
        raise AssertionError("a negative size was suggested")
    assert not (tmp_path / "out").exists()
    assert snapshot(tmp_path) == before


def test_an_empty_out_is_refused_and_the_current_folder_untouched(
    capsys, images, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    for command in (
        ["audit", "py:tinynets:tiny", images, "--protocol", "crop", *TINY_AUDIT],
        ["layers", "py:tinynets:tiny", images, "--shifts", "2"],
        ["report", tmp_path],
        ["finetune", "py:tinynets:tiny", images, "--no-progress"],
    ):
        code, err = run_jaggy(capsys, *command, "--out", "")
        refused(code, err, "--out is empty; name ")
    assert snapshot(tmp_path) == before


def test_layers_shifts_are_bounded(capsys, images, tmp_path):
    code, err = run_jaggy(
        capsys,
        "layers",
        "py:tinynets:tiny",
        images,
        "--shifts",
        "10000000",
        "--out",
        tmp_path / "out",
    )
    refused(code, err, "--shifts 10000000 along 'diagonal' makes 10,000,001 views per image")
    code, err = run_jaggy(
        capsys,
        "layers",
        "py:tinynets:tiny",
        images,
        "--shifts",
        "200000",
        "--out",
        tmp_path / "out",
    )
    refused(code, err, "crop with --shifts 200000 needs about")
    assert not (tmp_path / "out").exists()


def test_memory_bound_names_the_protocol_the_need_and_what_is_available():
    prep = Preprocessing(input_size=32)
    protocols = build_protocols(["crop"], prep, ProtocolOptions(steps=5000))
    with pytest.raises(ArgumentError) as error:
        check_work_fits(
            protocols, torch.device("cpu"), batch_size=8, available={"host": 10**9, "device": 10**9}
        )
    assert str(error.value) == (
        "crop with --steps 5000 needs about 0.6 GB of memory (a 5032 px source image per "
        "image), but this machine has 1.0 GB available; use fewer --steps"
    )
    small = build_protocols(["crop"], prep, ProtocolOptions(steps=500))
    check_work_fits(
        small, torch.device("cpu"), batch_size=8, available={"host": 10**9, "device": 10**9}
    )


def test_finetune_never_overwrites_a_checkpoint(capsys, images, tmp_path):
    out = tmp_path / "tuned"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"the user's own weights")
    labels = tmp_path / "labels.csv"
    labels.write_text("img000.png,1\nimg001.png,2\n")
    before = snapshot(tmp_path)
    command = [
        "finetune",
        "py:tinynets:tiny",
        images,
        "--labels",
        labels,
        "--out",
        out,
        "--no-progress",
        "--batch-size",
        "2",
    ]
    code, err = run_jaggy(capsys, *command)
    refused(
        code,
        err,
        f"'{out / 'checkpoint.pt'}' exists already; choose another --out, or "
        "pass --overwrite to replace it",
    )
    assert snapshot(tmp_path) == before
    code, err = run_jaggy(capsys, *command, "--overwrite")
    assert code == 0, err
    state = torch.load(out / "checkpoint.pt", weights_only=True)["state_dict"]
    assert set(state) == set(TinyCNN().state_dict())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "-5"], "--seed must be a whole number from 0 to 4294967295 (got -5)"),
        (["--lr", "nan"], "--lr must be a finite number (got nan)"),
        (["--momentum", "-1"], "--momentum must be at least 0 (got -1.0)"),
    ],
)
def test_finetune_arguments_out_of_bounds(capsys, images, tmp_path, args, message):
    code, err = run_jaggy(
        capsys, "finetune", "py:tinynets:tiny", images, "--out", tmp_path / "out", *args
    )
    refused(code, err, message)
    assert not (tmp_path / "out").exists()


def test_a_batch_too_big_for_memory_names_the_batch_size(capsys, images, tmp_path):
    code, err = run_jaggy(
        capsys,
        "audit",
        "py:tinynets:tiny",
        images,
        "--protocol",
        "crop",
        "--steps",
        "2",
        "--batch-size",
        str(10**9),
        "--out",
        tmp_path / "out",
        "--no-progress",
    )
    refused(code, err, "crop with --batch-size 1,000,000,000 needs about")
    assert "(batches of 1,000,000,000 views), but this machine has" in err
    assert err.strip().endswith("available; use a smaller --batch-size")
    assert not (tmp_path / "out").exists()
