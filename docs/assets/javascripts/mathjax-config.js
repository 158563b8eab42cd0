// MathJax 3 configuration, loaded before the vendored assets/vendor/mathjax/tex-mml-chtml.js.
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
};

// Material for MkDocs announces each (re)loaded page on document$; typeset again when it does.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return;
    MathJax.startup.promise.then(() => {
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      MathJax.texReset();
      return MathJax.typesetPromise();
    });
  });
}
