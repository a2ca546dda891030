"""Every ```python block of README.md runs as written (in a temporary folder), and the names it
uses exist. Blocks that load the embedded model are marked slow."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README.read_text(), flags=re.S | re.M)


def block_id(code: str) -> str:
    first = next(
        line for line in code.splitlines() if line and not line.startswith(("import", "from"))
    )
    return re.sub(r"\W+", "_", first)[:40].strip("_")


def params():
    for code in BLOCKS:
        marks = [pytest.mark.slow] if "jaggy:efficientnet_lite0" in code else []
        yield pytest.param(code, marks=marks, id=block_id(code))


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 3
    assert any("jaggy.audit(" in code and "jaggy.check(" in code for code in BLOCKS)


@pytest.mark.parametrize("code", [pytest.param(c, id=block_id(c)) for c in BLOCKS])
def test_every_name_an_example_uses_exists(code):
    """Fast: the imports resolve and every `jaggy.NAME` an example uses is public."""
    import jaggy

    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("jaggy"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "jaggy"
        ):
            assert node.attr in jaggy.__all__, f"jaggy.{node.attr} is not public"


@pytest.mark.parametrize("code", list(params()))
def test_every_example_runs(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    # what the comments of the examples say they print
    if "gate" in namespace:
        assert namespace["gate"].passed is False and "FAIL" in printed
        assert namespace["layers"].summary["total_stride"] == 32
        assert (tmp_path / "report.html").is_file()
    if "loaded" in namespace:
        assert namespace["loaded"].remedies == ["blurpool:4:reflect"]
    if "half" in namespace:
        assert "total stride" in printed or "32" in printed
