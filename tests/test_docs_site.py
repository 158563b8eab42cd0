"""The documentation site, as a reader's browser shows it.

Builds the site with ``mkdocs build --strict`` (or, with ``APTT_SITE_DIR`` set, takes the build that
is about to be deployed: the Pages workflow sets it, together with the ``SITE_URL`` it was built
with), serves it on 127.0.0.1 under the path of ``SITE_URL`` (as GitHub Pages serves a project site,
with ``404.html`` for a missing path), and opens **every page at 390 px and at 1280 px** in headless
Chromium (Playwright, with Debian's ``chromium`` as ``executable_path``). It fails on

* a page that scrolls sideways, or a display formula or code block cut off at the edge without a
  scroll box of its own;
* a table-of-contents link whose target does not exist on the page;
* a request to any host other than the site's own (fonts, CDNs, APIs);
* an image without alt text, or with nbconvert's "No description has been provided" text;
* a heading of a rendered notebook that is not a heading of its source notebook (a wrapped line read
  as a heading, a heading printed by a cell);
* a page of one language in the other language's search results;
* MathJax errors, raw notebook JSON, broken internal links, a 404 page without a way home.

Screenshots of a few pages at both widths go to ``artifacts/screenshots/`` for a person to look at;
the first-visit weight of notebook 01 (English) is printed (``-s``) and kept under a budget.

Chromium is Debian's ``chromium`` (or ``APTT_CHROMIUM=/path/to/chrome``). Without it, or without the
``playwright`` package, the test is skipped, unless ``APTT_REQUIRE_BROWSER=1`` is set (by ``make``
after it installed Chromium, and by the Pages workflow): then it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import html as html_lib
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
LANGS = ("en", "de")
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}
BUILD_TIMEOUT_S = 300
PAGE_TIMEOUT_MS = 30_000
PARALLEL_PAGES = 4  # tabs open at once in the one browser
REPO_URL = "https://github.com/example-owner/aptt-edu"  # for the local build; CI passes its own
# Bytes of notebook 01 (en) on a first visit with an empty cache: 3.10 MB at the time of writing, of
# which MathJax's tex-mml-chtml.js with its menu and speech rule engine is about 2 MB (the lighter
# tex-chtml component drew no glyphs), the notebook stylesheet 0.58 MB and the page itself 0.46 MB
# (its plots inline, four exercises, a knob). The budget catches a page that starts loading
# something big (a web font, a second MathJax), not a paragraph or a plot more.
FIRST_VISIT_BUDGET = 3_250_000
SHOTS = (
    "",
    "de/",
    "notebooks/01_cross_entropy_and_label_smoothing/",
    "de/notebooks/03_multi_token_prediction/",
    "concepts/cross-entropy-and-label-smoothing/",
)


def _chromium() -> str | None:
    if path := os.environ.get("APTT_CHROMIUM"):
        return path
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


def _browser_required() -> bool:
    return os.environ.get("APTT_REQUIRE_BROWSER", "") not in ("", "0")


CHROMIUM = _chromium()
try:
    from playwright.async_api import async_playwright
except ImportError:  # pragma: no cover - depends on the environment
    async_playwright = None  # type: ignore[assignment]
if (CHROMIUM is None or async_playwright is None) and not _browser_required():
    pytest.skip(
        "headless Chromium or playwright not found (apt-get install chromium; pip install "
        "playwright); set APTT_REQUIRE_BROWSER=1 to make this a failure instead of a skip",
        allow_module_level=True,
    )


# ------------------------------------------------------------------------------------------------
# Build and serve


@dataclass
class Site:
    root: Path  # the built site
    url: str  # where it is served, ending in "/" (with SITE_URL's path)
    repo_url: str | None
    pages: list[str] = field(default_factory=list)  # page paths relative to the site, "" = home


def _handler(site_dir: Path, prefix: str) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        """Serves ``site_dir`` under ``prefix`` and, like GitHub Pages, 404.html for a missing path."""

        def translate_path(self, path: str) -> str:
            path = urlsplit(path).path
            if not path.startswith(prefix):
                return str(site_dir / "__missing__")
            return str(site_dir / unquote(path[len(prefix) :]).lstrip("/"))

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            page = site_dir / "404.html"
            if code != 404 or not page.is_file():
                super().send_error(code, message, explain)
                return
            body = page.read_bytes()
            self.send_response(404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a tab closed mid-transfer
            super().handle_error(request, client_address)


def _page_paths(site_dir: Path) -> list[str]:
    out = []
    for index in sorted(site_dir.rglob("index.html")):
        rel = index.parent.relative_to(site_dir).as_posix()
        if rel.startswith("assets/") or 'http-equiv="refresh"' in index.read_text(encoding="utf-8"):
            continue  # theme assets; the redirect pages of moved addresses
        out.append("" if rel == "." else rel + "/")
    return out


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with tempfile.TemporaryDirectory(prefix="aptt-docs-") as tmp:
        site_url = os.environ.get("SITE_URL") or ""
        repo_url = os.environ.get("SITE_REPO_URL") or None
        if prebuilt := os.environ.get("APTT_SITE_DIR"):
            site_dir = Path(prebuilt).resolve()
            assert (site_dir / "index.html").is_file(), f"APTT_SITE_DIR={prebuilt}: no index.html"
        else:
            repo_url = repo_url or REPO_URL
            env = dict(os.environ, NO_MKDOCS_2_WARNING="1", SITE_REPO_URL=repo_url)
            site_dir = Path(tmp) / "site"
            build = subprocess.run(
                [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
            )
            log = build.stdout + build.stderr
            assert build.returncode == 0, f"mkdocs build --strict failed:\n{log[-5000:]}"
            warnings = [line for line in log.splitlines() if line.startswith("WARNING")]
            assert not warnings, "\n".join(warnings)

        prefix = urlsplit(site_url).path.rstrip("/") + "/"  # "/aptt-edu/" on a project site
        server = _Server(("127.0.0.1", 0), _handler(site_dir, prefix))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Site(
                root=site_dir,
                url=f"http://127.0.0.1:{server.server_port}{prefix}",
                repo_url=repo_url,
                pages=_page_paths(site_dir),
            )
        finally:
            server.shutdown()
            server.server_close()


# ------------------------------------------------------------------------------------------------
# The browser: every page at both widths, in one Chromium, a few tabs at a time

# Runs in the page once MathJax has typeset: what a reader would see as broken.
_PROBE = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const vw = document.documentElement.clientWidth;
  const problems = [];
  const label = (el) => (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 60);
  if (document.documentElement.scrollWidth > vw + 1)
    problems.push(`page scrolls sideways: ${document.documentElement.scrollWidth} px > ${vw} px`);
  const scrolls = (el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const boxes = document.querySelectorAll(
    'mjx-container[display="true"], div.arithmatex, .md-typeset pre, .jupyter-wrapper pre');
  for (const el of boxes) {
    if (el.closest("[hidden], details:not([open])") || !el.getClientRects().length) continue;
    const r = el.getBoundingClientRect();
    let box = el, ok = false;
    for (let k = 0; k < 4 && box; k++, box = box.parentElement) {
      const b = box.getBoundingClientRect();
      if (b.right > vw + 1) break;  // this box itself sticks out of the page
      if (box.scrollWidth <= box.clientWidth + 1 && (box !== el || r.right <= vw + 1)) {
        if (box === el) { ok = true; break; }
      }
      if (scrolls(box) && b.right <= vw + 1) { ok = true; break; }
    }
    if (!ok) problems.push(`cut off (${el.tagName.toLowerCase()}): ${label(el)}`);
  }
  for (const a of document.querySelectorAll('.md-sidebar--secondary a.md-nav__link[href^="#"]')) {
    const id = decodeURIComponent(a.getAttribute("href").slice(1));
    if (!document.getElementById(id)) problems.push(`TOC link to a missing target: #${id}`);
  }
  for (const img of document.querySelectorAll("article img, .md-content img")) {
    const alt = (img.getAttribute("alt") || "").trim();
    if (!alt) problems.push(`image without alt text: ${img.src.slice(0, 60)}`);
    else if (/no description/i.test(alt)) problems.push(`image with the generic alt "${alt}"`);
  }
  if (document.querySelector("mjx-merror")) problems.push("MathJax reports a TeX error");
  for (const tag of document.querySelectorAll(".celltoolbar, .cell-tag"))
    if (tag.getClientRects().length) problems.push(`cell tag shown: ${label(tag)}`);
  const glyph = document.querySelector("mjx-c");  // CHTML draws each character with a CSS rule
  if (glyph && !glyph.textContent && getComputedStyle(glyph, "::before").content === "none")
    problems.push("MathJax drew no glyphs: the formulas are invisible");
  return {
    problems,
    lang: document.documentElement.lang,
    math: document.querySelectorAll("mjx-container").length,
    h1: document.querySelectorAll("article h1").length,
    switcher: [...document.querySelectorAll("a.md-select__link")].map(
      (a) => [a.getAttribute("hreflang"), a.href]),
    source: (document.querySelector("a.md-source") || {}).href || null,
    edit: (document.querySelector("a.md-content__button[href*='/edit/']") || {}).href || null,
    cells: document.querySelectorAll(".jp-Cell").length,
    folds: document.querySelectorAll("details.nb-input > summary").length,
    plots: document.querySelectorAll(".jp-OutputArea-output img").length,
    rawJson: document.body.innerText.includes('"cell_type"'),
  };
}"""


