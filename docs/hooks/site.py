"""MkDocs hook: one search index per language, and one 404 page for both languages.

mkdocs-static-i18n builds the English site and then, inside the English build's ``on_post_build``,
the German one into the same ``site_dir``. Two things come out wrong for a reader, fixed here:

* **Search.** i18n merges both languages into one ``search/search_index.json``: an English search
  lists German pages (and every hit twice). After i18n wrote the merged index, ``on_post_build``
  splits it: ``search/search_index.json`` holds the English pages, ``de/search/search_index.json``
  the German ones (locations relative to ``de/``, German stemming only). German pages tell the
  theme that their search base is ``de/`` (the ``base`` of the theme's ``__config``, which the
  theme resolves the index and the result links against). Section titles lose the ``¶`` of the
  notebooks' heading anchors.
* **404.** Both builds write ``404.html``; the German one, written last, won, with the switcher
  links of whatever page it rendered last. GitHub Pages serves the root ``404.html`` for every
  missing path, so there is one: the English build's, rendered from ``docs/overrides/404.html``
  (English, then German, each with a link home), and its language links point at the two home
  pages.
* **Edit links** (``repo_url`` set): ``edit_uri`` is ``edit/<SITE_REPO_BRANCH or main>/docs/``.
* **Moved pages** keep working: every old address in :data:`REDIRECTS` gets a small page (in both
  languages) that sends the reader to the new one.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.pages import Page

_404: dict[str, str] = {}  # the default language's rendered 404 page, kept for the final write

# old address -> new address, both relative to a language's root (links and bookmarks in the wild)
REDIRECTS = {
    "seed-design-corrections/": "common-claims/",
    "api/aptt_edu.train/": "api/aptt_edu.training/",
}
_REDIRECT_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Moved</title>
<meta http-equiv="refresh" content="0; url={target}"><link rel="canonical" href="{target}">
<meta name="robots" content="noindex"></head>
<body><p>This page has moved: <a href="{target}">{target}</a></p></body></html>
"""


def _write_redirects(site: Path, languages: list[str], default: str) -> None:
    """One redirect page per old address and language, linking relatively to the new page."""
    for lang in languages:
        root = site if lang == default else site / lang
        for old, new in REDIRECTS.items():
            page = root / old / "index.html"
            if page.exists() or not (root / new / "index.html").is_file():
                continue  # never hide a real page; no redirect to a page that was not built
            target = "../" * old.rstrip("/").count("/") + "../" + new
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(_REDIRECT_PAGE.format(target=target), encoding="utf-8")


_CONFIG_BASE = re.compile(
    r'(<script id="__config" type="application/json">\{[^<]*?"base": ")([^"]*)(")'
)


def _i18n(config: MkDocsConfig) -> Any:
    return config.plugins.get("i18n")


def _languages(config: MkDocsConfig) -> tuple[str, str]:
    """(language being built, default language)."""
    i18n = _i18n(config)
    if i18n is None:
        return "en", "en"
    return i18n.current_language or i18n.default_language, i18n.default_language


def _pyproject_source_url() -> str | None:
    """``[project.urls] Source`` of pyproject.toml: the one repository URL the notebooks use too."""
    from pathlib import Path

    import tomllib

    path = Path(__file__).resolve().parents[2] / "pyproject.toml"
    with path.open("rb") as f:
        url = tomllib.load(f).get("project", {}).get("urls", {}).get("Source")
    return url if isinstance(url, str) else None


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    # Repository link: SITE_REPO_URL (the Pages workflow sets it) or else pyproject's Source URL,
    # the same setting the notebooks' Colab/Binder links and install cell are built from.
    if not config.repo_url:
        config.repo_url = _pyproject_source_url()
    # The header names the repository "owner/name" unless mkdocs.yml names it. MkDocs derives
    # repo_name (just "GitHub") only from a repo_url that mkdocs.yml itself sets; for the one set
    # above it stays None, which the header printed as the word "None".
    if config.repo_url and config.repo_name in (None, "GitHub", "GitLab", "Bitbucket"):
        path = urlsplit(config.repo_url).path.strip("/").removesuffix(".git")
        config.repo_name = "/".join(path.split("/")[:2])
    # Edit links: docs/<lang>/... on the default branch (MkDocs would guess "master").
    if config.repo_url:
        branch = os.environ.get("SITE_REPO_BRANCH", "main")
        config.edit_uri = f"edit/{branch}/docs/"
    return config


def on_template_context(
    context: dict[str, Any], template_name: str, config: MkDocsConfig
) -> dict[str, Any]:
    i18n = _i18n(config)
    if template_name != "404.html" or i18n is None or not i18n.extra_alternate:
        return context
    # The language list as configured ("/", "/de/"), not the last page's alternates; relative to the
    # site root, which the theme's url filter prefixes with the site's path on a 404 page.
    alternates = copy.deepcopy(i18n.extra_alternate)
    for alternate in alternates:
        alternate["link"] = alternate["link"].lstrip("/")
    config.extra.alternate = alternates  # type: ignore[attr-defined]  # as i18n assigns it
    return context


def on_post_template(output: str, template_name: str, config: MkDocsConfig) -> str:
    if template_name != "404.html":
        return output
    lang, default = _languages(config)
    if lang == default:
        _404["html"] = output
        return output
    return _404.get("html", output)  # a later language's build writes the same, default page


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    lang, default = _languages(config)
    if lang == default:
        return output
    # The theme resolves search/search_index.json and the result links against config.base.
    return _CONFIG_BASE.sub(
        # The trailing "/" matters: the theme resolves against new URL(base, location), and a base
        # "../de" would name a file "de", not the folder.
        lambda m: f"{m[1]}{m[2].rstrip('/') or '.'}/{lang}/{m[3]}",
        output,
        count=1,
    )


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    doc["title"] = doc.get("title", "").replace("¶", "").strip()
    doc["text"] = doc.get("text", "").replace("¶", "")
    return doc


@event_priority(
    -150
)  # after mkdocs-static-i18n's on_post_build (-100), which writes the merged index
def on_post_build(config: MkDocsConfig) -> None:
    i18n = _i18n(config)
    if i18n is None or i18n.building:  # the nested build of another language: not the last write
        return
    site = Path(config.site_dir)
    default = i18n.default_language
    others = [lg for lg in i18n.build_languages if lg != default]
    _write_redirects(site, [default, *others], default)
    merged = site / "search" / "search_index.json"
    if not merged.is_file():
        return
    index = json.loads(merged.read_text(encoding="utf-8"))
    per_lang: dict[str, list[dict[str, Any]]] = {lg: [] for lg in [default, *others]}
    for doc in index["docs"]:
        lang = next((lg for lg in others if doc["location"].startswith(f"{lg}/")), default)
        if lang != default:
            doc["location"] = doc["location"].removeprefix(f"{lang}/")
        per_lang[lang].append(_clean(doc))
    for lang, docs in per_lang.items():
        out = merged if lang == default else site / lang / "search" / "search_index.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        part = dict(index, docs=docs, config=dict(index["config"], lang=[lang]))
        out.write_text(json.dumps(part, ensure_ascii=False, separators=(",", ":")), "utf-8")
