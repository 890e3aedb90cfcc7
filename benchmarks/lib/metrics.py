"""How a fill is scored: a digit classifier trained only on the training split (does the
fill read as the right digit?), and PSNR and SSIM over the filled pixels only (the kept
pixels are pasted back, so scoring them would flatter every method alike)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from repaint.datasets import load_digits
from repaint.errors import RepaintError

CLASSIFIER = "SVC (RBF, C=1, gamma='scale') on the grey image average-pooled to 8x8"


def classifier_features(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S, 3) -> the grey image average-pooled to 8x8, (N, 64)."""
    grey = images[..., :3].astype(np.float64).mean(axis=-1) / 255
    n, size = grey.shape[0], grey.shape[1]
    if size % 8:
        raise RepaintError(f"the classifier needs an image size divisible by 8, got {size}")
    step = size // 8
    return grey.reshape(n, 8, step, 8, step).mean(axis=(2, 4)).reshape(n, 64)


def train_classifier(size: int) -> Any:
    """The semantic judge (see CLASSIFIER), fitted on the digits the model may have seen."""
    from sklearn.svm import SVC

    images, labels = load_digits("train", size)
    return SVC(C=1.0, gamma="scale").fit(classifier_features(images), labels)


def fill_psnr(truth: np.ndarray, output: np.ndarray, keep: np.ndarray) -> float:
    """PSNR (dB, peak 255) over the filled pixels of one image; NaN if nothing was filled."""
    fill = ~keep
    if not fill.any():
        return math.nan
    error = truth[fill].astype(np.float64) - output[fill].astype(np.float64)
    mse = float(np.mean(error**2))
    return 10 * math.log10(255**2 / max(mse, 1e-10))


def fill_ssim(truth: np.ndarray, output: np.ndarray, keep: np.ndarray) -> float:
    """The SSIM map of the whole image (Gaussian window, sigma 1.5) averaged over the
    filled pixels of one image; NaN if nothing was filled."""
    from skimage.metrics import structural_similarity

    fill = ~keep
    if not fill.any():
        return math.nan
    _, ssim_map = structural_similarity(
        truth,
        output,
        channel_axis=-1,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    return float(ssim_map[fill].mean())


def item_scores(
    output: np.ndarray, truth: np.ndarray, keep: np.ndarray, labels: np.ndarray, classifier: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: whether the classifier reads the true label, fill PSNR and fill SSIM."""
    correct = classifier.predict(classifier_features(output)) == labels
    psnr = np.array([fill_psnr(t, o, k) for t, o, k in zip(truth, output, keep, strict=True)])
    ssim = np.array([fill_ssim(t, o, k) for t, o, k in zip(truth, output, keep, strict=True)])
    return correct, psnr, ssim


def nanmean(values: np.ndarray) -> float | None:
    """The mean of the finite values (an empty fill gives NaN), None if there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def score(
    output: np.ndarray,
    truth: np.ndarray,
    keep: np.ndarray,
    labels: np.ndarray,
    item_kinds: Sequence[str],
    kinds: Sequence[str],
    classifier: Any,
) -> dict[str, Any]:
    """Accuracy, fill PSNR and fill SSIM per mask kind and pooled over all items."""
    correct, psnr, ssim = item_scores(output, truth, keep, labels, classifier)
    kinds_arr = np.array(item_kinds)
    per_kind = {}
    for kind in kinds:
        select = kinds_arr == kind
        per_kind[kind] = {
            "accuracy": float(correct[select].mean()),
            "psnr": nanmean(psnr[select]),
            "ssim": nanmean(ssim[select]),
            "images": int(select.sum()),
        }
    pooled = {"accuracy": float(correct.mean()), "psnr": nanmean(psnr), "ssim": nanmean(ssim)}
    return {"per_kind": per_kind, "mean": pooled}


def format_score(row: Mapping[str, Any]) -> str:
    """`accuracy / PSNR / SSIM` of one `score` cell, `-` where a metric has no value."""
    psnr = "-" if row["psnr"] is None else f"{row['psnr']:.1f}"
    ssim = "-" if row["ssim"] is None else f"{row['ssim']:.3f}"
    return f"{row['accuracy']:.2f} / {psnr} / {ssim}"
