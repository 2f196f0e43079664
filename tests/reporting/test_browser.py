"""The report as a reader sees it: rendered by headless Chromium, every plot drawn, no script errors, a real screenshot.

Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it);
without a browser binary the test skips with the reason.
"""

from __future__ import annotations

import html.parser
import io
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from reporting import build_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
WINDOW = (1200, 6000)
TIMEOUT_S = 90  # a browser that hangs fails the test instead of holding the run
# plotly's default trace colours: a drawn plot puts them on the screen.
TRACE_RGB = ((99, 110, 250), (239, 85, 59), (0, 204, 150))


def browser() -> str:
    for name in (os.environ.get("HWPROF_CHROMIUM"), *BROWSERS):
        if name and shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    pytest.skip(f"no Chromium binary found (looked for {', '.join(BROWSERS)}; Debian: apt-get install chromium)")


@dataclass(frozen=True)
class Rendered:
    dom: str
    stderr: str
    returncode: int


def headless(page: Path, *args: str) -> Rendered:
    """Chromium on ``page`` with ``--dump-dom`` (and ``args``) after the page's scripts ran; killed whole on a hang."""
    cmd = [
        browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=10000",
        f"--user-data-dir={page.parent / 'chromium-profile'}", "--dump-dom", *args, page.resolve().as_uri(),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher script and every browser process it started
        proc.communicate()
        pytest.fail(f"headless Chromium did not finish rendering {page.name} within {TIMEOUT_S} s")
    return Rendered(out, err, proc.returncode)


class PlotCheck(html.parser.HTMLParser):
    """Per plot container (``div.report-plot``): whether an ``svg.main-svg`` was drawn inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str | None]] = []  # (tag, plot id when the element is a plot container)
        self.drawn: dict[str, bool] = {}
        self.errors_text = ""
        self.errors_count: str | None = None
        self.rendered: str | None = None
        self.boxes: list[list] = []  # [id, x, y, width, height] of each plot on the page
        self._in_errors = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.rendered = a.get("data-plots-rendered")
            self.boxes = json.loads(a.get("data-plot-boxes") or "[]")
        if tag == "pre" and a.get("id") == "report-console-errors":
            self.errors_count, self._in_errors = a.get("data-count"), True
        plot = a.get("id") if tag == "div" and "report-plot" in classes else None
        if plot is not None:
            self.drawn[plot] = False
        if tag == "svg" and "main-svg" in classes:
            for _, owner in self.stack:
                if owner is not None:
                    self.drawn[owner] = True
        if tag not in ("br", "img", "input", "meta", "link", "hr", "path", "rect", "line", "circle", "stop", "use"):
            self.stack.append((tag, plot))

    def handle_endtag(self, tag):
        if tag == "pre":
            self._in_errors = False
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if self._in_errors:
            self.errors_text += data


@pytest.fixture(scope="module")
def rendered(tiny_inputs, tmp_path_factory) -> tuple[Rendered, Path]:
    """One browser run (starting Chromium is the slow part): the DOM after the scripts ran, and a screenshot."""
    browser()
    root = tmp_path_factory.mktemp("report")
    page = build_report([tiny_inputs["store"], tiny_inputs["predictor"], tiny_inputs["search"]], root / "report.html",
                        title="browser test")  # fmt: skip
    shot = root / "report.png"
    return headless(page, f"--screenshot={shot}"), shot


def test_every_plot_renders_without_console_errors(rendered):
    result, _ = rendered
    assert result.returncode == 0, result.stderr[-2000:]
    check = PlotCheck()
    check.feed(result.dom)
    # store: latency distribution; predictor: predicted vs measured; search: the Pareto front
    assert len(check.drawn) == 3, check.drawn
    assert all(check.drawn.values()), f"plots without a drawn svg: {[k for k, v in check.drawn.items() if not v]}"
    assert check.rendered == "3", "the drawing script did not finish every plot"
    assert check.errors_count == "0" and not check.errors_text.strip(), check.errors_text
    assert "Uncaught" not in result.stderr, result.stderr[-2000:]


@pytest.mark.slow  # a second browser start; the check it guards runs in the default suite
def test_the_collector_reports_script_errors_and_unrendered_plots(tmp_path):
    """The checks above can fail: a thrown error reaches the collector, and a plot that never drew is seen as such."""
    from reporting.page import render

    broken = tmp_path / "broken.html"
    text = render("broken", []).replace("</body>", '<div id="p" class="report-plot"></div><script>undefinedFunction();</script></body>')
    broken.write_text(text, encoding="utf-8")
    check = PlotCheck()
    check.feed(headless(broken).dom)
    assert check.errors_count == "1" and "undefinedFunction" in check.errors_text
    assert check.drawn == {"p": False}


def test_screenshot_shows_every_plot(rendered):
    """Each plot's own region of the screenshot holds a drawing: many colours, and plotly's trace colours."""
    from PIL import Image

    result, shot = rendered
    assert shot.is_file(), result.stderr[-2000:]
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert image.size == WINDOW
    check = PlotCheck()
    check.feed(result.dom)
    assert len(check.boxes) == 3
    for plot_id, x, y, w, h in check.boxes:
        assert w > 300 and h > 300 and y + h <= WINDOW[1], f"{plot_id} at {(x, y, w, h)} is not inside the screenshot"
        colours = image.crop((x, y, x + w, y + h)).getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50, f"{plot_id}'s region of the screenshot is (nearly) blank"
        present = {rgb for _, rgb in colours}
        assert any(c in present for c in TRACE_RGB), f"no plotly trace colour in {plot_id}'s region: it did not draw"
