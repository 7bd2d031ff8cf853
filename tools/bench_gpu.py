#!/usr/bin/env python3
"""Features + masks throughput on a GPU: salient (burn, `cuda` or `wgpu`) against PyTorch eager.

`make bench-gpu` runs this on a machine with an NVIDIA GPU, in a virtual environment with torch,
torchvision, numpy and safetensors from PyPI, against `salient` built with `--features cuda`.
It writes the same seeded random ResNet-50 weights as `tools/bench_cpu.py`, loads them into
torchvision's ResNet-50, and times, per batch size, what `salient bench` times on the same file:
one forward pass (clamp, normalize, ResNet-50; logits, features and the layer4 maps), then the
soft mask of each image's predicted class's top-5 features (224×224, bilinear, pixelwise max),
read back to the host. PyTorch runs eager fp32 with TF32 off (burn computes in fp32), the masks
on the GPU. Several runs after a warm-up, synchronized; medians; each runtime in its own process
for its own peak memory. Prints one table with the ratios, the date and the device;
`--json` also writes the figures.

`--device cpu --backend flex` runs the same comparison on the CPU (a check of this script on a
machine without a GPU; the CPU reference for the README is `tools/bench_cpu.py`).
"""
import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from safetensors.numpy import load_file, save_file

from bench_common import MEAN, STD, images_per_second, random_resnet50


def torch_model(sd, device):
    model = torchvision.models.resnet50()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    return model.eval().to(device)


@torch.inference_mode()
def features_and_masks(model, x, mean, std):
    """[N,3,224,224] in [0,1] → soft masks [N,224,224] on the host."""
    m = model
    h = (x.clamp(0, 1) - mean) / std
    h = m.maxpool(m.relu(m.bn1(m.conv1(h))))
    maps = m.layer4(m.layer3(m.layer2(m.layer1(h))))  # [N, 2048, 7, 7]
    features = maps.mean(dim=(2, 3))
    logits = m.fc(features)
    cls = logits.argmax(dim=1)
    top = (features * m.fc.weight[cls]).topk(5, dim=1).indices  # [N, 5]
    sel = maps.gather(1, top[:, :, None, None].expand(-1, -1, *maps.shape[2:]))  # [N, 5, 7, 7]
    mx = sel.amax(dim=(2, 3), keepdim=True)
    sel = torch.where(mx > 0, sel / mx.clamp_min(1e-30), torch.zeros_like(sel))
    up = F.interpolate(sel, size=x.shape[2:], mode="bilinear", align_corners=False)
    return up.amax(dim=1).cpu()


def bench_torch(weights, device, batches, runs, per_run):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device(device)
    model = torch_model(load_file(weights), dev)
    mean = torch.from_numpy(MEAN).reshape(1, 3, 1, 1).to(dev)
    std = torch.from_numpy(STD).reshape(1, 3, 1, 1).to(dev)
    gen = torch.Generator().manual_seed(0)
    figures = {}
    for b in batches:
        x = torch.rand((b, 3, 224, 224), generator=gen).to(dev)

        def work():
            for _ in range(per_run):
                features_and_masks(model, x, mean, std)
            if dev.type == "cuda":
                torch.cuda.synchronize()

        figures[b] = images_per_second(work, b * per_run, runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    return {"figures": figures, "peak_rss_mb": peak, "gpu_peak_mb": gpu_peak, "device_name": name}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--salient", required=True, help="the salient binary (built with --features cuda or wgpu)")
    ap.add_argument("--backend", default="cuda", help="salient's backend: cuda, wgpu (or flex with --device cpu)")
    ap.add_argument("--device", default="cuda", help="PyTorch's device")
    ap.add_argument("--batch", default="64,256")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batches", type=int, default=4, help="batches per run")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    a = ap.parse_args()
    batches = [int(b) for b in a.batch.split(",")]
    if a.torch_only:  # child process: PyTorch alone, so its peak memory is its own
        print(json.dumps(bench_torch(a.weights, a.device, batches, a.runs, a.batches)))
        return
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("bench_gpu.py: PyTorch sees no CUDA device; on a machine without a GPU use --device cpu --backend flex")
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "resnet50-random.safetensors")
        save_file(random_resnet50(), weights)
        child = [sys.executable, __file__, "--torch-only", "--weights", weights, "--salient", a.salient, "--device", a.device,
                 "--batch", a.batch, "--runs", str(a.runs), "--batches", str(a.batches)]
        ref = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
        ours = json.loads(subprocess.run(
            [a.salient, "bench", "-w", weights, "--backend", a.backend, "--batch", a.batch, "--runs", str(a.runs),
             "--batches", str(a.batches), "--attack-steps", "0", "--json"],
            check=True, capture_output=True, text=True).stdout)
    ref_fig = {int(k): v for k, v in ref["figures"].items()}
    our_fig = {b["batch"]: b["images_per_second"] for b in ours["batches"]}
    print(f"ResNet-50, 224×224, features + top-5 masks, {ref['device_name']}, {datetime.date.today().isoformat()}")
    print(f"(median of {a.runs} runs of {a.batches} batches after a warm-up; same random weights)")
    print()
    print("| runtime | " + " | ".join(f"batch {b} (img/s)" for b in batches) + " | peak host RSS |")
    print("|---|" + "---|" * len(batches) + "---|")
    print(f"| PyTorch {torch.__version__} eager, fp32 ({a.device}) | " + " | ".join(f"{ref_fig[b]:.1f}" for b in batches)
          + f" | {ref['peak_rss_mb']:.0f} MB |")
    print(f"| salient ({ours['backend']}) | " + " | ".join(f"{our_fig[b]:.1f}" for b in batches) + f" | {ours['peak_rss_mb']:.0f} MB |")
    print("| ratio salient / PyTorch | " + " | ".join(f"{our_fig[b] / ref_fig[b]:.2f}×" for b in batches)
          + f" | {ours['peak_rss_mb'] / ref['peak_rss_mb']:.2f}× |")
    if ref["gpu_peak_mb"] is not None:
        print(f"\nPyTorch peak GPU memory: {ref['gpu_peak_mb']:.0f} MB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"pytorch": ref, "pytorch_version": torch.__version__, "salient": ours,
                       "date": datetime.date.today().isoformat()}, f, indent=2)


if __name__ == "__main__":
    main()
