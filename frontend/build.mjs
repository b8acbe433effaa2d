// Bundle CodeMirror and xterm.js into src/transferlab/web/static/vendor/ (served by the app).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = new URL("../src/transferlab/web/static/vendor/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [new URL("entry.js", import.meta.url).pathname],
  bundle: true, format: "esm", minify: true, target: "es2020",
  outfile: out + "lab-vendor.js", legalComments: "linked", logLevel: "warning",
});
copyFileSync(new URL("node_modules/@xterm/xterm/css/xterm.css", import.meta.url).pathname,
             out + "xterm.css");
console.log(`frontend: wrote ${out}lab-vendor.js and xterm.css`);
