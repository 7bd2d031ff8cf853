#!/usr/bin/env python3
"""Features + masks throughput: salient (burn) against ONNX Runtime and PyTorch eager on the CPU,
same weights, same run.

`make bench` runs this in a virtual environment with numpy, onnx, onnxruntime, torch and
safetensors from PyPI. It writes seeded random ResNet-50 weights (torchvision layout, non-trivial
batch norms) as safetensors, builds the identical network as an ONNX graph and as PyTorch
functional calls (clamp, normalize, ResNet-50 with its batch norms, returning logits, features and
the layer4 maps), and times, per batch size, one forward pass per batch plus the soft mask of each
image's predicted class's top-5 features — the work `salient bench` times on the same file.
Several runs after a warm-up; medians; each runtime in its own process, for its own peak memory.
Prints one table with the ratios; `--json` also writes the figures.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

from bench_common import LAYERS, MEAN, STD, bilinear_matrix, images_per_second, masks, random_resnet50


def onnx_resnet50(sd):
    """The same network as an ONNX graph: outputs logits [N,1000], features [N,2048], maps [N,2048,7,7]."""
    nodes, inits = [], []
    for k, v in sd.items():
        inits.append(numpy_helper.from_array(v, k))
    inits += [
        numpy_helper.from_array(np.float32(0.0).reshape(()), "zero"),
        numpy_helper.from_array(np.float32(1.0).reshape(()), "one"),
        numpy_helper.from_array(MEAN.reshape(1, 3, 1, 1), "mean"),
        numpy_helper.from_array(STD.reshape(1, 3, 1, 1), "std"),
    ]
    count = [0]

    def fresh():
        count[0] += 1
        return f"t{count[0]}"

    def conv_bn(x, conv, bn, k, stride, relu):
        y = fresh()
        nodes.append(helper.make_node("Conv", [x, conv + ".weight"], [y], kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4))
        z = fresh()
        nodes.append(helper.make_node("BatchNormalization", [y] + [f"{bn}.{n}" for n in ["weight", "bias", "running_mean", "running_var"]], [z], epsilon=1e-5))
        if relu:
            r = fresh()
            nodes.append(helper.make_node("Relu", [z], [r]))
            return r
        return z

    x = fresh()
    nodes.append(helper.make_node("Clip", ["input", "zero", "one"], [x]))
    y = fresh()
    nodes.append(helper.make_node("Sub", [x, "mean"], [y]))
    x = fresh()
    nodes.append(helper.make_node("Div", [y, "std"], [x]))
    x = conv_bn(x, "conv1", "bn1", 7, 2, True)
    y = fresh()
    nodes.append(helper.make_node("MaxPool", [x], [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x = y
    for s, n in enumerate(LAYERS):
        for b in range(n):
            p = f"layer{s + 1}.{b}"
            stride = 2 if s > 0 and b == 0 else 1
            h = conv_bn(x, p + ".conv1", p + ".bn1", 1, 1, True)
            h = conv_bn(h, p + ".conv2", p + ".bn2", 3, stride, True)
            h = conv_bn(h, p + ".conv3", p + ".bn3", 1, 1, False)
            short = conv_bn(x, p + ".downsample.0", p + ".downsample.1", 1, stride, False) if b == 0 else x
            a = fresh()
            nodes.append(helper.make_node("Add", [h, short], [a]))
            x = "maps" if (s == 3 and b == n - 1) else fresh()
            nodes.append(helper.make_node("Relu", [a], [x]))
    g = fresh()
    nodes.append(helper.make_node("GlobalAveragePool", ["maps"], [g]))
    nodes.append(helper.make_node("Flatten", [g], ["features"]))
    nodes.append(helper.make_node("Gemm", ["features", "fc.weight", "fc.bias"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes,
        "resnet50",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 2048]),
            helper.make_tensor_value_info("maps", TensorProto.FLOAT, ["N", 2048, 7, 7]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def batches_per_run(batch, batches, min_images):
    """Batches in one timed run: at least `batches`, and at least `min_images` images."""
    return max(batches, -(-min_images // batch))


def bench_ort(onnx_path, sd, batches, runs, per_run):
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    up = bilinear_matrix(7, 224)
    fc = sd["fc.weight"]
    rng = np.random.default_rng(0)
    figures = {}
    for b in batches:
        x = rng.random((b, 3, 224, 224), dtype=np.float32)
        n = per_run(b)

        def work():
            for _ in range(n):
                logits, features, maps = sess.run(None, {"input": x})
                masks(logits, features, maps, fc, up)

        figures[b] = images_per_second(work, b * n, runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures, peak


def bench_torch(sd, batches, runs, per_run):
    """PyTorch eager, inference mode, all CPU threads: the same network as `onnx_resnet50`."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(os.cpu_count())
    t = {k: torch.from_numpy(v) for k, v in sd.items()}
    mean, std = torch.from_numpy(MEAN).view(1, 3, 1, 1), torch.from_numpy(STD).view(1, 3, 1, 1)

    def conv_bn(x, conv, bn, stride, pad):
        x = F.conv2d(x, t[conv + ".weight"], stride=stride, padding=pad)
        return F.batch_norm(x, t[bn + ".running_mean"], t[bn + ".running_var"], t[bn + ".weight"], t[bn + ".bias"], False, 0.0, 1e-5)

    def forward(x):
        x = (x.clamp(0, 1) - mean) / std
        x = F.max_pool2d(F.relu(conv_bn(x, "conv1", "bn1", 2, 3)), 3, 2, 1)
        for s, n in enumerate(LAYERS):
            for b in range(n):
                p = f"layer{s + 1}.{b}"
                stride = 2 if s > 0 and b == 0 else 1
                h = F.relu(conv_bn(x, p + ".conv1", p + ".bn1", 1, 0))
                h = F.relu(conv_bn(h, p + ".conv2", p + ".bn2", stride, 1))
                h = conv_bn(h, p + ".conv3", p + ".bn3", 1, 0)
                short = conv_bn(x, p + ".downsample.0", p + ".downsample.1", stride, 0) if b == 0 else x
                x = F.relu(h + short)
        features = x.mean((2, 3))
        return F.linear(features, t["fc.weight"], t["fc.bias"]), features, x

    up = bilinear_matrix(7, 224)
    fc = sd["fc.weight"]
    rng = np.random.default_rng(0)
    figures = {}
    with torch.inference_mode():
        for b in batches:
            x = torch.from_numpy(rng.random((b, 3, 224, 224), dtype=np.float32))
            n = per_run(b)

            def work():
                for _ in range(n):
                    logits, features, maps = forward(x)
                    masks(logits.numpy(), features.numpy(), maps.numpy(), fc, up)

            figures[b] = images_per_second(work, b * n, runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures, peak, torch.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--salient", required=True, help="the salient binary")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batches", type=int, default=2, help="batches per run, at least")
    ap.add_argument("--min-images", type=int, default=16, help="images per run, at least (more batches of small sizes)")
    ap.add_argument("--rounds", type=int, default=2, help="turns each runtime takes (its best is kept)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--ort-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    a = ap.parse_args()
    batches = [int(b) for b in a.batch.split(",")]

    def per_run(b):
        return batches_per_run(b, a.batches, a.min_images)

    if a.ort_only:  # child process: ONNX Runtime alone, so its peak memory is its own
        from safetensors.numpy import load_file
        sd = load_file(a.weights)
        figures, peak = bench_ort(a.weights + ".onnx", sd, batches, a.runs, per_run)
        print(json.dumps({"figures": figures, "peak_rss_mb": peak}))
        return
    if a.torch_only:  # child process: PyTorch alone
        from safetensors.numpy import load_file
        figures, peak, version = bench_torch(load_file(a.weights), batches, a.runs, per_run)
        print(json.dumps({"figures": figures, "peak_rss_mb": peak, "version": version}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "resnet50-random.safetensors")
        sd = random_resnet50()
        save_file(sd, weights)
        onnx.save(onnx_resnet50(sd), weights + ".onnx")
        def child(flag):
            cmd = [sys.executable, __file__, flag, "--weights", weights, "--salient", a.salient, "--batch", a.batch,
                   "--runs", str(a.runs), "--batches", str(a.batches), "--min-images", str(a.min_images)]
            return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)

        def salient():
            # One process per batch size (each with its own number of batches per run); the
            # first also times the attack. Peak memory: the largest.
            outs = [json.loads(subprocess.run(
                [a.salient, "bench", "-w", weights, "--batch", str(b), "--runs", str(a.runs), "--batches", str(per_run(b)),
                 "--attack-steps", "5" if i == 0 else "0", "--json"],
                check=True, capture_output=True, text=True).stdout) for i, b in enumerate(batches)]
            out = dict(outs[0])
            out["batches"] = [f for o in outs for f in o["batches"]]
            out["figures"] = {f["batch"]: f["images_per_second"] for f in out["batches"]}
            out["peak_rss_mb"] = max(o["peak_rss_mb"] for o in outs)
            return out

        # A shared machine's speed drifts over minutes: the runtimes take turns, round after
        # round, and each keeps its best round, so no one is measured only in a slow spell.
        rounds = [(child("--ort-only"), child("--torch-only"), salient()) for _ in range(a.rounds)]

    def best(i):
        outs = [r[i] for r in rounds]
        figures = {int(b): max(float(o["figures"][b]) for o in outs) for b in outs[0]["figures"]}
        return {**outs[0], "figures": figures, "peak_rss_mb": max(o["peak_rss_mb"] for o in outs)}

    ort_out, torch_out, ours = best(0), best(1), best(2)
    ort_fig, torch_fig, our_fig = ort_out["figures"], torch_out["figures"], ours["figures"]
    print(f"ResNet-50, 224×224, features + top-5 masks, {os.cpu_count()} CPU threads, {platform.processor() or platform.machine()}")
    print(f"(median of {a.runs} runs of at least {a.batches} batches and {a.min_images} images after a warm-up, best of {a.rounds} rounds taken in turns; same random weights)")
    print()
    print("| runtime | " + " | ".join(f"batch {b} (img/s)" for b in batches) + " | peak RSS |")
    print("|---|" + "---|" * len(batches) + "---|")
    print(f"| ONNX Runtime {ort.__version__} | " + " | ".join(f"{ort_fig[b]:.1f}" for b in batches) + f" | {ort_out['peak_rss_mb']:.0f} MB |")
    print(f"| PyTorch {torch_out['version']} eager | " + " | ".join(f"{torch_fig[b]:.1f}" for b in batches) + f" | {torch_out['peak_rss_mb']:.0f} MB |")
    print(f"| salient ({ours['backend']}, {ours.get('cpu_kernels') or 'no'} kernels) | " + " | ".join(f"{our_fig[b]:.1f}" for b in batches) + f" | {ours['peak_rss_mb']:.0f} MB |")
    print("| ratio salient / ORT | " + " | ".join(f"{our_fig[b] / ort_fig[b]:.2f}×" for b in batches) + f" | {ours['peak_rss_mb'] / ort_out['peak_rss_mb']:.2f}× |")
    print("| ratio salient / PyTorch | " + " | ".join(f"{our_fig[b] / torch_fig[b]:.2f}×" for b in batches) + f" | {ours['peak_rss_mb'] / torch_out['peak_rss_mb']:.2f}× |")
    if ours.get("attack_seconds_per_step"):
        s = ours["attack_seconds_per_step"]
        setup = ours.get("attack_setup_seconds") or 0.0
        print(f"\nsalient feature attack: {s:.3f} s per step, {100 * s:.0f} s for the default 100 steps, "
              f"after {setup:.2f} s of setup once per model")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"onnxruntime": ort_out, "onnxruntime_version": ort.__version__, "pytorch": torch_out, "salient": ours,
                       "rounds": [{"onnxruntime": o, "pytorch": t, "salient": s} for o, t, s in rounds]}, f, indent=2)


if __name__ == "__main__":
    main()
