// Renders LaTeX with KaTeX and with MathJax 3 and reports what each refuses.
// Input (stdin): a JSON list of LaTeX strings (display math, without $$).
// Output (stdout): a JSON list of {"katex": error or null, "mathjax": error or null}.
// MathJax gets the packages of a notebook (base, ams, boldsymbol, newcommand) and its default
// buffer (maxBuffer 5 kB); every error is thrown, none rendered as red text.
"use strict";
const katex = require("katex");
const {mathjax} = require("mathjax-full/js/mathjax.js");
const {TeX} = require("mathjax-full/js/input/tex.js");
const {SVG} = require("mathjax-full/js/output/svg.js");
const {liteAdaptor} = require("mathjax-full/js/adaptors/liteAdaptor.js");
const {RegisterHTMLHandler} = require("mathjax-full/js/handlers/html.js");
require("mathjax-full/js/input/tex/base/BaseConfiguration.js");
require("mathjax-full/js/input/tex/ams/AmsConfiguration.js");
require("mathjax-full/js/input/tex/boldsymbol/BoldsymbolConfiguration.js");
require("mathjax-full/js/input/tex/newcommand/NewcommandConfiguration.js");

const adaptor = liteAdaptor();
RegisterHTMLHandler(adaptor);
const tex = new TeX({
  packages: ["base", "ams", "boldsymbol", "newcommand"],
  formatError: (jax, err) => { throw err; },
});
const page = mathjax.document("", {InputJax: tex, OutputJax: new SVG({fontCache: "none"})});

function withKatex(latex) {
  try {
    katex.renderToString(latex, {displayMode: true, throwOnError: true, strict: "error"});
    return null;
  } catch (e) {
    return String(e.message || e);
  }
}

function withMathjax(latex) {
  try {
    const node = page.convert(latex, {display: true});
    const svg = adaptor.outerHTML(node);
    if (svg.includes("data-mjx-error") || svg.includes("merror")) {
      return "MathJax rendered an error box";
    }
    return null;
  } catch (e) {
    return String(e.message || e);
  }
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const items = JSON.parse(input);
  const out = items.map((latex) => ({katex: withKatex(latex), mathjax: withMathjax(latex)}));
  process.stdout.write(JSON.stringify(out));
});
