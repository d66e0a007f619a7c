"""Render an HTML page in headless Chromium (Debian `chromium`) and read what a user would see.

Two probes are added to a copy of the page: one first in <head> that records every console error, uncaught
exception and failed resource load (capture phase: resource errors do not bubble), and one last in <body> that
writes the `innerText` of the asked elements — the text as rendered, so hidden or folded content is not
counted as seen — and the errors into a <pre>. `--dump-dom` returns the DOM after load, probe included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

_HEAD_PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target && e.target !== window ? (e.target.src || e.target.href || e.target.tagName) : '';
  window.__errors.push(t ? 'failed to load ' + t : String(e.message));
}, true);
(function () {
  var original = console.error;
  console.error = function () {
    window.__errors.push(Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
</script>"""

_BODY_PROBE = """<script>
window.addEventListener('load', function () {  // after images and other resources: their errors count
  var pre = document.createElement('pre');
  pre.id = '__probe';
  document.body.appendChild(pre);
  try { probe(pre); } catch (e) { pre.textContent = JSON.stringify({probe_error: String(e)}); }
});
function probe(pre) {
  var asked = %s, seen = {};
  Object.keys(asked).forEach(function (k) {
    seen[k] = Array.prototype.map.call(document.querySelectorAll(asked[k]), function (el) {
      // SVG elements have no innerText: their rendered text is their text content.
      return (el.innerText !== undefined ? el.innerText : el.textContent).trim();
    });
  });
  var ids = {}; Array.prototype.forEach.call(document.querySelectorAll('[id]'), function (el) { ids[el.id] = 1; });
  var broken = Array.prototype.filter.call(document.querySelectorAll('a[href^="#"]'), function (a) {
    return !ids[a.getAttribute('href').slice(1)];
  }).map(function (a) { return a.getAttribute('href'); });
  pre.textContent = JSON.stringify({text: seen, errors: window.__errors, broken_links: broken});
}
</script>"""


@dataclass
class Rendered:
    text: dict[str, list[str]]  # selector name -> innerText of each match
    errors: list[str]  # console errors, exceptions, failed loads
    broken_links: list[str]  # in-page links whose target id does not exist


def render(html: str, selectors: dict[str, str], workdir: Path, screenshot: Path | None = None) -> Rendered:
    """Load `html` in headless Chromium; the visible text of each selector, the console errors, broken links."""
    assert BROWSER, "chromium is not installed"
    probed = html.replace("<head>", "<head>" + _HEAD_PROBE, 1).replace(
        "</body>", _BODY_PROBE % json.dumps(selectors) + "</body>", 1
    )
    page = workdir / "page.html"
    page.write_text(probed, encoding="utf-8")
    base = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={workdir / 'profile'}",
    ]
    dom = subprocess.run(
        [*base, "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    start = dom.index('<pre id="__probe">') + len('<pre id="__probe">')
    data = json.loads(_unescape(dom[start : dom.index("</pre>", start)]))
    assert "probe_error" not in data, data
    if screenshot is not None:  # the page as it is, for a person to look at
        shot = workdir / "shot.html"
        shot.write_text(html, encoding="utf-8")
        subprocess.run(
            [*base, "--window-size=1280,3000", f"--screenshot={screenshot}", shot.as_uri()],
            capture_output=True,
            timeout=120,
            check=True,
        )
    return Rendered(data["text"], data["errors"], data["broken_links"])


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)
