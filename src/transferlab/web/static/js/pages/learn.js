// Learn page: the quiz, whose answers the server computes from real models.
import { api } from "../lib/api.js";
import { $, el, fmtInt } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { loaders } from "../lib/router.js";

const quizScore = {};
// A question's sentences from the catalogs (learn.q.<id>.*), with the values the server computed;
// numbers in the reader's format. The server's English text only when the catalogs lack the key.
function quizText(q, part, english) {
  const key = `learn.q.${q.id}.${part}`;
  const params = Object.fromEntries(Object.entries(q.params || {}).map(([k, v]) => [k, typeof v === "number" ? fmtInt(v) : v]));
  const text = t(key, params);
  return text === key ? english : text;
}
// a choice's label: translated when the option is a sentence, as sent when it is a name (stage7)
const optionText = (q, o) => quizText(q, `option${(q.options || []).indexOf(o)}`, String(o));
loaders.learn = async () => {
  const box = $("#quiz");
  if (box.children.length) return;
  const questions = await api("/api/learn/quiz");
  // The Lab's challenge that practises each question (none when the Lab is off).
  const practise = {};
  try {
    for (const c of await api("/api/lab/challenges")) for (const q of c.questions) practise[q] = c.id;
  } catch { /* the Lab is off on this server */ }
  questions.forEach((q, qi) => {
    const id = `q-${q.id}`;
    const verdict = el("p", { class: "verdict", "aria-live": "polite" });
    let getAnswer;
    const row = el("div", { class: "answer-row" });
    if (q.kind === "choice") {
      const fs = el("fieldset", {}, el("legend", { class: "small", text: t("learn.choose_one") }));
      q.options.forEach((o, i) => fs.append(el("label", { for: `${id}-${i}` }, el("input", { type: "radio", name: id, id: `${id}-${i}`, value: o }), optionText(q, o))));
      row.append(fs);
      getAnswer = () => ($(`input[name="${id}"]:checked`) || {}).value;
    } else {
      const input = el("input", { type: "text", id, inputmode: q.kind === "number" ? "decimal" : "text", autocomplete: "off" });
      row.append(el("label", { for: id, class: "sr-label", text: t("lab.your_answer") }), input);
      getAnswer = () => input.value;
    }
    const btn = el("button", { type: "button", text: t("lab.check"), "aria-describedby": `${id}-text`, onclick: async () => {
      const answer = getAnswer();
      if (answer === undefined || answer === "") { verdict.textContent = t("learn.answer_first"); verdict.className = "verdict"; return; }
      try {
        const r = await api("/api/learn/check", { json: { id: q.id, answer: String(answer) } });
        quizScore[q.id] = r.correct;
        verdict.className = "verdict " + (r.correct ? "correct" : "wrong");
        const expected = q.kind === "choice" ? optionText(q, r.expected) : typeof r.expected === "number" && Number.isInteger(r.expected) ? fmtInt(r.expected) : r.expected;
        const why = (r.not_a_number ? t("learn.not_a_number", { answer: JSON.stringify(answer) }) + " " : "") + quizText(q, "explanation", q.explanation);
        verdict.textContent = (r.correct ? t("lab.correct") : t("learn.not_quite", { answer: expected })) + " " + why;
        const right = Object.values(quizScore).filter(Boolean).length;
        $("#quiz-score").textContent = t("learn.score", { right, total: questions.length });
      } catch (err) { verdict.textContent = err.message; }
    } });
    row.append(btn);
    const link = practise[q.id] ? el("p", { class: "small" }, el("a", { href: `#lab/challenge:${practise[q.id]}`, class: "practise", text: t("lab.practise") })) : null;
    box.append(el("div", { class: "question", dataset: { qid: q.id } }, el("p", { id: `${id}-text` }, el("strong", { text: `Q${qi + 1}. ` }), quizText(q, "question", q.question)), row, verdict, link));
  });
};