@dataclass
class Visit:
    path: str
    width: str
    result: dict[str, Any]
    foreign: list[str]  # requests to another host
    failed: list[str]  # requests that failed or returned >= 400
    bytes: int  # transferred bytes of the page and everything it loaded
    heaviest: list[tuple[int, str]] = field(default_factory=list)  # (bytes, url), largest first


WEIGHED = ("notebooks/01_cross_entropy_and_label_smoothing/", "desktop")  # bytes are summed here


async def _visit(browser: Any, site: Site, path: str, width: str, shot: bool) -> Visit:
    w, h = WIDTHS[width]
    context = await browser.new_context(
        viewport={"width": w, "height": h}, is_mobile=width == "phone", has_touch=width == "phone"
    )
    page = await context.new_page()
    origin = site.url.split("/", 3)[:3]
    origin_str = "/".join(origin) + "/"
    foreign: list[str] = []
    failed: list[str] = []
    sizes: list[tuple[int, str]] = []

    def on_request(req: Any) -> None:
        if not req.url.startswith((origin_str, "data:", "blob:", "about:")):
            foreign.append(req.url)

    async def on_response(resp: Any) -> None:
        if resp.status >= 400 and not resp.url.endswith("sitemap.xml"):
            failed.append(f"{resp.status} {resp.url}")
        if (path, width) == WEIGHED:
            with contextlib.suppress(Exception):  # a redirect or an aborted request has no body
                sizes.append((len(await resp.body()), resp.url))

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfailed", lambda req: failed.append(f"failed {req.url}"))
    try:
        await page.goto(site.url + path, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        result = await page.evaluate(_PROBE)
        if shot:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = (path.strip("/").replace("/", "__") or "home") + f"__{width}.png"
            await page.screenshot(path=str(SCREENSHOTS / name), full_page=False)
        if (path, width) == WEIGHED:  # everything the first visit loads, search index included
            await page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT_MS)
    finally:
        await context.close()
    heaviest = sorted(sizes, reverse=True)[:6]
    return Visit(path, width, result, foreign, failed, sum(n for n, _ in sizes), heaviest)


