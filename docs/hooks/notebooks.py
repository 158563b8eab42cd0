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

What a reader gets on a notebook page, beyond what mkdocs-jupyter renders
======================================================================
* **Markdown cells read as Jupyter reads them.** A wrapped line that starts with ``#`` but no space
  (``#34191 and ...``) is no heading in CommonMark, yet Python-Markdown (the table of contents) and
  nbconvert read it as one; it is escaped (``\\#``) in a copy of the notebook under ``.cache/`` that
  mkdocs-jupyter renders (the download is that copy: it shows the same in Jupyter).
* **The table of contents is the page's headings**, rebuilt from the rendered HTML: mkdocs-jupyter
  builds it from a Markdown export where headings with inline code lose those words and their
  anchors (``#3-padding-and`` for "3. Padding and ``ignore_index``").
* **Headings printed by a cell** (``display(Markdown("# ..."))``) are shown as bold text, not as
  headings: the page has one title, and the table of contents lists the notebook's own sections.
* **Plots carry alt text**: the caption cell that follows a plot (``*Figure:* ...`` /
  ``*Abbildung:* ...``), else a short generic text in the page's language.
* **Code inputs fold**: each input sits in an open ``<details>`` whose summary hides or shows it;
  an exercise's solution (a cell tagged ``solution``) in a closed one, "Solution".
* **Search indexes the prose only**: inputs and outputs are marked ``data-search-exclude``.
* a download link for the ``.ipynb`` above each notebook, an edit link to its bilingual source
  (``notebooks/src/<name>.py``) when ``repo_url`` is set, the JupyterLab stylesheet that nbconvert
  inlines into every notebook page (0.6 MB each) moved into one shared file, and mkdocs-jupyter's
  CDN MathJax 2 loader removed (the site's own MathJax 3 typesets the notebooks,
  ``docs/hooks/mathjax.py``).
"""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import json
import logging
import re
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.structure.toc import get_toc
from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.hooks.notebooks")

NOTEBOOKS_NAV = "notebooks/"  # nav and link prefix of the notebook pages, language-neutral


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
    return Path(config.config_file_path).parent / "notebooks"


def _notebook_sources(config: MkDocsConfig, lang: str, default: str) -> dict[str, Path]:
    """``{name: path}`` of the notebooks shown in ``lang``; missing translations fall back to ``default``."""
    root = _notebooks_root(config)
    found = {p.stem: p for p in sorted((root / default).glob("*.ipynb"))}
    found.update({p.stem: p for p in sorted((root / lang).glob("*.ipynb"))})
    return dict(sorted(found.items()))


# --------------------------------------------------------------------------------------------
# Files: add the notebook pages of the current language


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
    f.abs_src_path = str(_prepared(config, lang, source))
    f.generated_by = "docs/hooks/notebooks.py"
    return f


# A line that starts with "#" and no space: not a heading in CommonMark (Jupyter shows it as text),
# but Python-Markdown and nbconvert read it as one.
_HASH_LINE = re.compile(r"^(#+)(?=[^\s#])", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~)")


def _escape_hash_lines(source: str) -> str:
    out, fenced = [], False
    for line in source.splitlines(keepends=True):
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        out.append(line if fenced else _HASH_LINE.sub(lambda m: "\\#" * len(m[1]), line))
    return "".join(out)


def _prepared(config: MkDocsConfig, lang: str, source: Path) -> Path:
    """A copy of the notebook whose Markdown cells read the same in every renderer (see above)."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = _escape_hash_lines(text)
    out = Path(config.config_file_path).parent / ".cache" / "notebooks" / lang / source.name
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(nb, ensure_ascii=False, indent=1) + "\n"
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return out


# After mkdocs-static-i18n's on_files (priority -100): see the module docstring.
@event_priority(-200)
def on_files(files: Files, config: MkDocsConfig) -> Files:
    lang, default, build_languages = _languages(config)
    sources = {lg: _notebook_sources(config, lg, default) for lg in build_languages}
    new_pages = []
    for name, source in sources.get(lang, {}).items():
        page: Any = _notebook_file(config, lang, name, source, NotebookPage)
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
# Pages


# mkdocs-jupyter's template emits a MathJax 2 loader (``<script src="">`` when no URL is configured)
# and its ``text/x-mathjax-config`` block. Both are dead weight next to the site's MathJax 3.
_NB_MATHJAX = re.compile(
    r'<script src="[^"]*"> </script>\s*<!-- MathJax configuration -->\s*'
    r'<script type="text/x-mathjax-config">.*?</script>\s*<!-- End of mathjax configuration -->',
    re.DOTALL,
)

# nbconvert inlines the whole JupyterLab stylesheet (about 0.6 MB) into every notebook page. The same
# text is written once to assets/notebooks/<hash>.css and linked instead, at the same place in the
# page, so the cascade is unchanged and browsers cache it across notebooks.
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.DOTALL)
_STYLE_MIN_CHARS = 2000  # small, page-specific style blocks stay inline

TEXT = {
    "en": {
        "download": "Download this notebook",
        "code": "Code",
        "solution": "Solution (try the exercise first)",
        "plot": "Plot drawn by the code cell above.",
        "caption": "*Figure:*",
        "enlarge": "Open the figure at full size",
    },
    "de": {
        "download": "Dieses Notebook herunterladen",
        "code": "Code",
        "solution": "Lösung (erst selbst versuchen)",
        "plot": "Grafik, gezeichnet von der Codezelle darüber.",
        "caption": "*Abbildung:*",
        "enlarge": "Abbildung in voller Größe öffnen",
    },
}


def _asset(content: bytes, suffix: str, page: Page, config: MkDocsConfig) -> str:
    """Writes ``content`` once to ``assets/notebooks/<hash><suffix>``; returns its URL from ``page``.

    Named by its hash, a file shared by several pages (a stylesheet, the same figure) is written and
    downloaded once, and the browser caches it across notebooks.
    """
    name = f"assets/notebooks/{hashlib.sha256(content).hexdigest()[:16]}{suffix}"
    path = Path(config.site_dir) / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return get_relative_url(name, page.url)


def _link_stylesheet(m: re.Match[str], page: Page, config: MkDocsConfig) -> str:
    css = m[1]
    if len(css) < _STYLE_MIN_CHARS:
        return m[0]
    return f'<link rel="stylesheet" href="{_asset(css.encode(), ".css", page, config)}">'


# TeX commands of the captions, as a screen reader should read them
_TEX_WORDS = {
    "varepsilon": "ε", "epsilon": "ε", "lambda": "λ", "pi": "π", "sum": "Σ", "times": "×",
    "cdot": "·", "le": "≤", "ge": "≥", "to": "→", "log": "log", "exp": "exp",
}  # fmt: skip


def _tex_as_text(math: str) -> str:
    """Inline TeX as plain text: ``\\varepsilon = 0{,}1`` -> ``ε = 0,1``, ``\\mathrm{TRM}_k`` -> ``TRM_k``."""
    text = math.replace("{,}", ",")
    text = re.sub(r"\\(?:mathrm|text|mathbf)\{([^}]*)\}", r"\1", text)
    text = re.sub(r"\\([A-Za-z]+)", lambda m: _TEX_WORDS.get(m[1], m[1]), text)
    return text.replace("{", "").replace("}", "").replace("\\", "")


def _plain(markdown: str) -> str:
    """A caption's Markdown as plain text for ``alt``: emphasis, code marks and links dropped, math
    read as text (:func:`_tex_as_text`)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)  # [text](url) -> text
    out = []
    for k, chunk in enumerate(re.split(r"`([^`]*)`", text)):  # prose, code, prose, code, ...
        if k % 2:
            out.append(chunk)  # a code span as written: grad_accum keeps its underscore
            continue
        for i, part in enumerate(re.split(r"\$+([^$]*)\$+", chunk)):  # prose, math, ...
            if i % 2:
                out.append(_tex_as_text(part))
            else:  # emphasis marks, but not an underscore inside a word
                out.append(re.sub(r"\*|\\[()\[\]]|(?<!\w)_+|_+(?!\w)", "", part))
    return " ".join("".join(out).split())


def _captions(notebook: Path, lang: str) -> list[str | None]:
    """Per image output of the notebook, in order: the caption cell that follows its code cell."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    marker = TEXT.get(lang, TEXT["en"])["caption"]
    captions: list[str | None] = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        images = sum(
            1
            for out in cell.get("outputs", [])
            if any(k.startswith("image/") for k in out.get("data", {}))
        )
        if not images:
            continue
        caption = None
        if i + 1 < len(cells) and cells[i + 1].get("cell_type") == "markdown":
            src = cells[i + 1]["source"]
            text = ("".join(src) if isinstance(src, list) else src).strip()
            if text.startswith((marker, "*Figure:*", "*Abbildung:*")):
                caption = _plain(text)
        captions.extend([caption] * images)
    return captions


def _toc_tokens(soup: BeautifulSoup) -> list[dict[str, Any]]:
    """The page's headings as Python-Markdown TOC tokens (nested by level)."""
    root: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    for h in soup.find_all(re.compile(r"^h[1-6]$")):
        if not h.get("id"):
            continue
        level = int(h.name[1])
        for anchor in h.find_all("a", class_="anchor-link"):
            anchor.extract()
        name = html_lib.escape(" ".join(h.get_text().split()))
        token: dict[str, Any] = {"level": level, "id": h["id"], "name": name, "children": []}
        while stack and stack[-1]["level"] >= level:
            stack.pop()
        (stack[-1]["children"] if stack else root).append(token)
        stack.append(token)
    return root


def _figure_file(data_url: str, page: Page, config: MkDocsConfig) -> str | None:
    """An inline PNG as an asset file (:func:`_asset`); its URL from ``page``, or None if not a PNG.

    A file of its own can be opened at full size (on a phone a wide figure is drawn 350 px wide; the
    link lets a reader zoom into it).
    """
    prefix = "data:image/png;base64,"
    if not data_url.startswith(prefix):
        return None
    return _asset(base64.b64decode(data_url[len(prefix) :]), ".png", page, config)


def _rewrite(html: str, page: Page, lang: str, config: MkDocsConfig) -> str:
    text = TEXT.get(lang, TEXT["en"])
    soup = BeautifulSoup(html, "html.parser")
    # Headings printed by a cell are output, not sections of the page.
    for out in soup.select(".jp-OutputArea"):
        for h in out.find_all(re.compile(r"^h[1-6]$")):
            h.name = "p"
            h.attrs = {"class": "nb-output-heading"}
    # Alt text from the caption cells, in the order of the image outputs.
    captions = _captions(Path(page.file.abs_src_path or ""), lang)
    images = soup.select(".jp-OutputArea-output img")
    for k, img in enumerate(images):
        caption = captions[k] if len(captions) == len(images) else None
        img["alt"] = caption or text["plot"]
        url = _figure_file(str(img.get("src", "")), page, config)
        if url is not None:
            img["src"] = url
            link = soup.new_tag(
                "a", attrs={"href": url, "class": "nb-figure", "title": text["enlarge"]}
            )
            img.wrap(link)
    # Fold code: the input of every code cell in an open <details>, an exercise's solution (a cell
    # tagged "solution", which nbconvert marks with the class celltag_solution) in a closed one;
    # prose only in the search index.
    for wrapper in soup.select(".jp-CodeCell > .jp-Cell-inputWrapper"):
        cell = wrapper.parent  # the selector's parent: never None
        solution = cell is not None and "celltag_solution" in (cell.get("class") or [])
        attrs = {"class": "nb-input nb-solution"} if solution else {"class": "nb-input", "open": ""}
        details = soup.new_tag("details", attrs=attrs)
        summary = soup.new_tag("summary")
        summary.string = text["solution" if solution else "code"]
        wrapper.wrap(details)
        details.insert(0, summary)
        # On the wrapper, not on a <div>: the search plugin ends an excluded element at the first
        # closing tag of the same name, and the cells nest <div>s.
        details["data-search-exclude"] = ""
    for wrapper in soup.select(".jp-Cell-outputWrapper"):
        wrapper.wrap(
            soup.new_tag("section", attrs={"class": "nb-output", "data-search-exclude": ""})
        )
    for clip in soup.find_all("clipboard-copy"):
        if "," in clip.attrs:
            del clip.attrs[","]
    tokens = _toc_tokens(BeautifulSoup(str(soup), "html.parser"))
    page.toc = get_toc(tokens)  # type: ignore[arg-type]  # the dicts Python-Markdown's toc makes
    return str(soup)


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if not isinstance(page.file, NotebookPage):
        return html
    html = _NB_MATHJAX.sub("", html, count=1)
    html = _STYLE.sub(lambda m: _link_stylesheet(m, page, config), html)
    lang, _, _ = _languages(config)
    html = _rewrite(html, page, lang, config)
    name = Path(page.file.abs_src_path or "").name
    label = TEXT.get(lang, TEXT["en"])["download"]
    if config.repo_url:  # Material's edit button: the bilingual source the notebook is built from
        page.edit_url = (
            f"{config.repo_url.rstrip('/')}/edit/main/notebooks/src/{Path(name).stem}.py"
        )
    link = f'<p class="nb-download"><a href="{name}" download>{label} ({name})</a></p>\n'
    return link + html
