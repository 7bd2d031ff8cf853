#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures that Salient's parity tests compare against.

Run by hand (never in CI), from the repository root, in a virtual environment with
    pip install torch torchvision pillow opencv-python-headless safetensors dill scikit-image numpy

    python tools/gen_fixtures.py                      # tests/fixtures/ (committed)
    python tools/gen_fixtures.py --checkpoint imagenet_l2_3_0.pt --out /tmp/r50-fixtures
                                                      # the same comparison for a full-size model;
                                                      # run the Rust side with SALIENT_FULL_FIXTURES=/tmp/r50-fixtures

What it writes (into --out):
  images/*.{jpg,png,webp}   inputs covering JPEG (incl. CMYK and EXIF-rotated), PNG (gray, RGBA, 16-bit), WebP
  views/<image>.png         torchvision Resize(256)+CenterCrop(224) of each, after PIL decode + exif_transpose
  masks/<image>_<features>.png   224x224 NAM soft masks (round(255*m)), computed from the views
  model_*.pt / .pth / .safetensors   a reduced-width torchvision ResNet in every supported container
  expected.json             logits, features, importance, top-k, attack values, JET LUT, overlay checksums

Everything is seeded; re-running reproduces the files.
"""
import argparse
import io
import json
import os
import shutil

import cv2
import dill
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from PIL import Image, ImageOps
from safetensors.torch import save_file
from torchvision.models.resnet import Bottleneck, ResNet

MEAN = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)


class Clamp01(torch.autograd.Function):
    """clamp(x, 0, 1) with torch 1.x's gradient: 1 on the closed interval [0, 1].

    PyTorch 2.x returns 0 at the bounds; the torch 1.x the method was run on returned the
    subgradient 1 there (so saturated pixels can move during the feature attack), as burn does.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(0, 1)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x >= 0) & (x <= 1)).to(grad.dtype)


class Wrapped(torch.nn.Module):
    """The robustness library's AttackerModel semantics: clamp, normalize, ResNet."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        x = (Clamp01.apply(x) - MEAN) / STD
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        layer4 = n.layer4(n.layer3(n.layer2(n.layer1(x))))
        features = torch.flatten(n.avgpool(layer4), 1)
        return n.fc(features), features, layer4


def tiny_resnet(width=8, layers=(2, 1, 1, 1), classes=10):
    """torchvision's own ResNet/Bottleneck code with every width divided by 64/width."""
    net = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=classes)
    net.inplanes = width
    net.conv1 = torch.nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = torch.nn.BatchNorm2d(width)
    net.layer1 = net._make_layer(Bottleneck, width, layers[0])
    net.layer2 = net._make_layer(Bottleneck, width * 2, layers[1], stride=2)
    net.layer3 = net._make_layer(Bottleneck, width * 4, layers[2], stride=2)
    net.layer4 = net._make_layer(Bottleneck, width * 8, layers[3], stride=2)
    net.fc = torch.nn.Linear(width * 8 * 4, classes)
    return net


def trained_looking(net, seed):
    """Random weights with non-trivial batch-norm statistics (a few train-mode passes)."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = 0.5 + torch.rand(m.weight.shape, generator=g)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=g)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(8, 3, 224, 224, generator=g))
    net.eval()
    return net


def write_images(out):
    import skimage.data as sk

    d = os.path.join(out, "images")
    os.makedirs(d, exist_ok=True)
    astronaut = Image.fromarray(sk.astronaut())
    chelsea = Image.fromarray(sk.chelsea())
    coffee = Image.fromarray(sk.coffee())
    rocket = Image.fromarray(sk.rocket())
    files = {}

    def save(name, img, **kw):
        path = os.path.join(d, name)
        img.save(path, **kw)
        files[name] = path

    save("rocket.jpg", rocket, quality=90)  # 4:2:0 JPEG
    save("coffee.jpg", coffee, quality=95, subsampling=0)  # 4:4:4 JPEG
    save("chelsea.png", chelsea)
    save("astronaut_gray.png", astronaut.convert("L").resize((320, 320), Image.BILINEAR))
    rgba = chelsea.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(chelsea.size))
    save("chelsea_rgba.png", rgba)
    save("coffee_cmyk.jpg", coffee.resize((300, 200), Image.BILINEAR).convert("CMYK"), quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    save("rocket_exif6.jpg", rocket.resize((320, 214), Image.BILINEAR), quality=92, exif=exif)
    save("chelsea.webp", chelsea, quality=90)
    # 16-bit RGB PNG through OpenCV (PIL cannot write it).
    c16 = (np.asarray(coffee.resize((300, 200), Image.BILINEAR)).astype(np.uint16) * 257)[:, :, ::-1]
    p = os.path.join(d, "coffee16.png")
    cv2.imwrite(p, np.ascontiguousarray(c16))
    files["coffee16.png"] = p
    return files


def reference_view(path):
    """What the reference pipeline feeds the model (with EXIF applied, and 16-bit scaled)."""
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I"):
        img = Image.fromarray((np.asarray(img).astype(np.float64) / 257).round().astype(np.uint8))
    img = img.convert("RGB")
    return T.Compose([T.Resize(256), T.CenterCrop(224)])(img)


def nam_mask(layer4, features, size=224):
    """Method §c: per-feature map / its max, bilinear (half-pixel) upsample, pixelwise max."""
    masks = []
    for j in features:
        m = layer4[j]
        mx = m.max()
        nam = m / mx if mx > 0 else torch.zeros_like(m)
        up = F.interpolate(nam[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        # OpenCV's INTER_LINEAR, which the reference code calls, must agree.
        cv = cv2.resize(nam.numpy(), (size, size))
        assert np.abs(cv - up.numpy()).max() < 1e-5
        masks.append(up)
    return torch.stack(masks).max(0).values


def reference_overlay(view_u8, mask):
    """Method §c.5, with OpenCV's JET, as the reference code draws heatmaps."""
    heat = cv2.applyColorMap(np.uint8(255 * (1 - mask)), cv2.COLORMAP_JET) / 255.0
    heat = heat + view_u8 / 255.0
    heat = heat / heat.max()
    return np.round(heat * 255).astype(np.uint8)


def feature_attack(model, x, j, steps, step, values=None):
    """`values`, a dict, receives the feature's value after every step t (0: before)."""
    x = x.clone()
    before = after = None
    for t in range(steps + 1):
        x.requires_grad_(True)
        _, r, _ = model(x)
        v = r[:, j]
        if values is not None:
            values[t] = v.detach().double().tolist()
        if t == 0:
            before = v.detach().clone()
        if t == steps:
            after = v.detach().clone()
            break
        (g,) = torch.autograd.grad(v.sum(), x)
        norm = g.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
        x = torch.clamp(x.detach() + step * g / (norm + 1e-10), 0, 1)
    return x.detach(), before, after


def save_checkpoints(net, out):
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    # Robustness-library layout (model + attacker duplicates + normalizer), with training state.
    wrapped = {}
    for k, v in sd.items():
        wrapped["module.model." + k] = v
        wrapped["module.attacker.model." + k] = v
    for prefix in ("module.normalizer.", "module.attacker.normalize."):
        wrapped[prefix + "new_mean"] = MEAN.reshape(3, 1, 1).clone()
        wrapped[prefix + "new_std"] = STD.reshape(3, 1, 1).clone()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.train()
    loss = net(torch.rand(2, 3, 64, 64)).sum()
    loss.backward()
    opt.step()
    opt.zero_grad()
    net.load_state_dict(sd)  # undo the step and the statistics update; keep the momentum buffers
    net.eval()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30)
    ckpt = {"model": wrapped, "optimizer": opt.state_dict(), "schedule": sched.state_dict(),
            "epoch": 105, "amp": None, "adv_prec1": 35.16}
    torch.save(ckpt, os.path.join(out, "model_robust_legacy.pt"), pickle_module=dill,
               _use_new_zipfile_serialization=False)
    torch.save(ckpt, os.path.join(out, "model_robust_zip.pt"), pickle_module=dill)
    torch.save(sd, os.path.join(out, "model_torchvision.pth"))
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(out, "model.safetensors"))
    # A non-contiguous tensor (a transposed view) must load by its strides.
    strided = dict(sd)
    strided["fc.weight"] = sd["fc.weight"].t().contiguous().t()
    assert not strided["fc.weight"].is_contiguous()
    torch.save(strided, os.path.join(out, "model_strided.pth"))
    bad = dict(sd)
    bad["layer1.0.conv2.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(bad, os.path.join(out, "model_wrong_shape.pth"))
    nan = {k: v.clone() for k, v in sd.items()}
    nan["layer2.0.bn1.running_var"][1] = float("nan")
    torch.save(nan, os.path.join(out, "model_nan.pth"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/fixtures")
    ap.add_argument("--checkpoint", help="a full-size ResNet checkpoint (robustness .pt or torchvision .pth)")
    args = ap.parse_args()
    torch.manual_seed(0)
    out = args.out
    os.makedirs(out, exist_ok=True)

    if args.checkpoint:
        ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False, pickle_module=dill)
        sd = ck.get("model", ck.get("state_dict", ck)) if isinstance(ck, dict) else ck
        if any(k.startswith("module.model.") for k in sd):
            sd = {k[len("module.model."):]: v for k, v in sd.items() if k.startswith("module.model.")}
        net = torchvision.models.resnet50()
        net.load_state_dict(sd)
        net.eval()
        shutil.copy(args.checkpoint, os.path.join(out, "model" + os.path.splitext(args.checkpoint)[1]))
        rank_class, mask_features, attack_feature = 325, [[1305], [1797, 595]], 1305
    else:
        net = trained_looking(tiny_resnet(), seed=1)
        save_checkpoints(net, out)
        rank_class, mask_features, attack_feature = None, None, None

    model = Wrapped(net).eval()
    files = write_images(out)
    if mask_features is None:
        # Features active on the first image: its strongest, and some weaker ones.
        with torch.no_grad():
            _, f0, _ = model(T.ToTensor()(reference_view(files[sorted(files)[0]]))[None])
        order = torch.argsort(-f0[0]).tolist()
        mask_features, attack_feature = [[order[0]], [order[3], order[20], order[50]]], order[10]
    os.makedirs(os.path.join(out, "views"), exist_ok=True)
    os.makedirs(os.path.join(out, "masks"), exist_ok=True)
    os.makedirs(os.path.join(out, "overlays"), exist_ok=True)
    expected = {"images": {}, "mask_features": mask_features, "rank_class": rank_class,
                "attack": {}, "jet_rgb": None}
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(1, 256), cv2.COLORMAP_JET)[0][:, ::-1]
    expected["jet_rgb"] = lut.tolist()

    all_features = []
    for name in sorted(files):
        view = reference_view(files[name])
        view.save(os.path.join(out, "views", name + ".png"))
        x = T.ToTensor()(view)[None]
        with torch.no_grad():
            logits, feats, layer4 = model(x)
        all_features.append(feats[0])
        entry = {"logits": logits[0].tolist(), "features": feats[0].tolist(), "masks": {}}
        for fl in mask_features:
            m = nam_mask(layer4[0], fl)
            key = "_".join(map(str, fl))
            mpath = os.path.join(out, "masks", f"{name}_{key}.png")
            Image.fromarray(np.round(m.numpy() * 255).astype(np.uint8), "L").save(mpath)
            entry["masks"][key] = os.path.relpath(mpath, out)
        ov = reference_overlay(np.asarray(view), nam_mask(layer4[0], mask_features[0]).numpy())
        Image.fromarray(ov).save(os.path.join(out, "overlays", name + ".png"))
        expected["images"][name] = entry

    feats = torch.stack(all_features)
    if rank_class is None:
        # The class whose top-6 importances are furthest apart (relative to the largest): a
        # top-5 that float rounding cannot reorder.
        fis = (feats[:, None, :] * net.fc.weight.detach()[None]).mean(0)
        srt = fis.sort(dim=1, descending=True).values
        gaps = (srt[:, :5] - srt[:, 1:6]).min(dim=1).values / srt[:, 0].abs()
        rank_class = int(gaps.argmax())
        expected["rank_class"] = rank_class
    w = net.fc.weight.detach()[rank_class]
    fi = (feats * w).mean(0)
    srt = fi.sort(descending=True).values
    assert all(srt[i] - srt[i + 1] > 1e-4 * srt[0].abs() for i in range(5)), "ambiguous top-5"
    expected["importance"] = fi.tolist()
    expected["top5"] = torch.argsort(-fi)[:5].tolist()

    name = sorted(files)[0]
    x = T.ToTensor()(reference_view(files[name]))[None]
    steps = 5
    xa, before, after = feature_attack(model, x, attack_feature, steps=steps, step=10.0)
    expected["attack"] = {"image": name, "feature": attack_feature, "steps": steps, "step_size": 10.0,
                          "before": before.item(), "after": after.item()}
    Image.fromarray(np.round(xa[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(
        os.path.join(out, "attacked.png"))
    expected["versions"] = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                            "pillow": Image.__version__, "opencv": cv2.__version__}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"wrote {out}: {len(files)} images, top5 {expected['top5']}, attack {before.item():.4f} -> {after.item():.4f}")


if __name__ == "__main__":
    main()