async def _visit_all(site: Site) -> list[Visit]:
    assert async_playwright is not None and CHROMIUM is not None, (
        "Chromium or playwright not found, but APTT_REQUIRE_BROWSER is set"
    )
    gate = asyncio.Semaphore(PARALLEL_PAGES)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )

        async def one(path: str, width: str) -> Visit:
            async with gate:
                return await _visit(browser, site, path, width, path in SHOTS)

        visits = await asyncio.gather(*(one(p, w) for p in site.pages for w in WIDTHS))
        await browser.close()
    return list(visits)


@pytest.fixture(scope="module")
def visits(site: Site) -> dict[tuple[str, str], Visit]:
    start = time.perf_counter()
    found = asyncio.run(_visit_all(site))
    print(f"\nbrowser: {len(found)} page visits in {time.perf_counter() - start:.1f} s")
    return {(v.path, v.width): v for v in found}


def _lang(path: str) -> str:
    return "de" if path.startswith("de/") else "en"


def test_every_page_at_both_widths(site: Site, visits: dict[tuple[str, str], Visit]) -> None:
    assert len(site.pages) >= 40, f"only {len(site.pages)} pages were built"
    problems = []
    for (path, width), v in sorted(visits.items()):
        where = f"/{path} at {WIDTHS[width][0]} px"
        problems += [f"{where}: {p}" for p in v.result["problems"]]
        problems += [f"{where}: request to another host: {u}" for u in v.foreign]
        problems += [f"{where}: {f}" for f in v.failed]
        if v.result["lang"] != _lang(path):
            problems.append(f"{where}: <html lang={v.result['lang']!r}>")
        if v.result["h1"] != 1:
            problems.append(f"{where}: {v.result['h1']} <h1> headings")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


