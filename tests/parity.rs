//! Parity with PyTorch/torchvision/OpenCV on the fixtures written by `tools/gen_fixtures.py`:
//! checkpoint loading in every container, preprocessing, logits and features, masks,
//! feature importance and top-k, the feature attack, the heatmap overlay.
//!
//! At full size, `full_size_resnets_match_pytorch_end_to_end` runs the `salient` CLI on image
//! files with a ResNet-50 and a ResNet-18 whose weights follow a formula (and committed
//! batch-norm statistics), against `tests/fixtures/full/` from `tools/gen_full_fixtures.py`.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use image::RgbImage;
use salient_engine::attack::{AttackOptions, feature_attack};
use salient_engine::checkpoint::{Format, Layout};
use salient_engine::{Engine, StateDict, colormap, decode, engine::host, nam, preprocess};
use salient_tests::*;

fn device() -> Device {
    Device::flex()
}

fn view(dir: &Path, image: &str) -> RgbImage {
    image::open(dir.join("views").join(format!("{image}.png"))).expect("reference view").to_rgb8()
}

fn model_file(dir: &Path) -> PathBuf {
    ["model_robust_zip.pt", "model.pt", "model.pth", "model.safetensors"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .expect("a model checkpoint in the fixture folder")
}

fn image_names(dir: &Path) -> Vec<String> {
    let e = expected(dir);
    let mut names: Vec<String> = e["images"].as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

/// Largest per-pixel difference in gray levels, and how many pixels differ at all.
fn diff_u8(a: &[u8], b: &[u8]) -> (u8, usize) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0, 0), |(m, n), (x, y)| (m.max(x.abs_diff(*y)), n + usize::from(x != y)))
}

fn check_preprocessing(dir: &Path) {
    let mut report = Vec::new();
    for name in image_names(dir) {
        let img = decode::load_image(&dir.join("images").join(&name)).unwrap_or_else(|e| panic!("{e}"));
        let ours = preprocess::model_view(&img);
        let (max, n) = diff_u8(ours.as_raw(), view(dir, &name).as_raw());
        report.push(format!("{name}: max {max}/255, {n} values differ"));
        assert_eq!(
            n,
            0,
            "preprocessing of {name} differs from torchvision + Pillow in {n} values (max {max}/255):\n{}",
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));
}

fn check_model(dir: &Path) {
    let e = expected(dir);
    let engine = Engine::load(&model_file(dir), &device()).unwrap();
    // Where this CPU has one of the engine's kernels, the parity below is the kernels'.
    assert_eq!(
        engine.cpu_kernels(),
        salient_engine::cpu::Isa::detect(),
        "the model was not packed for the CPU kernels"
    );
    eprintln!("convolutions on: {}", engine.cpu_kernels().map_or("burn's conv2d", |k| k.name()));
    for name in image_names(dir) {
        let out = &engine.infer(&[view(dir, &name)], false).unwrap()[0];
        let want = &e["images"][&name];
        let (el, ef) =
            (rel_err(&out.logits, &floats(&want["logits"])), rel_err(&out.features, &floats(&want["features"])));
        assert!(el < 1e-4 && ef < 1e-4, "{name}: logits rel. error {el:e}, features {ef:e}");
    }
}

fn check_masks(dir: &Path) {
    let e = expected(dir);
    let engine = Engine::load(&model_file(dir), &device()).unwrap();
    for name in image_names(dir) {
        let out = &engine.infer(&[view(dir, &name)], true).unwrap()[0];
        let maps = out.maps.as_ref().unwrap();
        for features in e["mask_features"].as_array().unwrap() {
            let fl: Vec<usize> = features.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let key = fl.iter().map(usize::to_string).collect::<Vec<_>>().join("_");
            let want = image::open(dir.join(want_path(&e, &name, &key))).unwrap().to_luma8();
            let ours = nam::to_gray(&maps.soft_mask(&fl, 224));
            let (max, n) = diff_u8(&ours, want.as_raw());
            // 1/255 where rounding straddles a level boundary; nothing more.
            assert!(max <= 1, "{name} features {key}: mask differs by {max}/255 at {n} pixels");
        }
    }
}

fn want_path(e: &serde_json::Value, image: &str, key: &str) -> String {
    e["images"][image]["masks"][key].as_str().unwrap().to_owned()
}

