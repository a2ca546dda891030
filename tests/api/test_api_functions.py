"""`jaggy.audit`, `jaggy.layers`, `jaggy.compare`, `jaggy.report`: typed results, the same
numbers as the CLI, models given as specs, LoadedModels or modules, data as lists of paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import jaggy
from jaggy.cli import main
from jaggy.errors import ArgumentError
from tinynets import TinyCNN

FAST = dict(steps=4, sizes=[20], batch_size=8, workers=0, progress=False)


def test_audit_returns_the_summary_it_wrote(image_folder, tmp_path):
    result = jaggy.audit(
        "py:tinynets:tiny", image_folder, protocols="crop", out=tmp_path / "r", **FAST
    )
    assert isinstance(result, jaggy.AuditResult)
    assert result.out == tmp_path / "r"
    assert result.summary.to_dict() == json.loads(result.summary_path.read_text())
    written = json.loads(result.manifest_path.read_text())
    assert json.loads(json.dumps(result.manifest.to_dict(), default=str)) == written
    assert pq.read_table(result.predictions).num_rows == 6 * 4
    assert list(result.summary.protocols) == ["crop"]
    assert result.manifest.config["data"] == str(image_folder)


def test_audit_and_the_cli_write_the_same_numbers(image_folder, tmp_path):
    api = jaggy.audit(
        "py:tinynets:tiny", image_folder, protocols=["crop", "black"], out=tmp_path / "api", **FAST
    )
    cli = tmp_path / "cli"
    args = ["audit", "py:tinynets:tiny", str(image_folder), "--protocol", "crop"]
    args += ["--protocol", "black", "--steps", "4", "--size", "20", "--batch-size", "8"]
    assert main([*args, "--workers", "0", "--no-progress", "--out", str(cli)]) == 0
    assert (cli / "summary.json").read_text() == api.summary_path.read_text()
    assert pq.read_table(cli / "predictions.parquet").equals(pq.read_table(api.predictions))


def test_a_module_or_a_loaded_model_is_audited_as_it_is(image_folder, tmp_path):
    by_spec = jaggy.audit(
        "py:tinynets:tiny", image_folder, protocols="crop", out=tmp_path / "s", **FAST
    )
    module = TinyCNN()
    by_module = jaggy.audit(module, image_folder, protocols="crop", out=tmp_path / "m", **FAST)
    assert by_module.manifest.model_spec == "module:tinynets.TinyCNN"
    loaded = jaggy.load_model("py:tinynets:tiny")
    by_loaded = jaggy.audit(loaded, image_folder, protocols="crop", out=tmp_path / "l", **FAST)
    for other in (by_module, by_loaded):
        assert pq.read_table(other.predictions).equals(pq.read_table(by_spec.predictions))
    with pytest.raises(ArgumentError, match="apply to a model spec"):
        jaggy.audit(module, image_folder, remedies=["blurpool"], out=tmp_path / "x", **FAST)
    assert not (tmp_path / "x").exists()


def test_a_list_of_image_paths(image_folder, tmp_path):
    paths = sorted(image_folder.glob("*.png"))[:3]
    result = jaggy.audit("py:tinynets:tiny", paths, protocols="crop", out=tmp_path / "r", **FAST)
    ids = pq.read_table(result.predictions).column("image_id").unique().to_pylist()
    assert ids == [p.resolve().as_posix() for p in paths]
    # the report finds the images again (one strip of views per image shown)
    html = jaggy.report(result, tmp_path / "r.html").path.read_text()
    assert html.count("data:image/jpeg") >= 3
    with pytest.raises(ArgumentError, match="non-empty list"):
        jaggy.audit("py:tinynets:tiny", [], protocols="crop", out=tmp_path / "e", **FAST)


def test_bad_options_fail_before_any_work(image_folder, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ArgumentError, match="unknown option.*wobble"):
        jaggy.audit("py:tinynets:tiny", image_folder, out=out, wobble=3)
    with pytest.raises(ArgumentError, match="steps"):
        jaggy.audit("py:tinynets:tiny", image_folder, out=out, steps=1)
    with pytest.raises(ArgumentError, match="no images"):
        jaggy.audit("py:tinynets:tiny", out=out)
    with pytest.raises(ArgumentError, match="data"):
        jaggy.audit("py:tinynets:tiny", 3, out=out)
    assert not out.exists()


def test_layers_returns_what_it_wrote(image_folder, tmp_path):
    result = jaggy.layers(
        TinyCNN(),
        image_folder,
        images=2,
        shifts=3,
        out=tmp_path / "l",
        figures=False,
        progress=False,
    )
    assert isinstance(result, jaggy.LayersResult)
    assert {p.name for p in result.files} == {"layers.json", "layers.parquet"}
    written = json.loads(result.layers_json.read_text())
    assert written == json.loads(json.dumps(result.summary))
    assert written["total_stride"] == 4 and written["n_images"] == 2
    assert any("total stride 4" in line for line in result.lines())
    with pytest.raises(ArgumentError, match="shifts"):
        jaggy.layers("py:tinynets:tiny", image_folder, shifts=0, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_compare_and_report(image_folder, tmp_path):
    result = jaggy.compare(
        "py:tinynets:tiny",
        image_folder,
        variants=["blurpool:2", ["aps", "circular"]],
        protocols="crop",
        out=tmp_path / "c",
        images=2,
        **FAST,
    )
    assert isinstance(result, jaggy.CompareResult)
    assert [row["variant"] for row in result.rows] == ["base", "blurpool:2", "aps+circular"]
    assert json.loads(result.compare_json.read_text())["variants"] == json.loads(
        json.dumps(result.rows)
    )
    assert (result.run("aps+circular") / "summary.json").is_file()
    report = jaggy.report([result.run("base"), result.out], tmp_path / "report.html")
    assert isinstance(report, jaggy.ReportResult)
    assert report.path.is_file() and report.runs == (result.run("base"), result.out)
    with pytest.raises(ArgumentError, match="at least one variant"):
        jaggy.compare("py:tinynets:tiny", image_folder, variants=[], out=tmp_path / "x")


def test_check_on_an_audit_result(image_folder, tmp_path):
    result = jaggy.audit(
        "py:tinynets:tiny", image_folder, protocols="crop", out=tmp_path / "r", **FAST
    )
    change = result.summary.protocols["crop"].value("p_top1_change")
    assert jaggy.check(result, f"crop:p_top1_change<={change}").passed
    assert not jaggy.check(result.out, f"crop:p_top1_change<{change}").passed


def test_functions_and_subpackages_share_their_names():
    """`jaggy.report(...)` is the function; `from jaggy.report import ...` is the subpackage,
    whatever is imported first, in a fresh interpreter."""
    code = """