@pytest.mark.parametrize(
    "path",
    [
        "",
        "de/",
        "notebooks/01_cross_entropy_and_label_smoothing/",
        "de/notebooks/01_cross_entropy_and_label_smoothing/",
    ],
)
def test_switcher_math_and_links(
    site: Site, visits: dict[tuple[str, str], Visit], path: str
) -> None:
    r = visits[(path, "desktop")].result
    assert r["math"] > 0, f"/{path}: no formula was typeset by MathJax"
    here = site.url + path
    other = path.removeprefix("de/") if path.startswith("de/") else f"de/{path}"
    expected = {_lang(path): here, _lang(other): site.url + other}
    assert dict(r["switcher"]) == expected, f"/{path}: language switcher {r['switcher']}"
    if site.repo_url:
        assert r["source"] and r["source"].rstrip("/") == site.repo_url.rstrip("/"), r["source"]
        assert r["edit"] and r["edit"].startswith(site.repo_url.rstrip("/") + "/edit/"), r["edit"]
        if "notebooks/" in path:
            name = path.rstrip("/").rsplit("/", 1)[-1]
            assert r["edit"].endswith(f"/notebooks/src/{name}.py"), r["edit"]


@pytest.mark.parametrize("lang", LANGS)
def test_notebook_pages_are_rendered(
    site: Site, visits: dict[tuple[str, str], Visit], lang: str
) -> None:
    prefix = "" if lang == "en" else "de/"
    names = sorted(p.stem for p in (ROOT / "notebooks" / lang).glob("*.ipynb"))
    assert names, f"no notebooks in notebooks/{lang}"
    for name in names:
        path = f"{prefix}notebooks/{name}/"
        assert (path, "desktop") in visits, f"{name}.ipynb has no {lang} page"
        r = visits[(path, "desktop")].result
        assert not r["rawJson"] and r["cells"] >= 2, f"/{path} is not a rendered notebook"
        assert r["folds"] >= 1, f"/{path}: code inputs cannot be folded"
        assert (site.root / path / f"{name}.ipynb").is_file(), f"/{path}: no .ipynb to download"
    assert any(visits[(f"{prefix}notebooks/{n}/", "desktop")].result["plots"] for n in names)


def _norm(text: str) -> str:
    """Heading text compared letter by letter: Markdown, TeX delimiters and the anchor's ¶ dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^0-9a-zäöüß]+", "", text.lower().replace("¶", ""))


class _Headings(HTMLParser):
    """The text of every h1-h6 inside the notebook (.jupyter-wrapper)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # nesting depth of open <div>s since .jupyter-wrapper, 0 = outside
        self.current: list[str] | None = None
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div":
            if self.depth:
                self.depth += 1
            elif "jupyter-wrapper" in (dict(attrs).get("class") or "").split():
                self.depth = 1
        elif self.depth and re.fullmatch(r"h[1-6]", tag):
            self.current = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self.depth:
            self.depth -= 1
        elif self.current is not None and re.fullmatch(r"h[1-6]", tag):
            self.found.append("".join(self.current))
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.current.append(data)


def test_notebook_headings_are_the_sources(site: Site) -> None:
    problems = []
    for lang in LANGS:
        prefix = "" if lang == "en" else "de/"
        for nb in sorted((ROOT / "notebooks" / lang).glob("*.ipynb")):
            cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
            source = set()
            for cell in cells:
                if cell["cell_type"] == "markdown":
                    text = "".join(cell["source"])
                    source |= {_norm(m) for m in re.findall(r"^#{1,6}[ \t]+(.+)$", text, re.M)}
            parser = _Headings()
            parser.feed(
                (site.root / prefix / "notebooks" / nb.stem / "index.html").read_text("utf-8")
            )
            assert parser.found, f"{lang}/{nb.name}: no headings on the page"
            problems += [
                f"{lang}/{nb.name}: heading {h.strip()[:70]!r} is not a heading of the notebook"
                for h in parser.found
                if _norm(h) not in source
            ]
    assert not problems, "\n".join(problems)


