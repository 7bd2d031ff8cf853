"""Cases of the Python package's tests. tests/python.rs prepares the data (with the `salient`
CLI) and runs one case per test: `python test_salient.py CASE ARGS...`; a case prints
`ok: CASE` at its end and fails with an AssertionError otherwise."""

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import salient


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def raises(exc, needle, f, *args, **kwargs):
    try:
        f(*args, **kwargs)
    except exc as e:
        check(needle in str(e), f"{exc.__name__} without {needle!r}: {e}")
        check("\n" not in str(e), f"a one-line message: {e!r}")
        return e
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"expected {exc.__name__} ({needle!r}), got {type(e).__name__}: {e}") from e
    raise AssertionError(f"expected {exc.__name__} ({needle!r}), nothing raised")


def tree(root):
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def equals_cli(weights, dataset, images, cli_eval, py_eval):
    """noise_eval with the package's own model as the callable writes the very files
    `salient eval` wrote (same seed, trials), and returns the same numbers."""
    model = salient.Model(weights)
    data = salient.Dataset(dataset, images=images, view=model.view)
    calls = []

    def classify(x):
        calls.append(x.shape)
        check(x.dtype == np.float32 and x.ndim == 4 and x.shape[1] == 3, f"images as [N, 3, S, S] float32: {x.shape}")
        check(0.0 <= x.min() and x.max() <= 1.0, "images in [0, 1]")
        return model.classify(x)

    # A plain function (not the bound method): the view and names must then be given.
    result = salient.noise_eval(
        classify, data, sigma=0.25, trials=2, seed=5, batch_size=7, class_names=model.class_names, progress=False
    )
    cli = json.loads(Path(cli_eval, "summary.json").read_text())
    for key in ("core_accuracy", "spurious_accuracy", "rcs", "rcs_ci95", "paper"):
        check(result[key] == cli[key], f"{key}: python {result[key]} != cli {cli[key]}")
    check(result["summary_json"] == Path(cli_eval, "summary.json").read_text(), "summary.json's text")
    check(0.0 < cli["core_accuracy"] < 1.0, f"a test that can fail: accuracy {cli['core_accuracy']}")
    check(cli["paper"]["rcs"]["ci95"] > 0.0, "two trials that differ")
    check(len(calls) > 10 and any(s[0] == 7 for s in calls), f"batches of 7: {calls[:5]}")
    rcs_csv = Path(cli_eval, "rcs_per_class.csv").read_text().splitlines()[1:]
    check(len(result["tables"]["rcs_per_class"]) == len(rcs_csv), "one RCS row per class")
    first = rcs_csv[0].split(",")
    row = result["tables"]["rcs_per_class"][0]
    check(
        [row["class_index"], row["class_name"], row["images"], row["rcs"]]
        == [int(first[0]), first[1], int(first[2]), float(first[6])],
        f"{row} vs {first}",
    )
    # The bound method as the callable, the report written: every file equals the CLI's.
    result = salient.noise_eval(model.classify, data, trials=2, seed=5, out=py_eval, progress=False)
    check(tree(cli_eval) == tree(py_eval), f"{tree(cli_eval)} vs {tree(py_eval)}")
    for f in tree(cli_eval):
        check(filecmp.cmp(Path(cli_eval, f), Path(py_eval, f), shallow=False), f"{f} differs from salient eval's")
    # Resuming the finished run changes nothing; another seed is another run.
    salient.noise_eval(model.classify, data, trials=2, seed=5, out=py_eval, resume=True, progress=False)
    raises(ValueError, "holds another run's data", salient.noise_eval, model.classify, data, trials=2,
           seed=6, out=py_eval, progress=False)


def spuriosity(weights, run, labels, cli_out, py_out):
    """spuriosity_gap with the package's model equals `salient spuriosity --model` on it."""
    model = salient.Model(weights)
    got = salient.spuriosity_gap(model.classify, run, labels, py_out, k=3, progress=False)
    want = json.loads(Path(cli_out, "summary.json").read_text())
    for key in ("gap", "accuracy_most_spurious", "accuracy_least_spurious", "images_per_end", "mean_gap", "k"):
        check(got[key] == want[key], f"{key}: python {got[key]} != cli {want[key]}")
    check(got["images_per_end"] >= 3, f"{got}")
    check(Path(py_out, "spuriosity.csv").read_text() == Path(cli_out, "spuriosity.csv").read_text(), "the CSV")
    # A classifier that always answers class 0 is right only on class 0's images.
    const = salient.spuriosity_gap(lambda x: np.tile(np.eye(10, dtype=np.float32)[0], (len(x), 1)), run, labels,
                                   os.path.join(py_out, "const"), k=3, view=model.view, progress=False)
    rows = Path(py_out, "const", "spuriosity.csv").read_text().splitlines()[1:]
    for row in rows:
        cells = row.split(",")
        expected = "100.000" if cells[0] == "0" else "0.000"
        check(cells[4] == expected and cells[5] == expected, f"{row}")
    check(const["gap"] == 0.0, f"{const}")