import importlib, pkgutil, types
from jaggy.report import write_report
from jaggy.layers import stride_map
import jaggy.compare  # noqa: shadowed, on purpose: the function keeps its name
import jaggy
for name in ("report", "layers", "compare"):
    assert isinstance(getattr(jaggy, name), types.FunctionType), name
    assert isinstance(importlib.import_module("jaggy." + name), types.ModuleType), name
for info in pkgutil.walk_packages(jaggy.__path__, "jaggy."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
assert jaggy.report is jaggy._api.report and jaggy.layers is jaggy._api.layers
assert write_report is importlib.import_module("jaggy.report").write_report
print("ok")
"""
    src = str(Path(jaggy.__file__).parents[1])
    tests = str(Path(__file__).parents[1])
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{src}:{tests}", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_no_source_imports_a_shadowed_subpackage_by_attribute():
    """`import jaggy.report.sections as s` and `jaggy.layers.stride_map` go through the
    attribute `jaggy.report` / `jaggy.layers`, which is the function: use `from ... import`."""
    import re

    root = Path(__file__).parents[2]
    pattern = re.compile(
        r"^\s*import jaggy\.(layers|compare|report)\b|[^.\w]jaggy\.(layers|compare|report)\.\w+\("
    )
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("src", "tests", "benchmarks")
        for path in (root / folder).rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line) and "noqa: shadowed" not in line
    ]
    assert not offenders, f"use `from jaggy.<package> import name` in: {', '.join(offenders)}"