fn check_importance(dir: &Path) {
    let e = expected(dir);
    let engine = Engine::load(&model_file(dir), &device()).unwrap();
    let views: Vec<RgbImage> = image_names(dir).iter().map(|n| view(dir, n)).collect();
    let outs = engine.infer(&views, false).unwrap();
    let features: Vec<f32> = outs.iter().flat_map(|o| o.features.clone()).collect();
    let class = e["rank_class"].as_u64().unwrap() as usize;
    let fi = salient_engine::importance::feature_importance(&features, engine.class_weights(class));
    assert!(rel_err(&fi, &floats(&e["importance"])) < 1e-4);
    let top: Vec<u64> = salient_engine::importance::top_k(&fi, 5).iter().map(|(j, _)| *j as u64).collect();
    let want: Vec<u64> = e["top5"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(top, want);
}

#[test]
fn every_container_loads_the_same_weights() {
    let dir = fixtures();
    let reference = StateDict::load(&dir.join("model_torchvision.pth")).unwrap();
    assert_eq!((reference.format, reference.layout), (Format::TorchZip, Layout::Torchvision));
    for (file, format, layout) in [
        ("model_robust_legacy.pt", Format::TorchLegacy, Layout::Robustness),
        ("model_robust_zip.pt", Format::TorchZip, Layout::Robustness),
        ("model.safetensors", Format::Safetensors, Layout::Torchvision),
        ("model_strided.pth", Format::TorchZip, Layout::Torchvision),
    ] {
        let sd = StateDict::load(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((sd.format, sd.layout), (format, layout), "{file}");
        for (key, t) in &reference.tensors {
            let other = sd.tensors.get(key).unwrap_or_else(|| panic!("{file} lacks {key}"));
            assert_eq!((&other.shape, &other.data), (&t.shape, &t.data), "{file}: {key}");
        }
        if layout == Layout::Robustness {
            let n = sd.normalization.expect("the robustness normalizer is read");
            assert_eq!(n, preprocess::Normalization::IMAGENET);
        }
    }
}

#[test]
fn converted_safetensors_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let sd = StateDict::load(&fixture("model_robust_legacy.pt")).unwrap();
    for half in [false, true] {
        let out = dir.path().join(format!("m{half}.safetensors"));
        salient_engine::checkpoint::write_safetensors(&sd, &out, half).unwrap();
        let back = StateDict::load(&out).unwrap();
        assert_eq!(back.normalization, sd.normalization, "normalization survives in the metadata");
        for (key, t) in sd.tensors.iter().filter(|(_, t)| t.dtype.is_float()) {
            let b = &back.tensors[key];
            let tol = if half { 1e-3 } else { 0.0 };
            assert!(rel_err(&b.data, &t.data) <= tol, "{key} (half: {half})");
        }
    }
}

#[test]
fn preprocessing_matches_torchvision() {
    check_preprocessing(&fixtures());
}

#[test]
fn logits_and_features_match_pytorch() {
    check_model(&fixtures());
}

#[test]
fn masks_match_pytorch() {
    check_masks(&fixtures());
}

#[test]
fn importance_and_top5_match_pytorch() {
    check_importance(&fixtures());
}

#[test]
fn feature_attack_matches_pytorch() {
    let dir = fixtures();
    let e = expected(&dir)["attack"].clone();
    let engine = Engine::load(&model_file(&dir), &device()).unwrap();
    let x = engine.batch(&[view(&dir, e["image"].as_str().unwrap())]);
    let opts = AttackOptions {
        steps: e["steps"].as_u64().unwrap() as usize,
        step_size: e["step_size"].as_f64().unwrap() as f32,
    };
    let mut steps_seen = 0;
    let attacked = feature_attack(&engine.model, x, e["feature"].as_u64().unwrap() as usize, opts, |t| steps_seen = t);
    assert_eq!(steps_seen, opts.steps);
    let before = pollster::block_on(host(attacked.before)).unwrap()[0];
    let after = pollster::block_on(host(attacked.after)).unwrap()[0];
    let (wb, wa) = (e["before"].as_f64().unwrap() as f32, e["after"].as_f64().unwrap() as f32);
    assert!((before - wb).abs() / wb.abs() < 1e-4, "before: {before} vs {wb}");
    assert!((after - wa).abs() / wa.abs() < 1e-3, "after: {after} vs {wa}");
    assert!(after > before * 2.0, "the attack amplifies the feature");
    let img = pollster::block_on(host(attacked.images)).unwrap();
    let want = image::open(dir.join("attacked.png")).unwrap().to_rgb8();
    let mean_diff = want
        .pixels()
        .enumerate()
        .map(|(i, p)| (0..3).map(|c| (img[c * 224 * 224 + i] * 255.0 - f32::from(p[c])).abs()).sum::<f32>())
        .sum::<f32>()
        / (3.0 * 224.0 * 224.0);
    assert!(mean_diff < 0.5, "attacked image differs by {mean_diff} gray levels on average");
}

#[test]
fn overlay_matches_reference_heatmap() {
    let dir = fixtures();
    let e = expected(&dir);
    let engine = Engine::load(&model_file(&dir), &device()).unwrap();
    let fl: Vec<usize> =
        e["mask_features"][0].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    for name in image_names(&dir) {
        let v = view(&dir, &name);
        let out = &engine.infer(std::slice::from_ref(&v), true).unwrap()[0];
        let ours = colormap::overlay(&v, &out.maps.as_ref().unwrap().soft_mask(&fl, 224));
        let want = image::open(dir.join("overlays").join(format!("{name}.png"))).unwrap().to_rgb8();
        let (max, _) = diff_u8(ours.as_raw(), want.as_raw());
        assert!(max <= 3, "{name}: overlay differs by {max} levels");
    }
}

#[test]
fn jet_matches_opencv() {
    let lut = expected(&fixtures())["jet_rgb"].clone();
    for (v, rgb) in lut.as_array().unwrap().iter().enumerate() {
        let want: Vec<u8> = rgb.as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as u8).collect();
        let ours = colormap::jet(v as u8);
        assert!(ours.iter().zip(&want).all(|(a, b)| a.abs_diff(*b) <= 1), "level {v}: {ours:?} vs {want:?}");
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Pillow's bilinear resize, bit for bit: many sizes and aspect ratios (up and down, odd sizes,
/// 1-pixel edges, one side kept), and torchvision's `Resize(256)` + `CenterCrop(224)` of
/// photo-sized images, against digests of Pillow's own output.
#[test]
fn resize_is_bit_exact_with_pillow() {
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("pillow_resize.json")).unwrap()).unwrap();
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap() as u32;
    let mut failures = Vec::new();
    let cases = table["resize"].as_array().unwrap();
    for c in cases {
        let (w, h, ch, nw, nh) = (n(c, "w"), n(c, "h"), n(c, "channels"), n(c, "nw"), n(c, "nh"));
        let src = formula_image(w, h, ch, n(c, "seed"));
        let out = salient_engine::resample::resize_bilinear(
            &src,
            w as usize,
            h as usize,
            ch as usize,
            nw as usize,
            nh as usize,
        );
        if sha256(&out) != c["sha256"].as_str().unwrap() {
            failures.push(format!("{w}×{h}×{ch} → {nw}×{nh}"));
        }
    }
    let views = table["views"].as_array().unwrap();
    for v in views {
        let (w, h) = (n(v, "w"), n(v, "h"));
        let img = RgbImage::from_raw(w, h, formula_image(w, h, 3, n(v, "seed"))).unwrap();
        if sha256(preprocess::model_view(&img).as_raw()) != v["sha256"].as_str().unwrap() {
            failures.push(format!("view of {w}×{h}"));
        }
    }
    assert!(
        cases.len() >= 90 && views.len() >= 10,
        "the fixture lists {} resizes and {} views",
        cases.len(),
        views.len()
    );
    assert!(failures.is_empty(), "differs from Pillow {}: {}", table["pillow"], failures.join(", "));
}

