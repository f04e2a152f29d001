"""Verification scores of rain-rate and rain-probability estimates, as the field reports them.

Categorical (event = rate ≥ τ), from the 2×2 contingency table hits a, false alarms b, misses c,
correct negatives d (Wilks 2011, Statistical Methods in the Atmospheric Sciences, ch. 8; WWRP/WGNE
JWGFVR "Forecast verification" pages): POD = a/(a+c), FAR = b/(a+b), CSI = a/(a+b+c),
F1 = 2a/(2a+b+c), frequency bias = (a+b)/(a+c), HSS = 2(ad − bc)/[(a+c)(c+d) + (a+b)(b+d)],
ETS = (a − a_r)/(a + b + c − a_r) with a_r = (a+b)(a+c)/n.
Continuous: N, Pearson CC, RMSE, bias (mean error), on valid pixels.
Probabilistic (rain probability vs observed rain ≥ 0.1 mm/h): Brier score, ROC AUC
(torchmetrics), reliability (observed frequency per forecast-probability bin, Wilks ch. 8.4).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

THRESHOLDS = (0.1, 0.5, 2.0, 5.0, 10.0)


def contingency_scores(obs: np.ndarray, pred: np.ndarray, threshold: float) -> dict[str, float]:
    """POD, FAR, CSI, F1, frequency bias, HSS, ETS (NaN when undefined) for event ≥ ``threshold``."""
    o, p = obs >= threshold, pred >= threshold
    a, b = float(np.sum(o & p)), float(np.sum(~o & p))
    c, d = float(np.sum(o & ~p)), float(np.sum(~o & ~p))
    n = a + b + c + d
    div = lambda x, y: x / y if y else float("nan")
    a_random = (a + b) * (a + c) / n if n else float("nan")
    return {"pod": div(a, a + c), "far": div(b, a + b), "csi": div(a, a + b + c), "f1": div(2 * a, 2 * a + b + c),
            "bias": div(a + b, a + c), "hss": div(2 * (a * d - b * c), (a + c) * (c + d) + (a + b) * (b + d)),
            "ets": div(a - a_random, a + b + c - a_random)}


def continuous_scores(obs: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    obs, pred = np.asarray(obs, np.float64), np.asarray(pred, np.float64)
    n = obs.size
    if n < 2:
        return {"n": float(n), "cc": float("nan"), "rmse": float("nan"), "bias": float("nan")}
    cc = float(np.corrcoef(obs, pred)[0, 1]) if obs.std() > 0 and pred.std() > 0 else float("nan")
    return {"n": float(n), "cc": cc, "rmse": float(np.sqrt(np.mean((pred - obs) ** 2))),
            "bias": float(np.mean(pred - obs))}


def probability_scores(event: np.ndarray, prob: np.ndarray, bins: int = 10) -> dict:
    """Brier score, ROC AUC and the reliability table (bin centre, mean forecast, observed frequency, count)."""
    import torch
    from torchmetrics.functional.classification import binary_auroc

    event, prob = np.asarray(event, bool), np.asarray(prob, np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    mean_prob = np.bincount(which, prob, minlength=bins) / np.maximum(counts, 1)
    observed = np.bincount(which, event.astype(float), minlength=bins) / np.maximum(counts, 1)
    auc = (float(binary_auroc(torch.from_numpy(prob), torch.from_numpy(event.astype(np.int64))))
           if 0 < event.sum() < event.size else float("nan"))
    return {"brier": float(np.mean((prob - event) ** 2)), "roc_auc": auc,
            "reliability": {"forecast": mean_prob.tolist(), "observed": observed.tolist(), "count": counts.tolist()}}


def all_scores(obs: np.ndarray, pred: np.ndarray, valid: np.ndarray, prob: np.ndarray | None = None,
               thresholds: Sequence[float] = THRESHOLDS, wet: float = 0.1) -> dict[str, float]:
    """Flat ``{score@τ: value}`` + continuous scores (+ Brier/ROC AUC with ``prob``) on valid pixels."""
    o, p = obs[valid], pred[valid]
    out = {f"{k}@{t:g}": v for t in thresholds for k, v in contingency_scores(o, p, t).items()}
    out.update(continuous_scores(o, p))
    if prob is not None:
        probs = probability_scores(o >= wet, prob[valid])
        out.update(brier=probs["brier"], roc_auc=probs["roc_auc"])
    return out
