"""MkDocs hook: ``notebooks/<lang>/*.ipynb`` become rendered pages of the bilingual site.

The notebooks live in ``notebooks/en`` and ``notebooks/de`` (the repository's layout, tested under
nbval); they are not copied into ``docs/``. This hook adds them to each language's build.

Why a hook, and why at this point of the build
==============================================
mkdocs-jupyter and mkdocs-static-i18n do not cooperate out of the box (open upstream issue
ultrabug/mkdocs-static-i18n#198, "Incompatible with mkdocs-jupyter plugin"):

1. mkdocs-jupyter turns a notebook into a page in its ``on_files`` event by wrapping the ``File`` in a
   ``NotebookFile`` whose ``is_documentation_page()`` is ``True`` (a plain ``File`` is a page only
   for Markdown).
2. mkdocs-static-i18n's ``on_files`` (priority -100, i.e. later) rebuilds *every* ``File`` of the
   current language from scratch (``folder.create_i18n_file`` calls ``File(...)``), which throws the
   wrapper away. The notebook is a static file again and is copied as raw JSON. ``mkdocs build
   --strict`` stays green, so nothing tells you.
3. The known workaround re-wraps the files in a hook that runs *after* i18n (priority -200). A
   second pitfall sits in that workaround: the page of the second language must keep the
   destination path i18n computed for it, or it overwrites the default language's page.

This hook goes one step further and never lets i18n see the notebooks: at priority -200, for the
language being built, it creates the page ``File`` objects itself, with

* ``src_uri = "<lang>/notebooks/<name>.ipynb"`` — the path a nav entry ``notebooks/<name>.ipynb`` or a
  Markdown link ``../notebooks/<name>.ipynb`` from ``docs/<lang>/...`` resolves to;
* ``abs_src_path`` pointing at ``notebooks/<lang>/<name>.ipynb`` (or at the English notebook when the
  German one does not exist yet: the same fallback i18n applies to Markdown pages);
* the destination computed here: ``notebooks/<name>/`` for English (the default language, built at
  ``/``), ``de/notebooks/<name>/`` for German;
* ``is_documentation_page() == True`` (class :class:`NotebookPage`), so MkDocs builds a page, and
  mkdocs-jupyter's ``on_pre_page`` (which matches on ``*.ipynb``) renders the notebook with its
  committed outputs, without executing it;
* the attributes mkdocs-static-i18n sets on every file (``locale``, ``alternates``, ...), so the
  language switcher links each notebook to its translation and the sitemap lists it.

It also keeps the build green while the notebooks and some modules are still being written:

* nav entries for notebooks that do not exist are dropped, and notebooks that exist but are not in
  the nav are appended to its "Notebooks" section;
* API pages of the optional modules (``OPTIONAL_MODULES``) are dropped while the module's source
  does not exist;
* Markdown links to a dropped page are turned into plain text (logged at INFO).

Finally it puts a download link for the ``.ipynb`` above each notebook, moves the JupyterLab
stylesheet that nbconvert inlines into every notebook page (0.6 MB each) into one shared file, and
removes the CDN MathJax 2 loader that mkdocs-jupyter puts into every notebook page:
the site loads its own, vendored MathJax 3 (``docs/hooks/mathjax.py``), which also typesets the
notebooks' Markdown cells.

Set ``APTT_DOCS_NOTEBOOKS_DIR`` to build with notebooks from another folder (the docs test uses it
to build against sample notebooks while ``notebooks/`` is still empty).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.hooks.notebooks")

NOTEBOOKS_ENV = "APTT_DOCS_NOTEBOOKS_DIR"
NOTEBOOKS_NAV = "notebooks/"  # nav and link prefix of the notebook pages, language-neutral
# Modules that others are still writing: their API page is built only once the source exists.
OPTIONAL_MODULES = (
    "aptt_edu.data",
    "aptt_edu.model",
    "aptt_edu.train",
    "aptt_edu.loss.linear_cross_entropy",
)

_original_nav: list[Any] | None = None  # config.nav as written, before the per-language pruning
_dropped: set[str] = set()  # language-neutral paths of pages left out of the current build


class NotebookPage(File):
    """A ``.ipynb`` file that MkDocs builds as a page (mkdocs-jupyter then renders it)."""

    def is_documentation_page(self) -> bool:
        return True


# --------------------------------------------------------------------------------------------
# Which language is being built, and which notebooks exist for it


def _languages(config: MkDocsConfig) -> tuple[str, str, list[str]]:
    """(current language, default language, languages built), from mkdocs-static-i18n."""
    i18n = config.plugins.get("i18n")
    if i18n is None:  # a single-language build: notebooks/en only, at the site root
        return "en", "en", ["en"]
    return (
        i18n.current_language or i18n.default_language,
        i18n.default_language,
        i18n.build_languages,
    )


def _notebooks_root(config: MkDocsConfig) -> Path:
    root = Path(os.environ.get(NOTEBOOKS_ENV, "notebooks"))
    return root if root.is_absolute() else Path(config.config_file_path).parent / root


def _notebook_sources(config: MkDocsConfig, lang: str, default: str) -> dict[str, Path]:
    """``{name: path}`` of the notebooks shown in ``lang``; missing translations fall back to ``default``."""
    root = _notebooks_root(config)
    found = {p.stem: p for p in sorted((root / default).glob("*.ipynb"))}
    found.update({p.stem: p for p in sorted((root / lang).glob("*.ipynb"))})
    return dict(sorted(found.items()))


def _module_exists(config: MkDocsConfig, module: str) -> bool:
    """True if ``module``'s source exists (mkdocstrings reads the source; it never imports it)."""
    base = Path(config.config_file_path).parent.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


