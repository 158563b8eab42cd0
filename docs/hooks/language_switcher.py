"""MkDocs hook: the language switcher's links are relative, so the site works under any base path.

mkdocs-static-i18n points the switcher at the same page in the other language — except on the two
home pages, where it keeps the links from its language list: ``/`` and ``/de/``. Those are absolute
paths; on a project site (``https://<owner>.github.io/<repo>/``), or when the built site is opened
from a sub-folder, they lead to the wrong place. This hook, running after i18n's ``on_page_context``
(priority 50), turns every site-absolute switcher link into a site-relative one (``.``, ``de/``),
which Material's template then makes relative to the page like any other link.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page


@event_priority(0)
def on_page_context(
    context: dict[str, Any], page: Page, config: MkDocsConfig, nav: Navigation
) -> dict[str, Any]:
    base = urlsplit(config.site_url or "").path.rstrip("/")  # "/repo" on a project site, else ""
    # i18n assigns the list as an attribute (config.extra.alternate = ...), which is what the theme
    # reads; config.extra["alternate"] may still hold the list it started from.
    for alternate in getattr(config.extra, "alternate", None) or []:
        link = alternate.get("link", "")
        if link.startswith("/") and not link.startswith("//"):
            link = link.removeprefix(base).lstrip("/")
            alternate["link"] = link or "."
    return context
