// What the Lab page needs from npm, bundled into one ES module by build.mjs.
export { EditorView, basicSetup } from "codemirror";
export { keymap } from "@codemirror/view";
export { EditorState, Prec } from "@codemirror/state";
export { python } from "@codemirror/lang-python";
export { Terminal } from "@xterm/xterm";