def test_search_keeps_to_its_language(site: Site) -> None:
    for lang in LANGS:
        index_file = site.root / ("" if lang == "en" else f"{lang}/") / "search/search_index.json"
        index = json.loads(index_file.read_text(encoding="utf-8"))
        assert index["config"]["lang"] == [lang], index["config"]["lang"]
        locations = [doc["location"] for doc in index["docs"]]
        assert any(loc.startswith("notebooks/") for loc in locations), (
            f"{lang}: no notebook indexed"
        )
        assert any(loc.startswith("concepts/") for loc in locations), f"{lang}: no concept indexed"
        assert not any(loc.startswith("de/") for loc in locations), f"{lang}: German page listed"
        code = [
            d["location"] for d in index["docs"] if "In [" in d["text"] or "Copied!" in d["text"]
        ]
        assert not code, f"{lang}: notebook code is indexed: {code[:3]}"

    async def search(path: str, query: str) -> list[str]:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(site.url + path)
            await page.click(".md-search__input", timeout=PAGE_TIMEOUT_MS)
            await page.keyboard.type(query)  # the theme searches on key events, not on fill()
            await page.wait_for_selector(".md-search-result__link", timeout=PAGE_TIMEOUT_MS)
            hrefs = await page.eval_on_selector_all(
                ".md-search-result__link", "els => els.map(a => a.href)"
            )
            await browser.close()
            return list(hrefs)

    for path, query in (("", "label smoothing"), ("de/", "Label Smoothing")):
        hrefs = asyncio.run(search(path, query))
        assert hrefs, f"/{path}: no search results for {query!r}"
        german = [h for h in hrefs if h.startswith(site.url + "de/")]
        wrong = german if path == "" else [h for h in hrefs if h not in german]
        assert not wrong, f"/{path}: search for {query!r} lists the other language: {wrong[:3]}"


def test_404_page_in_both_languages(site: Site) -> None:
    async def missing() -> dict[str, Any]:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await browser.new_page()
            resp = await page.goto(site.url + "notebooks/does-not-exist/")
            out = await page.evaluate("""() => ({
              lang: document.documentElement.lang,
              links: [...document.querySelectorAll("article a")].map(a => a.href),
              german: !!document.querySelector('article [lang="de"]'),
              switcher: [...document.querySelectorAll("a.md-select__link")].map(a => a.href),
              css: getComputedStyle(document.body).fontFamily,
            })""")
            out["status"] = resp.status if resp else None
            await browser.close()
            return out

    r = asyncio.run(missing())
    assert r["status"] == 404 and r["lang"] == "en", r
    assert site.url in r["links"] and site.url + "de/" in r["links"], f"no link home: {r['links']}"
    assert r["german"], "the 404 page has no German text"
    assert sorted(r["switcher"]) == sorted([site.url, site.url + "de/"]), r["switcher"]


def test_first_visit_weight(visits: dict[tuple[str, str], Visit]) -> None:
    v = visits[WEIGHED]
    heaviest = ", ".join(f"{url.rsplit('/', 1)[-1]} {n / 1e6:.2f} MB" for n, url in v.heaviest)
    print(
        f"\nfirst visit of /notebooks/01_cross_entropy_and_label_smoothing/: {v.bytes / 1e6:.2f} MB"
        f" (heaviest: {heaviest})"
    )
    assert v.bytes < FIRST_VISIT_BUDGET, f"first visit costs {v.bytes} bytes; heaviest: {heaviest}"


# ------------------------------------------------------------------------------------------------
# No broken internal links anywhere


