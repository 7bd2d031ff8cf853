#!/usr/bin/env python3
"""How the batch work's time grows with the number of images and with the batch size.

`make bench-scaling` runs this in the benchmark environment (numpy, safetensors, pillow,
matplotlib from PyPI). On seeded random ResNet-50 weights (as `tools/bench_cpu.py`) and seeded
synthetic photographs (500×375 JPEGs of smooth noise, about ImageNet's size and decoding cost,
in an ImageNet-layout folder of 10 classes), it times:

- `salient build` (decode, preprocess, forward pass, masks of 5 annotated features per class,
  atomic PNG/JPEG writes) over 100, 1 000 and 10 000 images: wall time and peak memory;
- `salient bench` (forward + masks, no files) at batch sizes 1 to 64.

It writes SVG and PNG plots, the figures as JSON, and prints the projected cost of the full
method over ImageNet's training split (1 281 167 images, one `discover` pass and one `build` pass)
from the measured steady-state rate.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from bench_common import random_resnet50  # noqa: E402

IMAGENET_TRAIN = 1_281_167
CLASSES = 10


def wnids():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "engine", "data", "imagenet_classes.tsv")) as f:
        rows = [line.split("\t")[0] for line in f if line.strip() and not line.startswith("#")]
    return rows[:CLASSES]


def write_images(root, count, seed=0):
    """`count` JPEGs spread over the classes; smooth noise compresses like a photograph."""
    done = os.path.join(root, ".complete")
    if os.path.exists(done):
        with open(done) as f:
            if f.read().strip() == str(count):
                return
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    classes = wnids()
    for i in range(count):
        wnid = classes[i % CLASSES]
        os.makedirs(os.path.join(root, wnid), exist_ok=True)
        coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(coarse).resize((500, 375), Image.BICUBIC)
        fine = rng.integers(-12, 13, (375, 500, 3))
        img = Image.fromarray(np.clip(np.asarray(img, np.int16) + fine, 0, 255).astype(np.uint8))
        img.save(os.path.join(root, wnid, f"{wnid}_{i:06d}.JPEG"), quality=90)
    with open(done, "w") as f:
        f.write(str(count))


def time_build(salient, weights, images, annotations, out, batch):
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([salient, "build", "-w", weights, "--images", images, "--annotations", annotations, "-o", out,
                    "--batch-size", str(batch), "--per-feature", "65"], check=True, capture_output=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024


def plot(figures, path):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    n = np.array([r["images"] for r in figures["build"]], float)
    w = np.array([r["wall_s"] for r in figures["build"]], float)
    a.loglog(n, w, "o-", color="#c2410c", label="salient build (measured)")
    rate = figures["steady_images_per_second"]
    xs = np.array([n.min(), IMAGENET_TRAIN])
    a.loglog(xs, xs / rate, "--", color="#999", label=f"linear at {rate:.1f} img/s")
    a.axvline(IMAGENET_TRAIN, color="#ccc", lw=1)
    a.text(IMAGENET_TRAIN, w.min(), " ImageNet train", rotation=90, va="bottom", ha="right", color="#777", fontsize=8)
    a.set_xlabel("images")
    a.set_ylabel("wall time (s)")
    a.set_title("Time vs images (batch 32)")
    a.grid(True, which="both", alpha=0.3)
    a.legend(fontsize=8)
    bs = [r["batch"] for r in figures["bench"]["batches"]]
    ips = [r["images_per_second"] for r in figures["bench"]["batches"]]
    b.semilogx(bs, ips, "o-", color="#1d4ed8", base=2)
    b.set_xticks(bs, [str(x) for x in bs])
    b.set_ylim(0, max(ips) * 1.2)
    b.set_xlabel("batch size")
    b.set_ylabel("images / s")
    b.set_title("Throughput vs batch size (features + masks)")
    b.grid(True, alpha=0.3)
    fig.suptitle(f"ResNet-50 on {figures['machine']} — salient {figures['backend']}", fontsize=10)
    fig.tight_layout()
    for ext in ("svg", "png"):
        fig.savefig(f"{path}.{ext}", dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--salient", required=True, help="the salient binary")
    ap.add_argument("--work", required=True, help="folder for the images and runs (reused between runs)")
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--batch", default="1,2,4,8,16,32,64")
    ap.add_argument("--plot", required=True, help="plot path without extension (.svg and .png are written)")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    weights = os.path.join(a.work, "resnet50-random.safetensors")
    if not os.path.exists(weights):
        save_file(random_resnet50(), weights)
    annotations = os.path.join(a.work, "annotations.csv")
    with open(annotations, "w") as f:
        f.write("class,feature,label\n")
        for c in range(CLASSES):
            for k in range(5):
                f.write(f"{c},{(c * 37 + k * 101) % 2048},{'spurious' if k % 2 else 'core'}\n")
    machine = f"{os.cpu_count()} CPU threads, {platform.machine()}"
    figures = {"machine": machine, "date": time.strftime("%Y-%m-%d"), "build": []}
    for size in (int(s) for s in a.sizes.split(",")):
        images = os.path.join(a.work, f"images-{size}")
        write_images(images, size)
        wall, cpu, rss = time_build(a.salient, weights, images, annotations, os.path.join(a.work, "out"), 32)
        print(f"build {size:>6} images: {wall:8.1f} s wall, {cpu:8.1f} s CPU, {size / wall:5.2f} img/s, peak {rss:.0f} MB", flush=True)
        figures["build"].append({"images": size, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss})
    shutil.rmtree(os.path.join(a.work, "out"), ignore_errors=True)
    bench = json.loads(subprocess.run(
        [a.salient, "bench", "-w", weights, "--batch", a.batch, "--runs", "3", "--batches", "2", "--attack-steps", "0", "--json"],
        check=True, capture_output=True, text=True).stdout)
    figures["bench"] = bench
    figures["backend"] = bench["backend"]
    for r in bench["batches"]:
        print(f"bench batch {r['batch']:>3}: {r['images_per_second']:.2f} img/s")
    # Steady state: the rate between the two largest runs (start-up and the first batches cancel).
    (n0, w0), (n1, w1) = [(r["images"], r["wall_s"]) for r in figures["build"][-2:]]
    rate = (n1 - n0) / (w1 - w0)
    figures["steady_images_per_second"] = rate
    hours = 2 * IMAGENET_TRAIN / rate / 3600
    figures["imagenet_train_two_passes_hours"] = hours
    print(f"\nsteady state: {rate:.2f} img/s; ImageNet train split, discover + build (2 passes of {IMAGENET_TRAIN} "
          f"images): {hours:.0f} h on this machine")
    plot(figures, a.plot)
    with open(a.plot + ".json", "w") as f:
        json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
