// MathJax 3 configuration, loaded before the vendored assets/vendor/mathjax/tex-mml-chtml.js (both only on
// pages with math: docs/hooks/mathjax.py).
//
// Two kinds of math are typeset, and nothing else on the page:
//  * Markdown pages and docstrings: pymdownx.arithmatex (generic mode) wraps every formula in
//    <span|div class="arithmatex"> with \( \) or \[ \] delimiters.
//  * Notebook pages: mkdocs-jupyter leaves the Markdown cells' $...$ and $$...$$ as they are, inside
//    <div class="jp-RenderedMarkdown">, exactly as Jupyter shows them; their headings reach the
//    navigation and the table of contents (<span class="md-ellipsis">) with the same delimiters.
// Code cells and their outputs are never touched, so a "$" in a printed string stays a "$".
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
    // Numbered equations: \begin{equation}/align get (1), (2), ...; \tag{24} gives the number a
    // paper uses ("Eq. 24" of DeepSeek-V3), so the text can cite it.
    tags: "ams",
  },
  // MathJax skips an element whose class matches ignoreHtmlClass, with everything inside it, unless
  // the class matches processHtmlClass. ".+" (any class at all) rather than Material's usual ".*|":
  // that one also matches elements *without* a class, such as the <p> inside a notebook's Markdown
  // cell, and would skip the notebooks' math.
  options: {
    ignoreHtmlClass: ".+",
    // md-ellipsis: nav and table-of-contents titles, which come from notebook headings such as
    // "The loss: $\lambda$ or $\lambda / D$?".
    processHtmlClass: "arithmatex|jp-RenderedMarkdown|md-ellipsis",
  },
  startup: {
    pageReady: () => MathJax.startup.defaultPageReady().then(markWideInlineMath),
  },
};

// Inline math cannot break across lines; one wider than its paragraph would widen the whole page on a
// phone. It is marked, and extra.css gives it a line of its own that scrolls.
function markWideInlineMath() {
  for (const el of document.querySelectorAll('mjx-container:not([display="true"])')) {
    if (el.parentElement.closest("mjx-container")) continue; // the copy for screen readers
    const block = el.closest("p, li, td, dd, div");
    if (block && el.getBoundingClientRect().width > block.clientWidth) el.classList.add("mjx-wide");
  }
}

// Material for MkDocs announces each (re)loaded page on document$; typeset again when it does.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return;
    MathJax.startup.promise.then(() => {
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      MathJax.texReset();
      return MathJax.typesetPromise().then(markWideInlineMath);
    });
  });
}
