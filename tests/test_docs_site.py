"""The documentation site, as a reader's browser shows it.

Builds the site with ``mkdocs build --strict`` into a temporary folder, serves it on 127.0.0.1, opens
the English and the German home page and one notebook page per language in headless Chromium, and
checks what a reader would look for: the navigation, the language switcher (pointing at the same
page in the other language), rendered math (MathJax output, not ``$...$``), and on the notebook
pages rendered cells with a plot instead of the notebook's raw JSON. Then it crawls every built HTML
page and checks that each internal ``href``/``src`` resolves to a file. Screenshots of the four pages
go to ``artifacts/screenshots/`` for a person to look at.

A green strict build alone proves little: with mkdocs-jupyter and mkdocs-static-i18n the notebook
pages can come out as raw JSON while the build stays green (see ``docs/hooks/notebooks.py``).

Chromium is Debian's ``chromium`` (or ``APTT_CHROMIUM=/path/to/chrome``). Without it the test is
skipped — unless ``APTT_REQUIRE_BROWSER=1`` is set (by ``make`` after it installed Chromium, and by
the Pages workflow), where a missing browser fails the test. When ``notebooks/`` holds no notebook yet, two generated sample
notebooks (with a plot and LaTeX) stand in, so the notebook pipeline is still tested.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
LANGS = ("en", "de")
BUILD_TIMEOUT_S = 300
BROWSER_TIMEOUT_S = 90


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
if CHROMIUM is None and not _browser_required():
    pytest.skip(
        "headless Chromium not found (apt-get install chromium, or set APTT_CHROMIUM); "
        "set APTT_REQUIRE_BROWSER=1 to make this a failure instead of a skip",
        allow_module_level=True,
    )


# ------------------------------------------------------------------------------------------------
# Notebooks: the repository's, or two generated samples while notebooks/ is still empty


def _has_png(path: Path) -> bool:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return any(
        "image/png" in out.get("data", {})
        for cell in nb.get("cells", [])
        for out in cell.get("outputs", [])
    )


def _write_sample_notebooks(root: Path) -> None:
    """One notebook per language with a Markdown cell of LaTeX and a code cell with a PNG plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2.5))
    ax.plot([0, 1, 2, 3], [2.3, 1.2, 0.8, 0.7])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode()
    text = {
        "en": (
            "# 01 · Sample notebook",
            "The loss is $\\mathcal{L} = -\\log p_y$ and $$H(q,p) = -\\sum_v q_v \\log p_v.$$",
        ),
        "de": (
            "# 01 · Beispiel-Notebook",
            "Der Verlust ist $\\mathcal{L} = -\\log p_y$ und $$H(q,p) = -\\sum_v q_v \\log p_v.$$",
        ),
    }
    for lang, (title, body) in text.items():
        nb = {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "cells": [
                {"cell_type": "markdown", "id": "a", "metadata": {}, "source": title},
                {"cell_type": "markdown", "id": "b", "metadata": {}, "source": body},
                {
                    "cell_type": "code",
                    "id": "c",
                    "metadata": {},
                    "execution_count": 1,
                    "source": "plt.plot([0, 1, 2, 3], [2.3, 1.2, 0.8, 0.7])\nplt.show()",
                    "outputs": [
                        {
                            "output_type": "display_data",
                            "metadata": {},
                            "data": {
                                "image/png": png,
                                "text/plain": "<Figure size 400x250 with 1 Axes>",
                            },
                        }
                    ],
                },
            ],
        }
        (root / lang).mkdir(parents=True, exist_ok=True)
        (root / lang / "01_cross_entropy_and_label_smoothing.ipynb").write_text(
            json.dumps(nb), encoding="utf-8"
        )


# ------------------------------------------------------------------------------------------------
# Build and serve


@dataclass
class Site:
    root: Path  # the built site
    url: str  # where it is served, ending in "/"
    notebook: str  # a notebook name (stem) that has a plot in both languages
    notebooks: Path  # the notebooks the site was built from
    samples: bool  # True: generated sample notebooks stood in for an empty notebooks/
    build_log: str


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with tempfile.TemporaryDirectory(prefix="aptt-docs-") as tmp:
        env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
        notebooks = Path(os.environ.get("APTT_DOCS_NOTEBOOKS_DIR", ROOT / "notebooks"))
        samples = not any(list((notebooks / lang).glob("*.ipynb")) for lang in LANGS)
        if samples:
            notebooks = Path(tmp) / "notebooks"
            _write_sample_notebooks(notebooks)
            env["APTT_DOCS_NOTEBOOKS_DIR"] = str(notebooks)
        with_plots = [
            p.stem
            for p in sorted((notebooks / "en").glob("*.ipynb"))
            if _has_png(p)
            and (notebooks / "de" / p.name).is_file()
            and _has_png(notebooks / "de" / p.name)
        ]
        assert with_plots, f"no notebook in {notebooks}/en and /de has a committed image/png output"

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

        handler = functools.partial(_QuietHandler, directory=str(site_dir))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: a free port
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}/"
            yield Site(
                root=site_dir,
                url=url,
                notebook=with_plots[0],
                notebooks=notebooks,
                samples=samples,
                build_log=log,
            )
        finally:
            server.shutdown()
            server.server_close()


# ------------------------------------------------------------------------------------------------
# The browser


