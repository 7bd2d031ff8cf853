"""Salient from Python: find the spurious features an image classifier relies on, and test any
classifier's reliance on them (the Salient ImageNet noise test, Singla & Feizi, ICLR 2022).

    import salient
    model = salient.Model()                      # as the CLI: $SALIENT_WEIGHTS, fetch-model's file, built-in
    model.predict(["photo.jpg"])                  # [[(class, name, probability), ...]]
    data = salient.Dataset("dataset/", images="imagenet/val")
    result = salient.noise_eval(my_classifier, data)    # any callable: images -> logits
    result["rcs"]["mean"], result["rcs"]["ci95"]

The work runs in Rust (the same code as the `salient` command line) with the GIL released.
Images may be file paths, PIL images or numpy arrays ([H, W, 3] uint8, [H, W] gray, or RGBA).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ._salient import Dataset, SalientError, __version__
from ._salient import Model as _Model
from ._salient import noise_eval as _noise_eval
from ._salient import spuriosity_gap as _spuriosity_gap

__all__ = ["Model", "Dataset", "SalientError", "noise_eval", "spuriosity_gap", "__version__"]

IMAGENET_VIEW = (256, 224)


def _image(x: Any) -> Any:
    """A path stays a path (decoded in Rust exactly as the CLI decodes it); anything else
    becomes [H, W, 3] uint8."""
    if isinstance(x, (str, os.PathLike)):
        return os.fspath(x)
    if hasattr(x, "convert") and hasattr(x, "mode"):  # a PIL image
        x = x.convert("RGB")
    a = np.asarray(x)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise ValueError(f"an image must be [height, width, 3] RGB (or gray, or RGBA), not shape {a.shape}")
    if a.shape[-1] == 4:
        a = a[..., :3]
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            raise ValueError("float images are ambiguous: give uint8 pixels (0-255) or a PIL image")
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(f"pixel values must lie in 0-255, not {a.min()}-{a.max()}")
        a = a.astype(np.uint8)
    return np.ascontiguousarray(a)


def _images(x: Any) -> tuple[list, bool]:
    """A list of images, and whether one image was given."""
    if isinstance(x, (list, tuple)):
        return [_image(i) for i in x], False
    return [_image(x)], True


def _logits(y: Any) -> np.ndarray:
    """A classifier's answer as float32 [N, classes]: numpy, torch (any device), lists."""
    if hasattr(y, "detach"):
        y = y.detach()
    if hasattr(y, "cpu"):
        y = y.cpu()
    if hasattr(y, "float") and not isinstance(y, np.ndarray):
        y = y.float()
    if hasattr(y, "numpy") and not isinstance(y, np.ndarray):
        y = y.numpy()
    return np.ascontiguousarray(np.asarray(y, dtype=np.float32))


def _one_or_many(result: list, single: bool) -> Any:
    return result[0] if single else result


class Model(_Model):
    """A classifier of the ResNet family, loaded from any checkpoint the CLI reads (the
    robustness library's `imagenet_l2_3_0.pt`, torchvision or timm state dicts, safetensors).

    `Model()` loads what `salient` would: `$SALIENT_WEIGHTS`, else the file
    `salient fetch-model` saved, else the built-in model of the synthetic benchmark (with a
    warning). `backend`: "auto", "flex" (CPU), or a GPU backend compiled in.

    Every method takes one image or a list (paths, PIL images, numpy arrays) and answers in
    kind. Attributes: `class_names`, `view` ((resize, crop)), `num_features`, `source`,
    `fingerprint` (the weights' SHA-256).
    """

    def view_of(self, images: Any) -> Any:
        """The view the model sees: [crop, crop, 3] uint8 (Resize then CenterCrop, bit-exact
        with torchvision on PIL)."""
        imgs, single = _images(images)
        return _one_or_many(super().view_of(imgs), single)

    def predict(self, images: Any, top: int = 5) -> Any:
        """The `top` most probable classes: [(class, name, probability), ...] per image."""
        imgs, single = _images(images)
        return _one_or_many(super().predict(imgs, top), single)

    def explain(self, images: Any, top: int = 5, target: Optional[int] = None) -> Any:
        """The `top` features by r·w for the predicted class (or `target`): a dict per image
        with `class`, `name`, `probability` and `features` (`feature`, `importance`,
        `activation`, `mask` [crop, crop] float32 in [0, 1])."""
        imgs, single = _images(images)
        return _one_or_many(super().explain(imgs, top, target), single)

    def mask(self, images: Any, feature: Any) -> Any:
        """The soft mask of `feature` (an index, or several: their pixelwise max) on each image:
        [crop, crop] float32 in [0, 1]."""
        features = [int(f) for f in feature] if isinstance(feature, (list, tuple)) else [int(feature)]
        imgs, single = _images(images)
        return _one_or_many(super().mask(imgs, features), single)

    def attack(self, images: Any, feature: int, steps: int = 100, step_size: float = 10.0) -> Any:
        """The feature attack (gradient ascent on `feature`): per image a dict with `image`
        ([crop, crop, 3] uint8), `before` and `after` (the feature's value)."""
        imgs, single = _images(images)
        return _one_or_many(super().attack(imgs, int(feature), int(steps), float(step_size)), single)