/// Runs `salient` and parses each line of its standard output as JSON.
fn json_lines(args: &[&str], cwd: &Path) -> Vec<serde_json::Value> {
    json_lines_on(args, cwd, Convolutions::Default)
}

/// Which convolutions the CLI runs: the default (the engine's best CPU kernels for this CPU),
/// or what `SALIENT_CPU_KERNELS` names (`off`: burn's own; `avx2`: the AVX2 kernels where the
/// CPU has them).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Convolutions {
    Default,
    Kernels(&'static str),
}

fn json_lines_on(args: &[&str], cwd: &Path, convolutions: Convolutions) -> Vec<serde_json::Value> {
    let o = match convolutions {
        Convolutions::Default => salient(args, cwd),
        Convolutions::Kernels(name) => salient_with_env(args, cwd, &[("SALIENT_CPU_KERNELS", name)]),
    };
    assert!(o.status.success(), "salient {args:?}: {}", stderr(&o));
    stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Full-size parity, end to end from image files through the CLI: a ResNet-50 (batch 1 and
/// 16; on each of the engine's CPU kernels and on burn's convolutions) and a ResNet-18 against torchvision + Pillow + PyTorch on the same weights and files:
/// logits and features to 1e-4, single and union masks to one gray level, the importance top-5
/// equal (values to 1e-4), a 100-step feature attack to 1%.
#[test]
fn full_size_resnets_match_pytorch_end_to_end() {
    let full = fixture("full");
    let e = expected(&full);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for spec in e["formula_images"].as_array().unwrap() {
        let [w, h, seed] = [0, 1, 2].map(|i| spec[i].as_u64().unwrap() as u32);
        RgbImage::from_raw(w, h, formula_image(w, h, 3, seed))
            .unwrap()
            .save(dir.join(format!("formula_{seed}.png")))
            .unwrap();
    }
    let names: Vec<String> = e["images"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 16);
    let path_of = |name: &str| {
        let photo = fixture("images").join(name);
        if photo.exists() { photo } else { dir.join(name) }.display().to_string()
    };
    let images: Vec<String> = names.iter().map(|n| path_of(n)).collect();
    use Convolutions::{Default, Kernels};
    let resnet50_runs = [("1", Default), ("16", Default), ("16", Kernels("avx2")), ("16", Kernels("off"))];
    for (arch, config, runs) in [
        ("resnet50", salient_engine::ResNetConfig::resnet50(), &resnet50_runs[..]),
        ("resnet18", salient_engine::ResNetConfig::resnet18(), &[("16", Default)][..]),
    ] {
        let weights = dir.join(format!("{arch}.safetensors"));
        salient_engine::checkpoint::write_safetensors(
            &formula_weights(&config, &full.join(format!("bn_{arch}.safetensors"))),
            &weights,
            false,
        )
        .unwrap();
        let w = weights.display().to_string();
        let want = &e["models"][arch];
        for &(batch, convolutions) in runs {
            let mut worst = (0f32, 0f32);
            let mut args = vec!["predict", "-w", &w, "--json", "--batch-size", batch];
            args.extend(images.iter().map(String::as_str));
            let lines = json_lines_on(&args, dir, convolutions);
            assert_eq!(lines.len(), 16);
            for (line, name) in lines.iter().zip(&names) {
                let (el, ef) = (
                    rel_err(&floats(&line["logits"]), &floats(&want["logits"][name])),
                    rel_err(&floats(&line["features"]), &floats(&want["features"][name])),
                );
                assert!(
                    el < 1e-4 && ef < 1e-4,
                    "{arch} batch {batch} ({convolutions:?} convolutions), {name}: logits rel. error {el:e}, features {ef:e}"
                );
                worst = (worst.0.max(el), worst.1.max(ef));
            }
            println!(
                "{arch}, batch {batch}, {convolutions:?} convolutions: largest relative error over 16 images: logits {:.1e}, features {:.1e}",
                worst.0, worst.1
            );
        }
        if arch != "resnet50" {
            continue;
        }
        let class = want["rank_class"].as_u64().unwrap().to_string();
        let mut args = vec!["rank", "-w", &w, "--json", "--class", &class];
        args.extend(images.iter().map(String::as_str));
        let ranked = &json_lines(&args, dir)[0]["top"];
        let top5: Vec<(u64, f32)> = ranked
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["feature"].as_u64().unwrap(), t["importance"].as_f64().unwrap() as f32))
            .collect();
        let want5: Vec<(u64, f32)> = want["importance_top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t[0].as_u64().unwrap(), t[1].as_f64().unwrap() as f32))
            .collect();
        assert_eq!(
            top5.iter().map(|t| t.0).collect::<Vec<_>>(),
            want5.iter().map(|t| t.0).collect::<Vec<_>>(),
            "importance top-5"
        );
        let (ours, theirs): (Vec<f32>, Vec<f32>) = top5.iter().zip(&want5).map(|(a, b)| (a.1, b.1)).unzip();
        assert!(rel_err(&ours, &theirs) < 1e-4, "importance values {ours:?} vs {theirs:?}");
        let mut mask_worst = (0u8, 0usize);
        for (name, masks) in want["masks"].as_object().unwrap() {
            for key in ["single", "union"] {
                let features: Vec<String> =
                    masks[key]["features"].as_array().unwrap().iter().map(|f| f.to_string()).collect();
                let out = dir.join(format!("{name}_{key}.png"));
                let o = salient(
                    &["mask", "-w", &w, "-f", &features.join(","), &path_of(name), "-o", out.to_str().unwrap()],
                    dir,
                );
                assert!(o.status.success(), "{}", stderr(&o));
                let reference = image::open(full.join(masks[key]["png"].as_str().unwrap())).unwrap().to_luma8();
                let (max, n) = diff_u8(image::open(&out).unwrap().to_luma8().as_raw(), reference.as_raw());
                assert!(max <= 1, "{name} {key} mask ({features:?}): {n} values differ, by up to {max}/255");
                mask_worst = (mask_worst.0.max(max), mask_worst.1 + n);
            }
        }
        println!(
            "masks (6 images, single and union): {} of {} values differ, by up to {}/255",
            mask_worst.1,
            12 * 224 * 224,
            mask_worst.0
        );
        println!("importance top-5 equal, values within {:.1e}", rel_err(&ours, &theirs));
        let attack = &want["attack"];
        let feature = attack["feature"].to_string();
        let out = dir.join("attacked.png").display().to_string();
        // Steps of 0.1: at the default 10 this non-robust network's ascent is chaotic (see
        // tools/gen_full_fixtures.py); the reference is PyTorch in float64.
        let step = attack["step_size"].to_string();
        let run = |steps: &str| {
            let args = [
                "attack",
                "-w",
                &w,
                "--json",
                "-f",
                &feature,
                "--steps",
                steps,
                "--step-size",
                &step,
                &path_of("chelsea.png"),
                "-o",
                &out,
            ];
            json_lines(&args, dir).remove(0)
        };
        let trajectory = &attack["trajectory"];
        let (f64s, f32s) = (floats(&trajectory["float64"]), floats(&trajectory["float32"]));
        assert_eq!(trajectory["steps"][0], 1);
        // One step: the input gradient at full size against float64 PyTorch's (float32
        // PyTorch is 6.5e-4 off it).
        let one = run("1");
        let rel = |got: &serde_json::Value, want: f64| (got.as_f64().unwrap() - want).abs() / want.abs();
        assert!(rel(&one["before"], attack["before"].as_f64().unwrap()) <= 1e-4, "attack before: {}", one["before"]);
        let first = rel(&one["after"], f64::from(f64s[0]));
        assert!(first <= 2e-3, "attack, 1 step: {} vs PyTorch float64's {} ({first:.1e})", one["after"], f64s[0]);
        // A hundred steps: where a ReLU's input is near zero, float32 rounding switches it and
        // the ascent takes another path. The bound is twice the farthest float32 PyTorch
        // strays from float64 along the recorded trajectory (1.9%).
        let spread = f64s.iter().zip(&f32s).map(|(a, b)| f64::from((a - b).abs() / a.abs())).fold(0.0, f64::max);
        let all = run("100");
        let last = rel(&all["after"], attack["after"].as_f64().unwrap());
        assert!(
            last <= 2.0 * spread,
            "attack, 100 steps: {} vs PyTorch float64's {} ({last:.1e}; float32 PyTorch strays {spread:.1e})",
            all["after"],
            attack["after"]
        );
        println!(
            "attack: 1 step {} vs PyTorch float64's {} ({first:.1e}); 100 steps {} vs {} ({last:.1e}, float32 PyTorch strays up to {spread:.1e})",
            one["after"], f64s[0], all["after"], attack["after"]
        );
    }
}

/// What the browser still does differently: it decodes JPEGs with the `image` crate instead of
/// libjpeg-turbo (which PIL uses, as Salient does natively). Measured on the model's view of
/// the fixture JPEGs, and bounded so that a change shows.
#[test]
fn browser_jpeg_decoding_differs_from_pillows_by_little() {
    let mut report = Vec::new();
    for name in ["rocket.jpg", "coffee.jpg"] {
        let bytes = std::fs::read(fixture("images").join(name)).unwrap();
        let native = preprocess::model_view(&decode::decode_image(name, &bytes).unwrap());
        let browser = preprocess::model_view(&image::load_from_memory(&bytes).unwrap().to_rgb8());
        let (max, n) = diff_u8(native.as_raw(), browser.as_raw());
        let share = n as f64 / native.as_raw().len() as f64;
        report.push(format!("{name}: {:.1}% of values differ, by up to {max}/255", 100.0 * share));
        assert!(max <= 8 && share < 0.5, "{}", report.join("; "));
    }
    println!("browser JPEG decoding vs libjpeg-turbo, on the 224×224 view: {}", report.join("; "));
}
