"""ECE, its binning, and temperature scaling on logits whose miscalibration is known."""

import pytest
import torch

from transferlab.inspect.calibration import (
    expected_calibration_error,
    fit_temperature,
    plot_reliability,
    reliability_bins,
)


def test_ece_by_hand():
    # two images at confidence 0.9 (one right), two at 0.6 (both right): bins 14 and 9
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = torch.tensor([0, 1, 0, 1])
    ece = expected_calibration_error(probs, labels, bins=10)
    assert ece == pytest.approx(0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6))
    bins = reliability_bins(probs, labels, bins=10)
    assert [b["count"] for b in bins] == [0] * 5 + [2] + [0] * 2 + [2, 0]
    assert sum(b["count"] for b in bins) == 4


def _overconfident(n=4000, classes=5, true_t=3.0, seed=0):
    """Labels drawn from softmax(z); the model reports z * true_t (overconfident)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, classes, generator=g) * 1.5
    labels = torch.multinomial(z.softmax(1), 1, generator=g).squeeze(1)
    return z * true_t, labels


def test_temperature_recovers_the_scale_and_lowers_ece():
    logits, labels = _overconfident()
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(logits.softmax(1), labels)
    after = expected_calibration_error((logits / t).softmax(1), labels)
    assert before > 0.1 and after < before / 3
    # argmax is unchanged: accuracy cannot move
    assert torch.equal((logits / t).argmax(1), logits.argmax(1))


def test_temperature_of_calibrated_logits_is_one_and_works_in_inference_mode():
    logits, labels = _overconfident(true_t=1.0, seed=1)
    with torch.inference_mode():
        logits = logits.clone()
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.1)
    assert fit_temperature(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)) == 1.0


def test_reliability_diagram_is_written(tmp_path):
    logits, labels = _overconfident(n=300)
    path = plot_reliability((logits / 3).softmax(1), labels, tmp_path / "r.png",
                            before=logits.softmax(1))
    assert path.stat().st_size > 5000