def noise_eval(
    classify: Callable[[np.ndarray], Any],
    dataset: Dataset,
    sigma: float = 0.25,
    trials: int = 3,
    seed: int = 0,
    *,
    batch_size: int = 32,
    mask_quirk: bool = False,
    view: Optional[tuple] = None,
    class_names: Optional[Sequence[str]] = None,
    out: Optional[str] = None,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """The paper's noise test of any classifier, exactly as `salient eval` runs it.

    `classify` takes a float32 numpy array [N, 3, S, S] of images in [0, 1] (RGB, *not*
    normalized: normalize inside it, as your model expects) and returns logits [N, classes]
    (numpy, a torch tensor on any device, or anything numpy can read). A `salient.Model`'s
    `classify` method fits as it is.

    Gaussian noise (std `sigma`) is added inside the core regions of each class's images
    (the accuracy left is the *spurious accuracy*) and inside the spurious regions (*core
    accuracy*); `trials` seeded draws give a 95% interval. The noise is the same as
    `salient eval --sigma --trials --seed` draws, so the numbers equal the CLI's.

    `view`: (resize, crop) of the images the classifier sees; by default the model's when
    `classify` is a `salient.Model` method, else ImageNet's (256, 224) — it must be the view
    the dataset was opened with. `out`: also write the CLI's report files there
    (per-class CSVs, summary.json, core_vs_spurious.svg); `resume` continues a stopped run.

    Returns summary.json's fields — `rcs` with `rcs_ci95` (a bootstrap interval over classes),
    `core_accuracy` and `spurious_accuracy` of the group's construction (the same images, noise on
    the dilated core region vs its complement), and `paper` (the paper's construction: its
    accuracies and RCS over trials) — plus `tables` (the per-class CSVs as lists of dicts),
    `classes` (per-class counts) and `summary_json` (summary.json's exact text).
    """
    if not callable(classify):
        raise TypeError("classify must be a callable from images [N, 3, S, S] to logits [N, classes]")
    bound = getattr(classify, "__self__", None)
    if view is None:
        view = bound.view if isinstance(bound, _Model) else dataset.view
    if class_names is None and isinstance(bound, _Model):
        class_names = bound.class_names
    model_id = bound.fingerprint if isinstance(bound, _Model) else _callable_id(classify)

    def call(x: np.ndarray) -> np.ndarray:
        return _logits(classify(x))

    out_dict = _noise_eval(
        call,
        dataset,
        float(sigma),
        int(trials),
        int(seed),
        int(batch_size),
        bool(mask_quirk),
        tuple(int(v) for v in view),
        list(class_names) if class_names is not None else None,
        os.fspath(out) if out is not None else None,
        bool(resume),
        model_id,
        bool(progress),
    )
    result = json.loads(out_dict["summary_json"])
    result.update(out_dict)
    return result


def spuriosity_gap(
    classify: Callable[[np.ndarray], Any],
    run: str,
    annotations: str,
    out: str,
    k: int = 100,
    *,
    view: Optional[tuple] = None,
    batch_size: int = 32,
    progress: bool = True,
) -> dict:
    """Moayeri et al.'s spurious gap of any classifier, as `salient spuriosity --model` measures it.

    `run` is a `salient discover` output on the split to measure (the validation set, as the
    paper does): each class's images are ranked by the mean z-score of its spurious features
    (labels from `annotations`), and `classify` (as for `noise_eval`) is run on the `k` most
    and `k` least spurious images of every class. Returns summary.json's fields: `gap` (pooled
    accuracy on the most spurious minus on the least spurious), both accuracies,
    `images_per_end`, and `mean_gap` (the mean of the per-class gaps). Writes
    spuriosity.csv, rankings/ and summary.json into `out`.
    """
    if not callable(classify):
        raise TypeError("classify must be a callable from images [N, 3, S, S] to logits [N, classes]")
    bound = getattr(classify, "__self__", None)
    if view is None:
        view = bound.view if isinstance(bound, _Model) else IMAGENET_VIEW
    model_id = bound.fingerprint if isinstance(bound, _Model) else _callable_id(classify)

    def call(x: np.ndarray) -> np.ndarray:
        return _logits(classify(x))

    text = _spuriosity_gap(
        call,
        os.fspath(run),
        os.fspath(annotations),
        os.fspath(out),
        int(k),
        tuple(int(v) for v in view),
        int(batch_size),
        model_id,
        bool(progress),
    )
    return json.loads(text)


def _callable_id(f: Any) -> str:
    """What names a callable in a run manifest (stable across processes: no addresses)."""
    name = getattr(f, "__qualname__", None) or type(f).__qualname__
    return f"python:{getattr(f, '__module__', '') or type(f).__module__}.{name}"
