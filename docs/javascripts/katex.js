// Render the $...$ and \[...\] that pymdownx.arithmatex leaves in each page (generic
// mode), on first load and after each instant navigation.
function renderMath() {
  if (typeof renderMathInElement !== "function") return;
  renderMathInElement(document.body, {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    throwOnError: false,
  });
}
if (typeof document$ !== "undefined") {
  document$.subscribe(renderMath);
} else {
  window.addEventListener("load", renderMath);
}