# --------------------------------------------------------------------------------------------
# Navigation: drop what does not exist, append notebooks that the nav does not list


def _nav_path(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and len(item) == 1:
        value = next(iter(item.values()))
        return value if isinstance(value, str) else None
    return None


def _prune(items: list[Any], keep: Any) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if (
            isinstance(item, dict)
            and len(item) == 1
            and isinstance(next(iter(item.values())), list)
        ):
            title, children = next(iter(item.items()))
            children = _prune(children, keep)
            if children:  # an empty section would be an error
                out.append({title: children})
        elif (path := _nav_path(item)) is None or keep(path):
            out.append(item)
    return out


def _listed(items: list[Any]) -> set[str]:
    paths: set[str] = set()
    for item in items:
        if (
            isinstance(item, dict)
            and len(item) == 1
            and isinstance(next(iter(item.values())), list)
        ):
            paths |= _listed(next(iter(item.values())))
        elif (path := _nav_path(item)) is not None:
            paths.add(path)
    return paths


def _notebook_section(items: list[Any]) -> list[Any] | None:
    """The children list of the first nav section that lists a notebook, searched depth-first."""
    for item in items:
        if isinstance(item, dict) and len(item) == 1:
            children = next(iter(item.values()))
            if isinstance(children, list):
                if any((_nav_path(c) or "").startswith(NOTEBOOKS_NAV) for c in children):
                    return children
                if (found := _notebook_section(children)) is not None:
                    return found
    return None


# After mkdocs-static-i18n's on_config (priority -100), which sets the language being built.
@event_priority(-150)
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    global _original_nav
    if config.nav is None:
        return config
    if _original_nav is None:
        _original_nav = copy.deepcopy(config.nav)
    lang, default, _ = _languages(config)
    names = _notebook_sources(config, lang, default)
    absent_modules = {m for m in OPTIONAL_MODULES if not _module_exists(config, m)}

    def keep(path: str) -> bool:
        if path.startswith(NOTEBOOKS_NAV) and path.endswith(".ipynb"):
            return Path(path).stem in names
        if path.startswith("api/") and path.endswith(".md"):
            return Path(path).stem not in absent_modules
        return True

    nav = _prune(copy.deepcopy(_original_nav), keep)
    listed = _listed(nav)
    extra = [
        f"{NOTEBOOKS_NAV}{n}.ipynb" for n in names if f"{NOTEBOOKS_NAV}{n}.ipynb" not in listed
    ]
    if extra:  # a notebook that the nav does not name yet still gets a page and a nav entry
        section = _notebook_section(nav)
        if section is None:
            nav.append({"Notebooks": extra})
        else:
            section.extend(extra)
    config.nav = nav

    all_listed = _listed(_original_nav)
    _dropped.clear()
    _dropped.update(p for p in all_listed if not keep(p))
    _dropped.update(f"api/{m}.md" for m in absent_modules)
    if _dropped:
        log.info("[%s] left out (not written yet): %s", lang, ", ".join(sorted(_dropped)))
    return config


# --------------------------------------------------------------------------------------------
# Files: add the notebook pages of the current language, drop API pages of absent modules


def _dest_uri(lang: str, default: str, name: str, use_directory_urls: bool) -> str:
    prefix = "" if lang == default else f"{lang}/"
    page = f"{name}/index.html" if use_directory_urls else f"{name}.html"
    return f"{prefix}{NOTEBOOKS_NAV}{page}"


def _notebook_file(
    config: MkDocsConfig, lang: str, name: str, source: Path, cls: type[File]
) -> File:
    _, default, _ = _languages(config)
    f = cls(
        f"{lang}/{NOTEBOOKS_NAV}{name}.ipynb",
        src_dir=None,
        dest_dir=config.site_dir,
        use_directory_urls=config.use_directory_urls,
        dest_uri=_dest_uri(lang, default, name, config.use_directory_urls),
    )
    f.abs_src_path = str(source)
    f.generated_by = "docs/hooks/notebooks.py"
    return f


# After mkdocs-static-i18n's on_files (priority -100): see the module docstring.
@event_priority(-200)
def on_files(files: Files, config: MkDocsConfig) -> Files:
    lang, default, build_languages = _languages(config)

    for f in list(files):
        src = getattr(f, "norm_src_uri", f.src_uri)
        if src in _dropped:
            files.remove(f)

    sources = {lg: _notebook_sources(config, lg, default) for lg in build_languages}
    new_pages = []
    for name, source in sources.get(lang, {}).items():
        page = _notebook_file(config, lang, name, source, NotebookPage)
        # The metadata mkdocs-static-i18n's create_i18n_file() gives every file it builds.
        page.locale = page.localization = source.parent.name
        page.locale_alternate_of = lang
        page.norm_src_uri = f"{NOTEBOOKS_NAV}{name}.ipynb"
        # Alternates: the same notebook in every built language. Only ``url`` is read from them (by
        # the language switcher and the sitemap), so plain File objects suffice.
        page.alternates = {
            other: page
            if other == lang
            else _notebook_file(config, other, name, sources[other][name], File)
            for other in build_languages
            if name in sources[other]
        }
        files.append(page)
        new_pages.append(page)

    i18n = config.plugins.get("i18n")
    if i18n is not None and lang in i18n.i18n_files_per_language:  # read by i18n's sitemap.xml
        i18n.i18n_files_per_language[lang].extend(new_pages)
    return files


# --------------------------------------------------------------------------------------------
# Pages: links to pages left out become plain text; notebook pages lose the CDN MathJax loader

_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]\n]+)\]\((?P<target>[^)\s#]+)(?:#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if not _dropped or isinstance(page.file, NotebookPage):
        return markdown
    here = posixpath.dirname(getattr(page.file, "norm_src_uri", page.file.src_uri))

    def unlink(m: re.Match[str]) -> str:
        target = posixpath.normpath(posixpath.join(here, m["target"]))
        if target in _dropped:
            log.info("%s: link to %s (not written yet) shown as text", page.file.src_uri, target)
            return m["text"]
        return m[0]

    return _LINK.sub(unlink, markdown)


# mkdocs-jupyter's template emits a MathJax 2 loader (``<script src="">`` when no URL is configured)
# and its ``text/x-mathjax-config`` block. Both are dead weight next to the site's MathJax 3.
_NB_MATHJAX = re.compile(
    r'<script src="[^"]*"> </script>\s*<!-- MathJax configuration -->\s*'
    r'<script type="text/x-mathjax-config">.*?</script>\s*<!-- End of mathjax configuration -->',
    re.DOTALL,
)


# mkdocs-jupyter's include_source copies the .ipynb next to the page; Material has no button for it.
_DOWNLOAD = {"en": "Download this notebook", "de": "Dieses Notebook herunterladen"}


# nbconvert inlines the whole JupyterLab stylesheet (about 0.6 MB) into every notebook page. The same
# text is written once to assets/notebooks/<hash>.css and linked instead, at the same place in the
# page, so the cascade is unchanged and browsers cache it across notebooks.
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.DOTALL)
_STYLE_MIN_CHARS = 2000  # small, page-specific style blocks stay inline


def _link_stylesheet(m: re.Match[str], page: Page, config: MkDocsConfig) -> str:
    css = m[1]
    if len(css) < _STYLE_MIN_CHARS:
        return m[0]
    name = f"assets/notebooks/{hashlib.sha256(css.encode()).hexdigest()[:16]}.css"
    path = Path(config.site_dir) / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(css, encoding="utf-8")
    return f'<link rel="stylesheet" href="{get_relative_url(name, page.url)}">'


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if not isinstance(page.file, NotebookPage):
        return html
    html = _NB_MATHJAX.sub("", html, count=1)
    html = _STYLE.sub(lambda m: _link_stylesheet(m, page, config), html)
    lang, _, _ = _languages(config)
    name = Path(page.file.abs_src_path or "").name
    label = _DOWNLOAD.get(lang, _DOWNLOAD["en"])
    link = f'<p class="nb-download"><a href="{name}" download>{label} ({name})</a></p>\n'
    return link + html