def _open(url: str, screenshot: Path) -> str:
    """Loads ``url`` in headless Chromium, saves a screenshot and returns the DOM after scripts ran."""
    assert CHROMIUM is not None, (
        "headless Chromium not found, but APTT_REQUIRE_BROWSER is set (apt-get install chromium)"
    )
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aptt-chromium-") as profile:
        run = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--window-size=1280,1600",
                # Virtual time runs until the page is idle (MathJax done), at most this many ms.
                "--virtual-time-budget=20000",
                f"--screenshot={screenshot}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=BROWSER_TIMEOUT_S,
        )
    assert run.returncode == 0, f"chromium failed on {url}:\n{run.stderr[-3000:]}"
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, f"no screenshot of {url}"
    return run.stdout


@pytest.fixture(scope="module")
def pages(site: Site) -> dict[str, str]:
    """The DOM of the four pages, keyed "en_home", "de_home", "en_notebook", "de_notebook"."""
    urls = {
        "en_home": site.url,
        "de_home": site.url + "de/",
        "en_notebook": f"{site.url}notebooks/{site.notebook}/",
        "de_notebook": f"{site.url}de/notebooks/{site.notebook}/",
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        doms = pool.map(
            lambda kv: (kv[0], _open(kv[1], SCREENSHOTS / f"{kv[0]}.png")), urls.items()
        )
        return dict(doms)


# ------------------------------------------------------------------------------------------------
# What the pages must show


class _Elements(HTMLParser):
    """Collects (tag, attributes) of every element, and the text inside given classes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))


def _elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


def _classes(attrs: dict[str, str]) -> set[str]:
    return set(attrs.get("class", "").split())


def _language_links(elements: list[tuple[str, dict[str, str]]]) -> dict[str, str]:
    return {
        a["hreflang"]: a["href"]
        for tag, a in elements
        if tag == "a" and "md-select__link" in _classes(a)
    }


@pytest.mark.parametrize("page", ["en_home", "de_home", "en_notebook", "de_notebook"])
def test_navigation_switcher_and_math(site: Site, pages: dict[str, str], page: str) -> None:
    dom = pages[page]
    lang = page.split("_")[0]
    elements = _elements(dom)

    assert re.search(rf'<html[^>]*\blang="{lang}"', dom), f"{page}: <html lang> is not {lang}"
    nav_links = [a for tag, a in elements if tag == "a" and "md-nav__link" in _classes(a)]
    assert len(nav_links) >= 10, f"{page}: navigation has only {len(nav_links)} links"
    concept = (
        "Cross-entropy and label smoothing" if lang == "en" else "Kreuzentropie und Label Smoothing"
    )
    assert concept in dom, f"{page}: navigation lacks the first concept page ({concept!r})"

    switcher = _language_links(elements)
    assert set(switcher) == set(LANGS), f"{page}: language switcher offers {sorted(switcher)}"
    here = site.url + ("" if lang == "en" else "de/")
    if page.endswith("notebook"):
        here += f"notebooks/{site.notebook}/"
    for target_lang, href in switcher.items():
        # Relative, so the site works under any base path (e.g. https://<owner>.github.io/<repo>/).
        assert not href.startswith("/"), (
            f"{page}: switcher link to {target_lang} is absolute: {href!r}"
        )
        expected = site.url + ("" if target_lang == "en" else "de/")
        if page.endswith("notebook"):
            expected += f"notebooks/{site.notebook}/"
        assert urljoin(here, href) == expected, (
            f"{page}: switcher link to {target_lang} is {href!r}"
        )

    math = dom.count("<mjx-container")
    assert math > 0, f"{page}: no formula was typeset by MathJax"
    assert "<mjx-merror" not in dom, f"{page}: MathJax reports a TeX error"


@pytest.mark.parametrize("lang", LANGS)
def test_notebook_page_is_rendered(site: Site, pages: dict[str, str], lang: str) -> None:
    dom = pages[f"{lang}_notebook"]
    elements = _elements(dom)
    assert '"cell_type"' not in dom and '"nbformat"' not in dom, "the notebook came out as raw JSON"
    cells = [a for tag, a in elements if tag == "div" and "jp-Cell" in _classes(a)]
    assert len(cells) >= 2, f"only {len(cells)} rendered notebook cells"
    plots = [
        a
        for tag, a in elements
        if tag == "img" and a.get("src", "").startswith("data:image/png;base64,")
    ]
    assert plots, "no plot (<img src=data:image/png>) on the notebook page"
    markdown_math = re.search(
        r'class="[^"]*jp-RenderedMarkdown[^"]*".*?<mjx-container', dom, re.DOTALL
    )
    assert markdown_math, "no formula in a Markdown cell was typeset"
    download = [
        a for tag, a in elements if tag == "a" and a.get("href") == f"{site.notebook}.ipynb"
    ]
    assert download, "no download link for the .ipynb"


def test_every_notebook_has_a_page(site: Site) -> None:
    notebooks = site.notebooks
    for lang in LANGS:
        prefix = "" if lang == "en" else "de/"
        for nb in sorted((notebooks / "en").glob("*.ipynb")) + sorted(
            (notebooks / lang).glob("*.ipynb")
        ):
            page = site.root / f"{prefix}notebooks/{nb.stem}/index.html"
            assert page.is_file(), f"{nb.name} has no {lang} page"
            assert "jp-Cell" in page.read_text(encoding="utf-8"), (
                f"{page} is not a rendered notebook"
            )


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


def test_search_covers_both_languages(site: Site) -> None:
    index = json.loads((site.root / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert {"en", "de"} <= set(index["config"]["lang"]), index["config"]["lang"]
    locations = [doc["location"] for doc in index["docs"]]
    assert any(loc.startswith("de/concepts/") for loc in locations), "no German page is indexed"
    assert any(loc.startswith("concepts/") for loc in locations), "no English page is indexed"
    assert any("notebooks/" in loc for loc in locations), "no notebook is indexed"
