"""What the benchmark scripts share: seeded random ResNet-50 weights and the per-image mask work.

NumPy only, so each benchmark's environment needs just its own runtime besides.
"""
import time

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
LAYERS = [3, 4, 6, 3]


def random_resnet50(seed=0):
    """torchvision ResNet-50 state dict (numpy), Kaiming-normal convs, random batch norms."""
    rng = np.random.default_rng(seed)
    sd = {}

    def conv(name, o, i, k):
        sd[name + ".weight"] = (rng.standard_normal((o, i, k, k)) * np.sqrt(2.0 / (o * k * k))).astype(np.float32)

    def bn(name, c):
        sd[name + ".weight"] = rng.uniform(0.5, 1.0, c).astype(np.float32)
        sd[name + ".bias"] = rng.uniform(-0.1, 0.1, c).astype(np.float32)
        sd[name + ".running_mean"] = rng.uniform(-0.1, 0.1, c).astype(np.float32)
        sd[name + ".running_var"] = rng.uniform(0.5, 1.5, c).astype(np.float32)

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    c_in = 64
    for s, n in enumerate(LAYERS):
        planes = 64 << s
        for b in range(n):
            p = f"layer{s + 1}.{b}"
            conv(p + ".conv1", planes, c_in, 1)
            bn(p + ".bn1", planes)
            conv(p + ".conv2", planes, planes, 3)
            bn(p + ".bn2", planes)
            conv(p + ".conv3", planes * 4, planes, 1)
            bn(p + ".bn3", planes * 4)
            if b == 0:
                conv(p + ".downsample.0", planes * 4, c_in, 1)
                bn(p + ".downsample.1", planes * 4)
            c_in = planes * 4
    sd["fc.weight"] = (rng.uniform(-1, 1, (1000, 2048)) / np.sqrt(2048)).astype(np.float32)
    sd["fc.bias"] = (rng.uniform(-1, 1, 1000) / np.sqrt(2048)).astype(np.float32)
    return sd


def bilinear_matrix(n_in, n_out):
    """Half-pixel bilinear interpolation as a matrix [n_out, n_in] (the engine's upsampling)."""
    m = np.zeros((n_out, n_in), np.float32)
    scale = n_in / n_out
    for o in range(n_out):
        x = max((o + 0.5) * scale - 0.5, 0.0)
        x0 = min(int(np.floor(x)), n_in - 1)
        x1 = min(x0 + 1, n_in - 1)
        f = x - x0
        m[o, x0] += 1 - f
        m[o, x1] += f
    return m


def masks(logits, features, maps, fc, up):
    """Soft mask of each image's predicted class's top-5 features: [N, 224, 224]."""
    out = []
    for i in range(logits.shape[0]):
        c = int(np.argmax(logits[i]))
        top = np.argsort(-(features[i] * fc[c]))[:5]
        m = maps[i, top]
        mx = m.reshape(5, -1).max(axis=1)
        m = np.where(mx[:, None, None] > 0, m / np.maximum(mx, 1e-30)[:, None, None], 0)
        out.append((up @ m @ up.T).max(axis=0))
    return np.stack(out)


def images_per_second(work, images, runs):
    """Median images/s of `runs` timed calls of `work` (which handles `images` images), after a warm-up."""
    work()
    speeds = []
    for _ in range(runs):
        t = time.perf_counter()
        work()
        speeds.append(images / (time.perf_counter() - t))
    return sorted(speeds)[len(speeds) // 2]