class _Links(HTMLParser):
    ATTRS: ClassVar[dict[str, str]] = {
        "a": "href",
        "link": "href",
        "script": "src",
        "img": "src",
        "source": "src",
        "iframe": "src",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if (name := self.ATTRS.get(tag)) is not None:
            value = dict(attrs).get(name)
            if value:
                self.links.append(value)


def _target(site_root: Path, page: Path, link: str) -> Path | None:
    """The file ``link`` on ``page`` points to, or None for an external or in-page link."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not parts.path:
        return None  # http(s)://, mailto:, data:, javascript:, or "#anchor" on the same page
    page_url = "/" + page.relative_to(site_root).as_posix()
    path = (
        unquote(parts.path)
        if parts.path.startswith("/")
        else posixpath.join(posixpath.dirname(page_url), unquote(parts.path))
    )
    target = site_root / posixpath.normpath(path).lstrip("/")
    if path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target


def test_no_broken_internal_links(site: Site) -> None:
    broken: list[str] = []
    pages = sorted(site.root.rglob("*.html"))
    assert len(pages) >= 20, f"only {len(pages)} HTML pages were built"
    for page in pages:
        if page.relative_to(site.root).parts[:2] == ("assets", "vendor"):
            continue  # MathJax's own files
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            target = _target(site.root, page, link)
            if target is not None and not target.is_file():
                broken.append(f"{page.relative_to(site.root)}: {link}")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:30])


def test_plots_have_their_captions_as_alt_text(site: Site) -> None:
    """Every plot of a notebook page reads its caption (in the page's language) as alt text, with
    the caption's TeX read as text, not as backslash commands."""
    pages = sorted(site.root.glob("notebooks/*/index.html")) + sorted(
        site.root.glob("de/notebooks/*/index.html")
    )
    assert len(pages) >= 16, f"only {len(pages)} notebook pages"
    alts = {  # page -> the alt texts of its images
        page.relative_to(site.root).as_posix(): [
            html_lib.unescape(alt)
            for alt in re.findall(r'<img[^>]*\balt="([^"]*)"', page.read_text(encoding="utf-8"))
        ]
        for page in pages
    }
    bad = [
        f"{page}: {alt[:70]!r}"
        for page, texts in alts.items()
        for alt in texts
        if not alt.startswith("Abbildung:" if page.startswith("de/") else "Figure:") or "\\" in alt
    ]
    assert not bad, "plots without their caption as alt text:\n" + "\n".join(bad)
    # code in a caption keeps its underscores (an emphasis mark is dropped, grad_accum is not)
    on_06 = alts["notebooks/06_loss_normalisation/index.html"]
    assert any("grad_accum = 1" in alt for alt in on_06), on_06


def test_plots_open_at_full_size(site: Site) -> None:
    """Each plot is a PNG file of its own, linked from the figure, so a phone can zoom into it."""
    page = site.root / "notebooks" / "03_multi_token_prediction" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert "data:image/png" not in html, "a plot is still inlined as a data URL"
    figures = [  # (href of the link, src of the image), whatever the attributes' order
        (re.findall(r'href="([^"]+)"', a), re.findall(r'src="([^"]+)"', img))
        for a, img in re.findall(r'(<a\b[^>]*class="nb-figure"[^>]*>)\s*(<img\b[^>]*>)', html)
    ]
    assert figures, "no linked figure on the page"
    for hrefs, srcs in figures:
        assert len(hrefs) == len(srcs) == 1, (hrefs, srcs)
        href, src = hrefs[0], srcs[0]
        assert href == src and href.endswith(".png"), (href, src)
        target = _target(site.root, page, href)
        assert target is not None and target.is_file(), href


def test_header_names_the_repository(site: Site) -> None:
    html = (site.root / "index.html").read_text(encoding="utf-8")
    names = re.findall(r'class="md-source__repository">\s*([^<]*?)\s*<', html)
    # the header and the phone's navigation drawer each draw the link
    assert names and not {"", "None"} & set(names), f"repository link reads {names}"
    if site.repo_url is None:  # a prebuilt site: pyproject's Source URL, whatever it is
        return
    owner_and_name = "/".join(urlsplit(site.repo_url).path.strip("/").split("/")[:2])
    assert set(names) == {owner_and_name}, f"repository link reads {names}, not {owner_and_name}"


def test_moved_pages_redirect_to_pages_that_exist(site: Site) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("site_hook", ROOT / "docs" / "hooks" / "site.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    assert hook.REDIRECTS, "nothing to test"
    for prefix in ("", "de/"):
        for old, new in hook.REDIRECTS.items():
            page = site.root / prefix / old / "index.html"
            html = page.read_text(encoding="utf-8")
            target = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', html)
            assert target, f"{prefix}{old}: no redirect"
            assert _target(site.root, page, target[1]) == site.root / prefix / new / "index.html"
            assert (site.root / prefix / new / "index.html").is_file()
