//! The synthetic benchmark: the generator is deterministic, and the pipeline run on it with the
//! shipped models finds the planted cues.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use salient_tests::*;
use serde_json::Value;

/// Every file under `root`, relative path → bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn model(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models").join(name).display().to_string()
}

#[test]
fn generator_is_deterministic_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for (out, seed) in [("a", "7"), ("b", "7"), ("c", "8")] {
        let o = salient(
            &["synth", "generate", "-o", out, "--seed", seed, "--train-per-class", "4", "--test-per-class", "2"],
            p,
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (a, b, c) = (tree(&p.join("a")), tree(&p.join("b")), tree(&p.join("c")));
    assert_eq!(a, b, "the same seed gives the same bytes");
    assert_ne!(a, c, "another seed gives other images");
    // 10 classes × 6 images, each with its ground-truth regions, plus the two index files.
    assert_eq!(a.len(), 10 * 6 * 2 + 2);
    let manifest: Value = serde_json::from_slice(&a[Path::new("manifest.json")]).unwrap();
    assert_eq!(manifest["classes"][0]["cue"], "stripes");
    assert_eq!(manifest["classes"][4]["train_rate"], 0.4);
    assert_eq!(manifest["classes"][9]["cue"], Value::Null);
    let truth = String::from_utf8(a[Path::new("ground_truth.jsonl")].clone()).unwrap();
    assert_eq!(truth.lines().count(), 60);
}

#[test]
fn training_is_reproducible_from_command_and_seed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let o = salient(&["synth", "generate", "-o", "bench", "--train-per-class", "3", "--test-per-class", "1"], p);
    assert!(o.status.success(), "{}", stderr(&o));
    for out in ["a.safetensors", "b.safetensors"] {
        let args = [
            "synth",
            "train",
            "--data",
            "bench",
            "-o",
            out,
            "--epochs",
            "1",
            "--batch-size",
            "10",
            "--steps",
            "1",
            "--width",
            "4",
        ];
        let o = salient(&args, p);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (a, b) = (std::fs::read(p.join("a.safetensors")).unwrap(), std::fs::read(p.join("b.safetensors")).unwrap());
    assert!(a == b, "the same command and seed give the same weights");
    // The report says how they were made, and the weights load as a model with the class names.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(p.join("a.json")).unwrap()).unwrap();
    assert_eq!(report["seed"], 0);
    assert_eq!(report["epsilon"], 1.0);
    let img = p.join("bench/test/c3_cross/c3_cross_0000.png");
    let o = salient(&["predict", "--json", "-w", "a.safetensors", img.to_str().unwrap()], p);
    assert!(o.status.success(), "{}", stderr(&o));
    let line: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(line["logits"].as_array().unwrap().len(), 10);
    assert_eq!(line["features"].as_array().unwrap().len(), 32);
}

#[test]
fn the_pipeline_recovers_the_planted_cues() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let o = salient(&["synth", "generate", "-o", "bench", "--train-per-class", "40", "--test-per-class", "16"], p);
    assert!(o.status.success(), "{}", stderr(&o));
    let (robust, plain) = (model("synth-robust.safetensors"), model("synth-plain.safetensors"));
    let args = [
        "synth",
        "score",
        "--data",
        "bench",
        "--robust",
        &robust,
        "--plain",
        &plain,
        "-o",
        "run",
        "--attack-steps",
        "0",
    ];
    let o = salient(&args, p);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let score: Value = serde_json::from_str(&std::fs::read_to_string(p.join("run/score.json")).unwrap()).unwrap();
    let f = |k: &str| score[k].as_f64().unwrap_or(f64::NAN);
    assert_eq!(score["pairs"].as_array().unwrap().len(), 50, "5 features for each of 10 classes");
    // The background textures (stripes in circles, dots in crosses) are found; see the README
    // for what limits the rest.
    let found = |class: u64, cue: &str| {
        score["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["class"] == class && p["label"] == "spurious" && p["cue"] == cue)
    };
    assert!(found(0, "stripes") && found(3, "dots"), "{}", stdout(&o));
    // Each cue comes with how much the robust model leans on it: circles are recognised by their
    // stripes (models/synth-robust.json: 100% with, 3% without on the full test split).
    let cues = score["cues"].as_array().unwrap();
    assert_eq!(cues.len(), 5);
    let stripes = cues.iter().find(|c| c["cue"] == "stripes").unwrap();
    let (with, without) =
        (stripes["accuracy_with_cue"].as_f64().unwrap(), stripes["accuracy_without_cue"].as_f64().unwrap());
    assert!(with - without >= 0.3, "stripes: robust accuracy {with} with the cue vs {without} without");
    assert!(f("recall") >= 0.4, "recall {}", f("recall"));
    assert!(f("precision") >= 0.5, "precision {}", f("precision"));
    assert!(f("iou_spurious") > 0.2 && f("iou_core") > 0.2, "IoU {} / {}", f("iou_spurious"), f("iou_core"));
    let models = score["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    // The score reports what each model's evaluation measured, and the robust model's RCS
    // follows from its accuracies.
    for (m, eval) in models.iter().zip(["eval-robust", "eval-plain"]) {
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(p.join("run").join(eval).join("summary.json")).unwrap())
                .unwrap();
        for k in ["core_accuracy", "spurious_accuracy", "rcs", "rcs_ci95"] {
            assert_eq!(m[k], summary[k], "{k} of {eval}: {m}");
        }
        let rho = &m["spearman_rate_vs_rcs"];
        assert_eq!(rho["n"], summary["classes"], "one point per class with core features: {m}");
        assert!(rho["n"].as_u64().unwrap() >= 5, "{m}");
        let (lo, hi) = (rho["ci95"][0].as_f64().unwrap(), rho["ci95"][1].as_f64().unwrap());
        assert!(lo <= rho["rho"].as_f64().unwrap() && rho["rho"].as_f64().unwrap() <= hi, "{rho}");
        let (c, s) = (m["core_accuracy"].as_f64().unwrap(), m["spurious_accuracy"].as_f64().unwrap());
        let a = (c + s) / 2.0;
        assert!(0.0 < a && a < 1.0, "accuracies that leave RCS defined: {m}");
    }
    // What the explorer needs from the run.
    assert!(p.join("run/site-notes.json").exists() && p.join("run/dataset/index.jsonl").exists());
    assert!(stdout(&o).contains("discovery: precision"), "{}", stdout(&o));
}