def numpy_classifier(dataset, images):
    """A classifier in numpy alone: a fixed linear map of each image's mean colour per
    quadrant. Batching does not change the noise; a constant classifier gives known numbers."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(12, 10)).astype(np.float32)

    def classify(x):
        n, _, s, _ = x.shape
        q = x.reshape(n, 3, 2, s // 2, 2, s // 2).mean(axis=(3, 5)).reshape(n, 12)
        return q @ w

    data = salient.Dataset(dataset, images=images, view=(128, 112))
    check(data.view == (128, 112), f"view {data.view}")
    a = salient.noise_eval(classify, data, trials=2, seed=1, batch_size=32, progress=False)
    b = salient.noise_eval(classify, data, trials=2, seed=1, batch_size=3, progress=False)
    check(a["summary_json"] == b["summary_json"], "batching changes nothing")
    c = salient.noise_eval(classify, data, trials=2, seed=2, progress=False)
    check(c["summary_json"] != a["summary_json"], "another seed, other noise")
    # Always class 0: each class's accuracy is 1 for class 0 and 0 for the others, noise or not.
    classes = [row["class_index"] for row in a["tables"]["rcs_per_class"]]
    const = salient.noise_eval(lambda x: np.tile(np.eye(10, dtype=np.float32)[0], (len(x), 1)), data, trials=2,
                               progress=False)
    expected = (1.0 if 0 in classes else 0.0) / len(classes)
    check(abs(const["core_accuracy"] - expected) < 1e-12, f"{const['core_accuracy']} vs {expected}")
    check(const["core_accuracy"] == const["spurious_accuracy"], "the noise changes nothing")
    check(const["paper"]["core_accuracy"]["ci95"] == 0.0, "no spread without dependence on the noise")
    # torch-like answers (an object with .detach().cpu().numpy()) are taken as well.
    class Tensor:
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    t = salient.noise_eval(lambda x: Tensor(classify(x)), data, trials=2, seed=1, progress=False)
    check(t["summary_json"] == a["summary_json"], "a tensor-like answer")


def dataset(build, images, release, mturk):
    """The dataset class over a `salient build` output and over the paper's release layout."""
    records = [json.loads(line) for line in Path(build, "index.jsonl").read_text().splitlines()]
    data = salient.Dataset(build, images=images, view=(128, 112))
    check(len(data) == len(records), f"{len(data)} items, {len(records)} records")
    seen = {(r["class"], r["feature"], r["image"]): r for r in records}
    from PIL import Image  # noqa: F401  (only when present: not required)
    for i in (0, len(data) // 2, -1):
        item = data[i]
        r = seen[(item["class"], item["feature"], item["name"])]
        check(item["label"] == r["label"] and item["source"] == r["source"], f"{item['name']}: {r}")
        png = np.asarray(Image.open(Path(build, r["mask"])).convert("L"), dtype=np.float32) / 255.0
        check(item["mask"].shape == (112, 112) and item["mask"].dtype == np.float32, str(item["mask"].shape))
        check(np.array_equal(item["mask"], png), "the mask is the stored PNG / 255")
        check(item["image"].shape == (112, 112, 3) and item["image"].dtype == np.uint8, str(item["image"].shape))
    raises(IndexError, "out of range", data.__getitem__, len(data))
    # Usable as a torch Dataset: len + integer indexing, nothing else.
    check(sum(1 for _ in (data[i] for i in range(len(data)))) == len(data), "every item reads")

    rel = salient.Dataset(release, annotations=mturk)
    check(len(rel) == 4 * 3, f"{len(rel)} masks in the release")
    check(rel.classes == [(0, "n01440764"), (325, "n02281406")], f"{rel.classes}")
    item = rel[0]
    check("image" not in item, "no images given: masks only")
    check(item["mask"].shape == (224, 224) and 0.0 <= item["mask"].min() and item["mask"].max() <= 1.0, "a mask")
    check(item["class_name"] == "tench" and item["label"] in ("core", "spurious"), f"{item['class_name']}")
    check(item["feature"] == 59 and item["rank"] == 1, f"{item['feature']} {item['rank']}")
    raises(ValueError, "give its labels with --annotations", salient.Dataset, release)


def model(weights, images):
    """The model loads as the CLI loads it and predicts what `salient predict` predicts."""
    m = salient.Model(weights)
    path = os.path.join(images, "rocket.jpg")
    cli = json.loads(subprocess.run([os.environ["SALIENT_BIN"], "predict", "--json", "-w", weights, path],
                                    capture_output=True, check=True, text=True).stdout.splitlines()[0])
    top = m.predict(path, top=5)
    check([c for c, _, _ in top] == [t["class"] for t in cli["top5"]], f"{top} vs {cli['top5']}")
    check(all(abs(p - t["prob"]) < 1e-6 for (_, _, p), t in zip(top, cli["top5"])), "probabilities")
    from PIL import Image
    pil = Image.open(path)
    check(m.predict(pil)[0][0] == top[0][0], "a PIL image as the file")
    view = m.view_of(path)
    check(view.shape == (m.view[1], m.view[1], 3), f"view {view.shape}")
    logits = m.classify(view.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
    check(np.allclose(logits[0], cli["logits"], atol=1e-5), "classify() on the view gives predict's logits")
    e = m.explain([path, pil], top=3)
    check(len(e) == 2 and len(e[0]["features"]) == 3, "two explanations of three features")
    f = e[0]["features"][0]
    check(f["mask"].shape == (m.view[1], m.view[1]) and 0.5 < f["mask"].max() <= 1.0, f"a soft mask: {f['mask'].max()}")
    check(np.array_equal(m.mask(path, f["feature"]), f["mask"]), "mask() is explain()'s mask")
    a = m.attack(path, f["feature"], steps=3, step_size=2.0)
    check(a["after"] > a["before"] and a["image"].dtype == np.uint8, f"the attack raises the feature: {a}")
    raises(ValueError, "does not exist", m.mask, path, m.num_features)


def full_size(weights, images, expected):
    """A full-size ResNet-50 from image files through the package, against PyTorch + Pillow."""
    e = json.loads(Path(expected).read_text())
    want = e["models"]["resnet50"]
    m = salient.Model(weights)
    check(m.num_features == 2048 and len(m.class_names) == 1000 and m.view == (256, 224), f"{m}")
    names = [n for n in e["images"] if Path(images, n).exists()]
    check(len(names) >= 8, f"the fixture's photos: {names}")
    views = m.view_of([str(Path(images, n)) for n in names])
    logits = m.classify(np.stack(views).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    worst = 0.0
    for name, got in zip(names, logits):
        ref = np.asarray(want["logits"][name], dtype=np.float32)
        err = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))
        check(err < 1e-4, f"{name}: logits relative error {err:.1e}")
        worst = max(worst, err)
    print(f"ResNet-50 through Python, {len(names)} photos: largest relative error of the logits {worst:.1e}")
    top = m.predict(str(Path(images, names[0])), top=1)[0][0]
    check(top == int(np.argmax(want["logits"][names[0]])), "predict's top class is PyTorch's")
    from PIL import Image
    photo = Path(images, "chelsea.png")
    check(np.array_equal(m.view_of(Image.open(photo)), m.view_of(str(photo))), "a PIL image is the file")


def bad_input(dataset, images, tmp):
    m = salient.Model(os.path.join(os.path.dirname(__file__), "..", "..", "models", "synth-robust.safetensors"))
    data = salient.Dataset(dataset, images=images, view=m.view)
    raises(salient.SalientError, "missing.pth", salient.Model, os.path.join(tmp, "missing.pth"))
    raises(ValueError, "backend", salient.Model, None, "abacus")
    raises(salient.SalientError, "nowhere", salient.Dataset, os.path.join(tmp, "nowhere"), images=images)
    raises(ValueError, "not a folder of images", salient.Dataset, dataset, images=os.path.join(tmp, "none"))
    raises(ValueError, "sigma", salient.noise_eval, m.classify, data, sigma=-1, progress=False)
    raises(ValueError, "needs the images", salient.noise_eval, m.classify, salient.Dataset(dataset, view=m.view),
           progress=False)
    raises(ValueError, "dataset was opened with", salient.noise_eval, m.classify, salient.Dataset(dataset,
           images=images), progress=False)
    raises(salient.SalientError, "logits must be [images, classes]", salient.noise_eval,
           lambda x: np.zeros((len(x), 0), np.float32), data, progress=False)
    raises(ValueError, "must return float32 logits", salient.noise_eval, lambda x: np.zeros(len(x), np.float32),
           data, progress=False)
    raises(ValueError, "logits for", salient.noise_eval, lambda x: np.zeros((len(x) + 1, 10), np.float32), data,
           progress=False)

    def boom(x):
        raise RuntimeError("boom in the classifier")

    raises(RuntimeError, "boom in the classifier", salient.noise_eval, boom, data, progress=False)
    raises(ValueError, "[height, width, 3]", m.predict, np.zeros((4, 4, 5), np.uint8))
    raises(ValueError, "float images are ambiguous", m.predict, np.zeros((4, 4, 3), np.float32))
    raises(ValueError, "must lie in 0-255", m.predict, np.full((4, 4, 3), 300, np.int32))
    raises(salient.SalientError, "garbage.jpg", m.predict, write(tmp, "garbage.jpg", b"not a jpeg"))
    # A dataset whose index points outside its root is refused, not read.
    hostile = Path(tmp, "hostile")
    hostile.mkdir()
    record = json.loads(Path(dataset, "index.jsonl").read_text().splitlines()[0])
    record["mask"] = "../../../../etc/passwd"
    Path(hostile, "index.jsonl").write_text(json.dumps(record) + "\n")
    raises(salient.SalientError, "hostile", salient.Dataset, str(hostile), images=images)


def write(tmp, name, data):
    p = os.path.join(tmp, name)
    with open(p, "wb") as f:
        f.write(data)
    return p


if __name__ == "__main__":
    name, args = sys.argv[1], sys.argv[2:]
    globals()[name](*args)
    print(f"ok: {name}")
