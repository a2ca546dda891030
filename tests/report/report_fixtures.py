"""Helpers for the report tests: a tiny random CNN (`py:report_fixtures:tiny_model`), small
synthetic runs, and headless Chromium driven without network or extra packages."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # so `py:report_fixtures:...` resolves

XSS_NAME = "<img src=x onerror=alert(1)>.png"


class TinyNet(nn.Module):
    """Conv(stride 2) -> ReLU -> Conv(stride 2) -> global mean -> linear; 32 px input."""

    def __init__(self, num_classes: int = 10, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(16, num_classes)
        self.jaggy_preprocessing = {
            "input_size": 32,
            "crop_pct": 0.875,
            "interpolation": "bilinear",
            "mean": (0.5, 0.5, 0.5),
            "std": (0.25, 0.25, 0.25),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def tiny_model() -> nn.Module:
    return TinyNet(seed=0)


def tiny_model_b() -> nn.Module:
    return TinyNet(seed=1)


def write_images(folder: Path, n: int, side: int = 40, seed: int = 0, names=None) -> list[Path]:
    """n smooth random RGB PNGs (a few coloured blobs each)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    paths = []
    for i in range(n):
        image = np.zeros((side, side, 3))
        for _ in range(4):
            cx, cy = rng.uniform(0, side, 2)
            r = rng.uniform(3, side / 3)
            image += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[
                ..., None
            ] * rng.uniform(0, 1, 3)
        image = (np.clip(image / image.max(), 0, 1) * 255).astype(np.uint8)
        name = names[i] if names and i < len(names) else f"img{i:03d}.png"
        path = folder / name
        Image.fromarray(image).save(path, format="PNG")
        paths.append(path)
    return paths


def make_run(
    out: Path,
    data: Path,
    protocols: list[str],
    *,
    model: str = "py:report_fixtures:tiny_model",
    sizes=(24,),
    steps: int = 4,
    path: str = "diagonal",
) -> Path:
    """A real audit run of the tiny model (single process, no decoding workers)."""
    from jaggy.engine import AuditConfig, run_audit

    config = AuditConfig(
        model=model,
        data=str(data),
        protocols=list(protocols),
        sizes=list(sizes),
        steps=steps,
        path=path,
        out=str(out),
        workers=0,
        batch_size=16,
    )
    run_audit(config, progress=False)
    return out


# --- headless Chromium -------------------------------------------------------------------

_PROBE = """<script>
(function () {
  window.__errors = []; window.__alerts = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    window.__errors.push(t && t !== window && t.tagName ? 'resource failed: ' + t.tagName
                         : String(e.message));
  }, true);
  window.alert = function (m) { window.__alerts.push(String(m)); };
  var original = console.error;
  console.error = function () {
    window.__errors.push(Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
  function decodes(href) {
    return new Promise(function (resolve) {
      var im = new Image();
      im.onload = function () { resolve(im.naturalWidth); };
      im.onerror = function () { resolve(0); };
      im.src = href;
    });
  }
  window.addEventListener('load', function () {
    var svgImages = Array.prototype.slice.call(document.querySelectorAll('svg image'));
    Promise.all(svgImages.map(function (e) { return decodes(e.getAttribute('href')); }))
      .then(function (svgWidths) {
        var all = function (sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); };
        var result = {
          images: all('img').map(function (i) {
            return {w: i.naturalWidth, h: i.naturalHeight, complete: i.complete, alt: i.alt};
          }),
          svg_images: svgWidths,
          svgs: all('svg').length,
          sections: all('section[data-section]').map(function (s) { return s.id; }),
          curves: all('#curves section[data-protocol]').map(function (s) { return s.dataset.protocol; }),
          walls: all('#wall section[data-protocol]').map(function (s) { return s.dataset.protocol; }),
          with_onerror: all('[onerror]').length,
          img_src_x: all('img[src="x"]').length,
          scripts: all('script').length,
          text: document.body.textContent,
          wins: all('#comparison .win').length,
          errors: window.__errors,
          alerts: window.__alerts
        };
        var pre = document.createElement('pre');
        pre.id = 'jaggy-probe';
        pre.textContent = JSON.stringify(result);
        document.body.appendChild(pre);
      });
  });
})();
</script>"""


def chromium() -> str:
    """The Chromium binary, or skip the test with the reason."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "headless Chromium is not installed (apt-get install chromium); "
        ".ci/run installs it for the browser tests"
    )
    raise AssertionError  # unreachable


def _chromium(args: list[str], profile: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--mute-audio",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


CONSOLE_LINE = re.compile(r"CONSOLE\(\d+\)|Uncaught|:CONSOLE", re.IGNORECASE)


def console_messages(stderr: str) -> list[str]:
    """Lines of Chromium's log that report page console output or uncaught errors."""
    return [line for line in stderr.splitlines() if CONSOLE_LINE.search(line)]


def probe_page(html: Path, work: Path) -> dict:
    """Load a copy of `html` with a probe script and return what it found (see _PROBE), plus
    the console lines Chromium logged."""
    work.mkdir(parents=True, exist_ok=True)
    text = html.read_text(encoding="utf-8")
    probed = work / "probed.html"
    probed.write_text(text.replace("<head>", "<head>" + _PROBE, 1), encoding="utf-8")
    done = _chromium(
        ["--virtual-time-budget=15000", "--dump-dom", probed.as_uri()], work / "profile-probe"
    )
    match = re.search(r'<pre id="jaggy-probe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"the probe did not report; chromium stderr:\n{done.stderr[-3000:]}"
    import html as html_module

    result = json.loads(html_module.unescape(match.group(1)))
    result["console"] = console_messages(done.stderr)
    return result


def load_original(html: Path, work: Path) -> tuple[str, list[str]]:
    """The DOM of the unmodified page after load, and the console lines Chromium logged."""
    done = _chromium(
        ["--virtual-time-budget=10000", "--dump-dom", html.as_uri()], work / "profile-orig"
    )
    return done.stdout, console_messages(done.stderr)


def screenshot(html: Path, png: Path, work: Path, size=(1280, 2400)) -> Path:
    done = _chromium(
        [f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", html.as_uri()],
        work / "profile-shot",
    )
    assert png.is_file(), f"no screenshot; chromium stderr:\n{done.stderr[-3000:]}"
    return png
