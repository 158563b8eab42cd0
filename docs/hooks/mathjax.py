"""MkDocs hook: vendors MathJax 3 into the built site, so that math renders without a CDN.

Why vendored: the site must render its math offline — in the headless-browser test (no network at
test time) and for anyone reading a downloaded copy. MathJax rather than KaTeX because the notebooks
are written in Jupyter, which typesets with MathJax: the same TeX dialect renders the same here.

What it does
------------
* ``mathjax@3.2.2`` comes from the npm registry with npm's own client (``npm pack``). The tarball's
  SHA-512 is checked against ``INTEGRITY`` below (the registry's ``dist.integrity`` of that version).
* The files the ``tex-mml-chtml`` component loads — the component itself, its TeX extensions, the
  CHTML fonts, the menu and accessibility parts — are unpacked into ``.cache/mathjax-3.2.2/es5`` (never
  committed: ``.cache/`` carries its own ``.gitignore``).
* ``on_files`` adds them to the build as ``assets/vendor/mathjax/...``.
* ``on_post_page`` loads ``assets/javascripts/mathjax-config.js`` and then the component only on
  pages that have math (arithmatex output, or ``$`` in a notebook's Markdown cell): a page without a
  formula does not download MathJax.

No npm on the machine? Set ``APTT_MATHJAX_DIR`` to an unpacked ``mathjax@3`` ``es5`` folder, or run the
build once where npm exists (the cache is then reused).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.hooks.mathjax")

VERSION = "3.2.2"
INTEGRITY = "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
DEST = "assets/vendor/mathjax"
# Inside the package's es5/ folder: the combined component and what it loads on demand.
KEEP_FILES = ("tex-mml-chtml.js",)
KEEP_DIRS = ("input/tex/", "input/mml/", "output/chtml/", "ui/", "a11y/", "sre/", "adaptors/")
CONFIG = "assets/javascripts/mathjax-config.js"  # in docs/, loaded before the component


def _cache_dir(config: MkDocsConfig) -> Path:
    cache = Path(config.config_file_path).parent / ".cache"
    cache.mkdir(exist_ok=True)
    ignore = cache / ".gitignore"
    if not ignore.exists():  # build caches are never committed (mkdocs-jupyter caches here too)
        ignore.write_text("# created by docs/hooks/mathjax.py\n*\n", encoding="utf-8")
    return cache / f"mathjax-{VERSION}" / "es5"


def _wanted(rel: str) -> bool:
    return rel in KEEP_FILES or rel.startswith(KEEP_DIRS)


def _fetch(target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise PluginError(
            f"MathJax {VERSION} is not vendored yet and npm is not installed: install npm (Debian: "
            f"apt-get install npm) or set APTT_MATHJAX_DIR to an unpacked mathjax@3 es5/ folder."
        )
    with tempfile.TemporaryDirectory() as tmp:
        log.info("Fetching mathjax@%s with npm pack", VERSION)
        subprocess.run(
            [npm, "pack", f"mathjax@{VERSION}", "--pack-destination", tmp, "--silent"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tgz = Path(tmp) / f"mathjax-{VERSION}.tgz"
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
        if digest != INTEGRITY:
            raise PluginError(f"mathjax-{VERSION}.tgz: integrity {digest} != expected {INTEGRITY}")
        staging = Path(tmp) / "es5"
        with tarfile.open(tgz) as tar:
            for member in tar.getmembers():
                rel = member.name.removeprefix("package/es5/")
                if rel == member.name or not member.isfile() or not _wanted(rel) or ".." in rel:
                    continue
                out = staging / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                assert src is not None
                out.write_bytes(src.read())
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            staging.rename(target)  # atomic: a concurrent build sees all files or none
        except OSError:
            if not (target / KEEP_FILES[0]).is_file():
                raise


def _source_dir(config: MkDocsConfig) -> Path:
    if env := os.environ.get("APTT_MATHJAX_DIR"):
        source = Path(env)
    else:
        source = _cache_dir(config)
        if not (source / KEEP_FILES[0]).is_file():
            _fetch(source)
    if not (source / KEEP_FILES[0]).is_file():
        raise PluginError(f"{source / KEEP_FILES[0]} not found")
    return source


@event_priority(-200)  # after mkdocs-static-i18n: these assets are shared by all languages, at /
def on_files(files: Files, config: MkDocsConfig) -> Files:
    source = _source_dir(config)
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if path.is_file() and _wanted(rel):
            files.append(
                File(
                    rel,
                    src_dir=str(source),
                    dest_dir=config.site_dir,
                    use_directory_urls=config.use_directory_urls,
                    dest_uri=f"{DEST}/{rel}",
                )
            )
    return files


# Math on the page: arithmatex's wrappers (Markdown pages, docstrings), or a "$" inside a notebook's
# rendered Markdown (mkdocs-jupyter leaves the cells' TeX as it is, for MathJax to find).
def _has_math(output: str) -> bool:
    return 'class="arithmatex"' in output or ("jp-RenderedMarkdown" in output and "$" in output)


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    if not _has_math(output) or "</body>" not in output:
        return output
    scripts = "".join(
        f'<script src="{get_relative_url(path, page.url)}"{extra}></script>'
        for path, extra in ((CONFIG, ""), (f"{DEST}/{KEEP_FILES[0]}", " async"))
    )
    head, _, tail = output.rpartition("</body>")
    return f"{head}{scripts}</body>{tail}"
