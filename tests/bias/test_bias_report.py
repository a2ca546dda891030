"""The report's bias section: heat map, size histogram and the invariance charts from a
`jaggy bias` folder, with every data string escaped."""

from __future__ import annotations

from bias_files import CLASSES, Box, write_coco
from test_bias_invariance import P_CHANGE, SIZES, _boxes, write_run

from jaggy.bias import run_bias
from jaggy.report import write_report


def test_bias_section_shows_figures_and_the_invariance(tmp_path):
    annotations = write_coco(tmp_path / "i.json", _boxes(), sizes=SIZES)
    run = write_run(tmp_path / "run", [(n, "crop", p, p / 2) for n, p in P_CHANGE.items()])
    out = tmp_path / "bias"
    run_bias(annotations, out, audit=run, model="py:tinynets:tiny", figures=False)
    html = write_report([out], tmp_path / "report.html").read_text()
    assert 'id="bias"' in html
    assert "box centres (image)" in html and "object size (image)" in html
    assert "box centres (model input, 32 px)" in html
    assert "metrics by object size" in html and "metrics by distance from the image centre" in html
    assert "dataset&#39;s distribution" in html or "dataset's distribution" in html
    assert html.count("<svg") >= 5


def test_bias_section_escapes_class_and_file_names(tmp_path):
    sizes = {"<b>x</b>.png": (100, 80)}
    path = tmp_path / "<script>ann.json"
    write_coco(path, [Box("<b>x</b>.png", CLASSES[0], 10, 10, 50, 50)], sizes=sizes)
    out = tmp_path / "bias"
    run_bias(path, out, figures=False)
    html = write_report([out], tmp_path / "report.html").read_text()
    assert "<script>ann" not in html and "&lt;script&gt;ann.json" in html
