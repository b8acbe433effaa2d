"""Self-check questions for the Learn page, with answers computed by the library.

The numbers in questions and answers come from real models (architecture only, random
weights: shapes and counts do not depend on weights), so they stay right when a backbone or
a default changes.

Each question's text is English here (for the API and the tests) and, for the page, a message
key per question in the catalogs (static/i18n: learn.q.<id>.question / .explanation / .option<i>)
with ``params``: the computed values the sentences hold. Numbers go as numbers (the page formats
them per locale); values that sit inside code (``Linear(512, 7)``, ``6e-05``) go as strings.
"""

from __future__ import annotations

import math
import re


def _norm_layer(text: str) -> str:
    t = text.strip().lower().replace("torch.nn.", "").replace("nn.", "")
    t = re.sub(r"in_features\s*=|out_features\s*=|,\s*bias\s*=\s*true", "", t)
    return re.sub(r"\s+", "", t)


def build_quiz() -> list[dict]:
    from ..finetune.freeze import train_top, unfreeze_next
    from ..finetune.param_groups import group_learning_rates
    from ..models.factory import DEFAULT_MODEL, create_model
    from ..models.summary import summarize

    questions = []

    r18 = create_model("resnet18", weights="random", num_classes=7)
    s = summarize(r18, shapes=False)
    questions.append({
        "id": "new-layer", "kind": "text", "topic": "pretrained-features",
        "question": f"A ResNet-18 body outputs {s.head_in_features} features and your dataset "
                    "has 7 classes. What is the new layer? (PyTorch notation)",
        "params": {"features": str(s.head_in_features)},
        "answer": f"Linear({s.head_in_features}, {s.head_out_features})",
        "explanation": "The pretrained body ends in pooled features; transfer learning replaces "
                       "the 1000-class ImageNet classifier with a new Linear layer from those "
                       "features to your classes.",
    })

    lite = create_model(DEFAULT_MODEL, weights="random", num_classes=4)
    head_params = sum(p.numel() for p in lite.head.parameters())
    feats = lite.num_features
    body_params = sum(p.numel() for p in lite.body.parameters())
    questions.append({
        "id": "head-params", "kind": "number", "topic": "feature-extraction",
        "question": f"{DEFAULT_MODEL}'s body outputs {feats} features. In feature extraction "
                    "for 4 classes only the new head trains. How many parameters is that?",
        "params": {"model": DEFAULT_MODEL, "features": str(feats), "head_params": head_params,
                   "body_params": body_params},
        "answer": head_params,
        "explanation": f"A Linear({feats}, 4) layer has {feats} × 4 weights plus 4 biases = "
                       f"{head_params}; the {body_params:,} "
                       "body parameters stay frozen.",
    })

    train_top(lite, 0)
    first = unfreeze_next(lite)
    questions.append({
        "id": "unfreeze-first", "kind": "choice", "topic": "feature-extraction-vs-fine-tuning",
        "question": f"Gradual unfreezing of {DEFAULT_MODEL}: after the head, which layer group "
                    "is unfrozen first?",
        "params": {"model": DEFAULT_MODEL},
        "options": lite.group_names[:-1],
        "answer": first,
        "explanation": "The top groups hold the most task-specific features, so they adapt "
                       "first; the stem's edges and colours are generic and change last.",
    })

    names = lite.group_names
    lrs = group_learning_rates(names, head_lr=1e-4, decay=0.6)
    top = names[-2]
    questions.append({
        "id": "discriminative-lr", "kind": "number", "topic": "discriminative-lrs",
        "question": f"Discriminative learning rates: the head trains at 1e-4 and each group "
                    f"below gets 0.6× the rate of the one above. What rate does {top} (the top "
                    "body group) get?",
        "params": {"top": top, "lr_top": f"{lrs[top]:.3g}", "stem": names[0],
                   "lr_stem": f"{lrs[names[0]]:.2g}"},
        "answer": lrs[top],
        "explanation": f"head_lr × decay^depth = 1e-4 × 0.6 = {lrs[top]:.3g}; the stem "
                       f"({names[0]}) gets {lrs[names[0]]:.2g}.",
    })

    train_top(lite, None)  # fine-tune every group...
    lite.train()  # ...in training mode, with the default BatchNorm policy
    top_bn = next(m for name in lite.group(names[-2]).module_names
                  for m in lite.get_submodule(name).modules()
                  if m.__class__.__name__.startswith("BatchNorm"))
    questions.append({
        "id": "batchnorm", "kind": "choice", "topic": "catastrophic-forgetting",
        "question": "Fine-tuning every group with the default BatchNorm policy: what happens "
                    "to the running mean and variance of the BatchNorm layers of the top "
                    "group when the model trains?",
        "options": ["they keep their pretrained values", "they update from the new data"],
        "answer": ("they update from the new data" if top_bn.training
                   else "they keep their pretrained values"),
        "explanation": "The default policy (eval) keeps every BatchNorm layer in inference "
                       "mode, trainable or not; only its scale and shift learn. With batch "
                       "statistics, a few small batches of new data would replace what was "
                       "learned on ImageNet, and the features the probe was fitted on would "
                       "shift before any weight moved (--bn freeze or train to allow it).",
    })

    questions.append({
        "id": "early-stopping", "kind": "choice", "topic": "early-stopping",
        "question": "While fine-tuning, the training loss keeps falling but the validation "
                    "loss has risen for several epochs. What stops the run and keeps the best "
                    "weights?",
        "options": ["early stopping (patience)", "more epochs", "a higher learning rate"],
        "answer": "early stopping (patience)",
        "explanation": "Rising validation loss means the model is overfitting or forgetting; "
                       "early stopping ends the run after `patience` epochs without "
                       "improvement and restores the best epoch's weights.",
    })
    return questions


def check(question: dict, answer: str) -> dict:
    expected = question["answer"]
    if question["kind"] == "number":
        try:
            value = float(answer.replace(",", "").replace("_", "").strip())
        except ValueError:
            return {"id": question["id"], "correct": False, "expected": expected,
                    "not_a_number": True,
                    "explanation": f"{answer!r} is not a number. " + question["explanation"]}
        correct = math.isclose(value, float(expected), rel_tol=1e-3, abs_tol=1e-12)
    elif question["kind"] == "text":
        correct = _norm_layer(answer) == _norm_layer(str(expected))
    else:
        correct = answer.strip() == str(expected)
    return {"id": question["id"], "correct": correct, "expected": expected,
            "explanation": question["explanation"]}
