//! The dataset-scale pipeline on a synthetic ImageNet-layout folder and the tiny fixture model:
//! labels, discover, build (with kill-and-resume and shard-merge equality), eval, spuriosity.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use salient_tests::*;
use serde_json::Value;

const CLASSES: [&str; 3] = ["n00000001", "n00000002", "n00000003"];

fn make_folder(root: &Path, per_class: usize) {
    make_image_folder(root, &CLASSES, per_class, true);
}

fn weights() -> String {
    fixture("model.safetensors").display().to_string()
}

/// Two labelled features per class (Salient's CSV).
fn write_labels(path: &Path) {
    let mut s = String::from("class,feature,label,rank\n");
    for (c, (core, spurious)) in [(191, 80), (49, 192), (29, 120)].iter().enumerate() {
        s.push_str(&format!("{c},{core},core,1\n{c},{spurious},spurious,2\n"));
    }
    std::fs::write(path, s).unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    images: String,
    labels: String,
}

fn setup(per_class: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    make_folder(&root.join("images"), per_class);
    write_labels(&root.join("labels.csv"));
    Setup {
        images: root.join("images").display().to_string(),
        labels: root.join("labels.csv").display().to_string(),
        root,
        _dir: dir,
    }
}

fn ok(args: &[&str], cwd: &Path) -> String {
    let o = salient(args, cwd);
    assert!(o.status.success(), "salient {args:?} failed:\n{}", stderr(&o));
    stdout(&o)
}

fn build_args<'a>(s: &'a Setup, w: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "build",
        "-w",
        w,
        "--images",
        &s.images,
        "--annotations",
        &s.labels,
        "--per-feature",
        "4",
        "-o",
        out,
        "--batch-size",
        "3",
    ]
}

/// Every file under `dir` (relative path → bytes), temporary files included.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (tree(a), tree(b));
    let ka: Vec<&String> = ta.keys().collect();
    let kb: Vec<&String> = tb.keys().collect();
    assert_eq!(ka, kb, "{} and {} hold different files", a.display(), b.display());
    for (k, v) in &ta {
        assert!(v == &tb[k], "{k} differs between {} and {}", a.display(), b.display());
    }
}

#[test]
fn build_writes_the_salient_imagenet_layout() {
    let s = setup(6);
    let w = weights();
    let summary: Value =
        serde_json::from_str(ok(&build_args(&s, &w, "ds"), &s.root).split("dataset written").next().unwrap()).unwrap();
    assert_eq!(summary["classes"], 3);
    assert_eq!((summary["core_pairs"].as_u64(), summary["spurious_pairs"].as_u64()), (Some(3), Some(3)));
    assert_eq!(summary["masks"], 3 * 2 * 4);
    assert_eq!(summary["images_skipped"], 2);
    let ds = s.root.join("ds");
    assert_eq!(
        std::fs::read_to_string(ds.join("wordnet_dict.py")).unwrap(),
        "{0: 'n00000001', 1: 'n00000002', 2: 'n00000003'}\n"
    );
    let map = std::fs::read_to_string(ds.join("n00000002/image_names_map.csv")).unwrap();
    assert_eq!(map.lines().next(), Some("49,192"));
    assert_eq!(map.lines().count(), 5, "header and 4 images per feature");
    let skipped = std::fs::read_to_string(ds.join("skipped.jsonl")).unwrap();
    assert!(skipped.contains("n00000002/broken.JPEG") && skipped.contains("truncated"), "{skipped}");
    assert!(skipped.contains("n00000003/empty.jpg") && skipped.contains("empty"), "{skipped}");
    let records =
        salient_engine::dataset::parse_index("index", &std::fs::read_to_string(ds.join("index.jsonl")).unwrap())
            .unwrap();
    assert_eq!(records.len(), 24);
    for pair in records.chunks(4) {
        assert!(pair.windows(2).all(|w| w[0].activation >= w[1].activation), "best first");
        assert!(pair.iter().enumerate().all(|(i, r)| r.position == i));
    }
    for r in &records {
        let png = std::fs::read(ds.join(&r.mask)).unwrap();
        let digest = std::process::Command::new("sha256sum").arg(ds.join(&r.mask)).output().unwrap();
        assert!(String::from_utf8_lossy(&digest.stdout).starts_with(&r.sha256), "{}", r.mask);
        let img = image::load_from_memory(&png).unwrap();
        assert!(matches!(img, image::DynamicImage::ImageLuma8(_)) && img.width() == 224 && img.height() == 224);
        let jpeg =
            image::open(ds.join(format!("{}/feature_{}/{}.JPEG", r.wnid, r.feature, r.image))).unwrap().to_luma8();
        let max = jpeg.as_raw().iter().zip(img.to_luma8().as_raw()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(max <= 8, "JPEG mask within a few levels of the PNG ({max})");
    }
    // The dataset's mask equals the `mask` command's for the same image and feature.
    let r = &records[0];
    let source = s.root.join("images").join(&r.source).display().to_string();
    ok(&["mask", "-w", &w, "-f", &r.feature.to_string(), &source, "-o", "single.png"], &s.root);
    assert_eq!(
        image::open(s.root.join("single.png")).unwrap().to_luma8(),
        image::open(ds.join(&r.mask)).unwrap().to_luma8()
    );
    // Nothing temporary is left.
    assert!(tree(&ds).keys().all(|k| !k.contains(".tmp-")));
}

#[test]
fn build_refuses_other_runs_and_bad_labels() {
    let s = setup(3);
    let w = weights();
    ok(&build_args(&s, &w, "ds"), &s.root);
    // The output folder is an argument: its misuse is a usage error (exit 2)...
    let o = salient(&build_args(&s, &w, "ds"), &s.root);
    assert_usage_error(&o, "already holds this run: pass --resume");
    let mut other = build_args(&s, &w, "ds");
    other[8] = "5";
    other.push("--resume");
    let o = salient(&other, &s.root);
    assert_usage_error(&o, "holds another run's data (its per_feature is 4)");
    std::fs::create_dir_all(s.root.join("full")).unwrap();
    std::fs::write(s.root.join("full/notes.txt"), "mine").unwrap();
    let o = salient(&build_args(&s, &w, "full"), &s.root);
    assert_usage_error(&o, "is not empty and holds no Salient run");
    // ... a file that cannot be used is not (exit 1).
    for (text, needle) in [
        ("klass,feature,label\n0,1,core\n", "line 1: unrecognized header"),
        ("class,feature,label\n0,1,core\n1,256,core\n", "line 3: feature 256 does not exist"),
        ("class,feature,label\n0,1,core\n12,3,spurious\n", "line 3: unknown class 12"),
    ] {
        std::fs::write(s.root.join("bad.csv"), text).unwrap();
        let args = ["build", "-w", &w, "--images", &s.images, "--annotations", "bad.csv", "-o", "new"];
        let o = salient(&args, &s.root);
        let err = stderr(&o);
        assert!(o.status.code() == Some(1) && err.contains("bad.csv") && err.contains(needle), "{err}");
    }
}

#[test]
fn interrupted_builds_resume_to_identical_output() {
    let s = setup(5);
    let w = weights();
    ok(&build_args(&s, &w, "reference"), &s.root);
    let reference = s.root.join("reference");
    let files = tree(&reference).len() as u64;
    // Stop after the n-th file written (the process aborts, as under kill -9), then resume: the
    // first writes, the last ones, and 20 points drawn with a fixed seed in between.
    let mut points = vec![1, 2, files - 1];
    let mut x = 0x9E37_79B9u64;
    while points.len() < 23 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let n = 1 + (x >> 33) % (files - 1);
        if !points.contains(&n) {
            points.push(n);
        }
    }
    for n in points {
        let out = format!("crash{n}");
        let o = std::process::Command::new(salient_bin())
            .args(build_args(&s, &w, &out))
            .current_dir(&s.root)
            .env("SALIENT_TEST_ABORT_AFTER_WRITES", n.to_string())
            .output()
            .unwrap();
        assert!(!o.status.success(), "the run was stopped after write {n}");
        let mut resume = build_args(&s, &w, &out);
        resume.push("--resume");
        ok(&resume, &s.root);
        assert_same_tree(&reference, &s.root.join(&out));
    }
    // A real SIGKILL at an arbitrary moment.
    for delay_ms in [30, 120] {
        let out = format!("killed{delay_ms}");
        let mut child = std::process::Command::new(salient_bin())
            .args(build_args(&s, &w, &out))
            .current_dir(&s.root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let mut resume = build_args(&s, &w, &out);
        resume.push("--resume");
        ok(&resume, &s.root);
        assert_same_tree(&reference, &s.root.join(&out));
    }
}

/// A full disk (here: a file-size limit, so no privileges are needed) stops the build with an
/// error naming the file; nothing partial is left, and a resume once there is room finishes it.
#[test]
fn a_full_disk_stops_the_build_resumably() {
    let s = setup(5);
    let w = weights();
    ok(&build_args(&s, &w, "reference"), &s.root);
    let args: Vec<String> = build_args(&s, &w, "full").iter().map(|a| format!("'{a}'")).collect();
    // At most 4 KiB per file (`ulimit -f` counts 512-byte blocks in sh): some outputs do not fit.
    let script = format!("trap '' XFSZ; ulimit -f 8; exec '{}' {}", salient_bin().display(), args.join(" "));
    let o = std::process::Command::new("sh").args(["-c", &script]).current_dir(&s.root).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("full/") && err.to_lowercase().contains("file too large"), "{err}");
    let mut resume = build_args(&s, &w, "full");
    resume.push("--resume");
    ok(&resume, &s.root);
    assert_same_tree(&s.root.join("reference"), &s.root.join("full"));
}

#[test]
fn three_shards_merged_equal_one_run() {
    let s = setup(4);
    let w = weights();
    ok(&build_args(&s, &w, "whole"), &s.root);
    for i in 0..3 {
        let mut a = build_args(&s, &w, Box::leak(format!("shard{i}").into_boxed_str()));
        let shard = Box::leak(format!("{i}/3").into_boxed_str());
        a.extend(["--shard", shard]);
        ok(&a, &s.root);
    }
    // Shards from the environment, as a Slurm array task would get them.
    let o = std::process::Command::new(salient_bin())
        .args(build_args(&s, &w, "slurm1"))
        .current_dir(&s.root)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_tree(&s.root.join("shard1"), &s.root.join("slurm1"));
    let o = salient(&["merge", "shard0", "shard1", "-o", "merged"], &s.root);
    assert!(stderr(&o).contains("shard 2/3 is missing"), "{}", stderr(&o));
    ok(&["merge", "shard0", "shard1", "shard2", "-o", "merged"], &s.root);
    assert_same_tree(&s.root.join("whole"), &s.root.join("merged"));
}

#[test]
fn discover_ranks_from_its_cache_and_renders_pairs() {
    let s = setup(4);
    let w = weights();
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "discover",
            "-w",
            &w,
            "--images",
            &s.images,
            "-o",
            "run",
            "--group",
            "label",
            "--top",
            "2",
            "--per-feature",
            "3",
            "--show",
            "2",
            "--attack-steps",
            "2",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let run = |a: Vec<String>| ok(&a.iter().map(String::as_str).collect::<Vec<_>>(), &s.root);
    run(args(&[]));
    let index: Value = serde_json::from_str(&std::fs::read_to_string(s.root.join("run/index.json")).unwrap()).unwrap();
    let classes = index["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 3);
    for c in classes {
        let feats = c["features"].as_array().unwrap();
        assert_eq!(feats.len(), 2);
        assert!(feats[0]["importance"].as_f64() >= feats[1]["importance"].as_f64());
        for f in feats {
            assert_eq!(f["top_images"].as_array().unwrap().len(), 3);
            for shown in f["shown"].as_array().unwrap() {
                for key in ["view", "heatmap", "attack"] {
                    assert!(s.root.join("run").join(shown[key].as_str().unwrap()).exists(), "{key}");
                }
            }
        }
    }
    assert!(std::fs::read_to_string(s.root.join("run/skipped.jsonl")).unwrap().lines().count() == 2);
    // Ranking again with other settings reads the cache: the cache files stay untouched.
    let cache_before = tree(&s.root.join("run/cache"));
    let stamp = std::fs::metadata(s.root.join("run/cache/n00000001.f16")).unwrap().modified().unwrap();
    let mut again = args(&["--resume"]);
    let top = again.iter().position(|a| a == "--top").unwrap();
    again[top + 1] = "3".into();
    run(again);
    assert_eq!(tree(&s.root.join("run/cache")), cache_before);
    assert_eq!(std::fs::metadata(s.root.join("run/cache/n00000001.f16")).unwrap().modified().unwrap(), stamp);
    let index: Value = serde_json::from_str(&std::fs::read_to_string(s.root.join("run/index.json")).unwrap()).unwrap();
    assert_eq!(index["classes"][0]["features"].as_array().unwrap().len(), 3);

    // Spuriosity from the same cache.
    let out = ok(&["spuriosity", "--run", "run", "--annotations", &s.labels, "--k", "1", "-o", "spur"], &s.root);
    assert!(out.contains("3 classes"), "{out}");
    let csv = std::fs::read_to_string(s.root.join("spur/spuriosity.csv")).unwrap();
    assert!(csv.starts_with("class_index,class_name,images,k,accuracy_most_spurious,accuracy_least_spurious,gap\n"));
    assert_eq!(std::fs::read_to_string(s.root.join("spur/rankings/n00000001.csv")).unwrap().lines().count(), 5);
    // The published gap pools the k-image ends of every class.
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(s.root.join("spur/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["images_per_end"], 3, "k = 1 image at each end of 3 classes");
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').take(3).map(|v| v.parse::<f64>().unwrap() / 100.0).collect())
        .collect();
    let pooled = |col: usize| rows.iter().map(|r| r[col]).sum::<f64>() / rows.len() as f64;
    assert!((summary["accuracy_most_spurious"].as_f64().unwrap() - pooled(2)).abs() < 1e-9, "{summary}");
    assert!((summary["accuracy_least_spurious"].as_f64().unwrap() - pooled(1)).abs() < 1e-9, "{summary}");
    // Any model can be the one measured: the discover run's own model, loaded again and run on
    // the images, gives the very numbers its cache holds.
    let w = weights();
    let out = ok(
        &["spuriosity", "--run", "run", "--annotations", &s.labels, "--k", "1", "--model", &w, "-o", "spur2"],
        &s.root,
    );
    assert!(out.contains("spurious gap of"), "{out}");
    assert_eq!(std::fs::read_to_string(s.root.join("spur2/spuriosity.csv")).unwrap(), csv);
    let again: Value =
        serde_json::from_str(&std::fs::read_to_string(s.root.join("spur2/summary.json")).unwrap()).unwrap();
    assert_eq!(
        (&again["gap"], &again["accuracy_most_spurious"]),
        (&summary["gap"], &summary["accuracy_most_spurious"])
    );
}

#[test]
fn eval_reports_core_and_spurious_accuracy_reproducibly() {
    let s = setup(4);
    let w = weights();
    ok(&build_args(&s, &w, "ds"), &s.root);
    let eval = |out: &str, seed: &str| {
        ok(
            &["eval", "-w", &w, "--dataset", "ds", "--images", &s.images, "--trials", "2", "--seed", seed, "-o", out],
            &s.root,
        )
    };
    eval("e1", "7");
    eval("e2", "7");
    assert_same_tree(&s.root.join("e1"), &s.root.join("e2"));
    let e1 = s.root.join("e1");
    let core = std::fs::read_to_string(e1.join("noise_in_core_features/std_0.25.csv")).unwrap();
    assert!(
        core.starts_with("class_index,class_name,clean_accuracy,spurious_accuracy\n") && core.lines().count() == 4,
        "{core}"
    );
    let spur = std::fs::read_to_string(e1.join("noise_in_spurious_features/std_0.25.csv")).unwrap();
    assert!(spur.starts_with("class_index,class_name,clean_accuracy,core_accuracy\n"));
    let single = std::fs::read_to_string(e1.join("noise_in_single_feature/std_0.25.csv")).unwrap();
    assert!(single.starts_with(
        "class_index,feature_index,feature_rank,feature_label,class_name,clean_accuracy,noisy_accuracy\n"
    ));
    assert_eq!(single.lines().count(), 7);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(e1.join("summary.json")).unwrap()).unwrap();
    for key in ["core_accuracy", "spurious_accuracy", "rcs"] {
        assert_eq!(summary["paper"][key]["trials"].as_array().unwrap().len(), 2, "{key}");
        assert!(summary["paper"][key]["mean"].is_f64() && summary["paper"][key]["ci95"].is_f64(), "{key}");
    }
    // The default RCS is the group's construction, from rcs_per_class.csv's class-balanced means.
    assert_eq!(summary["schema"], 2);
    let rows: Vec<Vec<f64>> = std::fs::read_to_string(e1.join("rcs_per_class.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(2).map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 3, "every class has core features");
    assert_eq!(summary["images"].as_f64().unwrap(), rows.iter().map(|r| r[0]).sum::<f64>());
    let balanced = |col: usize| rows.iter().map(|r| r[col] / 100.0).sum::<f64>() / rows.len() as f64;
    let (core, spur) = (summary["core_accuracy"].as_f64().unwrap(), summary["spurious_accuracy"].as_f64().unwrap());
    assert!((core - balanced(2)).abs() < 1e-5 && (spur - balanced(3)).abs() < 1e-5, "{summary}");
    let a = (core + spur) / 2.0;
    let expected = if a <= 0.0 || a >= 1.0 { 0.0 } else { (core - spur) / (2.0 * a.min(1.0 - a)) };
    assert!((summary["rcs"].as_f64().unwrap() - expected).abs() < 1e-12, "{summary}");
    let ci = summary["rcs_ci95"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap(), "{summary}");
    let paper = std::fs::read_to_string(e1.join("rcs_per_class_paper.csv")).unwrap();
    assert!(paper.starts_with("class_index,class_name,core_accuracy,spurious_accuracy,rcs\n"), "{paper}");
    let svg = std::fs::read_to_string(e1.join("core_vs_spurious.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<circle").count() == 3);
    // The paper's release has no index: labels come from --annotations.
    let paper = s.root.join("paper");
    std::fs::create_dir_all(&paper).unwrap();
    for (k, v) in tree(&s.root.join("ds")) {
        if k.ends_with(".JPEG") || k.ends_with("image_names_map.csv") || k == "wordnet_dict.py" {
            let p = paper.join(&k);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        }
    }
    let o = salient(&["eval", "-w", &w, "--dataset", "paper", "--images", &s.images, "-o", "e3"], &s.root);
    assert!(stderr(&o).contains("give its labels with --annotations"), "{}", stderr(&o));
    // (The paper's images are .JPEG files; ours are PNG, so point the sources at them.)
    for c in CLASSES {
        for e in std::fs::read_dir(s.root.join("images").join(c)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "png") {
                std::fs::copy(&p, p.with_extension("JPEG")).unwrap();
            }
        }
    }
    let out = ok(
        &["eval", "-w", &w, "--dataset", "paper", "--images", &s.images, "--annotations", &s.labels, "-o", "e3"],
        &s.root,
    );
    assert!(out.contains("core_accuracy"), "{out}");
}

#[test]
fn labels_reads_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let mturk = "WorkerId,Input.wordnet_id,Input.class_index,Input.feature_index,Input.feature_rank,Answer.main,Answer.confidence,Answer.reasons\n".to_owned()
        + &["background", "separate_object", "background", "main_object", "main_object"]
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{i},n02281406,325,1797,3,{a},4.0,\"red, on the flower\"\n"))
            .collect::<String>()
        + &(0..5).map(|i| format!("{i},n02281406,325,1305,1,main_object,5.0,wings\n")).collect::<String>();
    std::fs::write(dir.path().join("mturk.csv"), mturk).unwrap();
    let text = ok(&["labels", "--annotations", "mturk.csv"], dir.path());
    assert!(
        text.contains("sulphur butterfly (325)") && text.contains("core: 1305") && text.contains("spurious: 1797"),
        "{text}"
    );
    assert!(text.contains("2 pairs in 1 classes: 1 core, 1 spurious"), "{text}");
    let json: Value =
        serde_json::from_str(&ok(&["labels", "--annotations", "mturk.csv", "--json"], dir.path())).unwrap();
    assert_eq!(json["classes"][0]["spurious"][0], 1797);
    assert_eq!(json["summary"]["spurious_by_kind"]["ambiguous"], 1);
}

/// The paper's published labels (they cannot be redistributed, so they are never part of the
/// repository; this project's machines have them beside it): the counts the paper's data gives.
#[test]
#[ignore = "needs the paper's labels (../shared/salient_imagenet/ or SALIENT_MTURK_CSV): `make test` runs it"]
fn published_mturk_labels() {
    let path = salient_tests::release::paper_mturk_csv();
    let dir = tempfile::tempdir().unwrap();
    let json: Value =
        serde_json::from_str(&ok(&["labels", "--annotations", path.to_str().unwrap(), "--json"], dir.path())).unwrap();
    let s = &json["summary"];
    assert_eq!((s["pairs"].as_u64(), s["core"].as_u64(), s["spurious"].as_u64()), (Some(5000), Some(4370), Some(630)));
    assert_eq!(s["classes_with_spurious"], 357);
    assert_eq!(s["classes_with_core"], 985);
    assert_eq!(s["distinct_features"], 1462);
    assert_eq!(s["spurious_by_kind"], serde_json::json!({"background": 231, "separate_object": 296, "ambiguous": 103}));
    assert_eq!(s["spurious_by_rank"], serde_json::json!({"1": 84, "2": 100, "3": 141, "4": 148, "5": 157}));
    let c325 = json["classes"].as_array().unwrap().iter().find(|c| c["class"] == 325).unwrap();
    assert_eq!(c325["core"], serde_json::json!([1305, 604, 1582]));
    assert_eq!(c325["spurious"], serde_json::json!([1797, 595]));
}

/// The Slurm scripts in deploy/, run as Slurm would run them (with `srun` standing in).
#[test]
fn slurm_scripts_build_shards_and_merge_them() {
    let s = setup(3);
    let w = weights();
    ok(&build_args(&s, &w, "whole"), &s.root);
    let bin = s.root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let srun = bin.join("srun");
    std::fs::write(&srun, "#!/bin/sh\nexec \"$@\"\n").unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&srun).status().unwrap();
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/slurm");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let script = |name: &str, task: Option<usize>| {
        let mut c = std::process::Command::new("bash");
        c.arg(deploy.join(name))
            .current_dir(&s.root)
            .env("PATH", &path)
            .env("SALIENT", salient_bin())
            .env("IMAGES", &s.images)
            .env("LABELS", &s.labels)
            .env("WEIGHTS", &w)
            .env("PER_FEATURE", "4")
            .env("BATCH_SIZE", "3")
            .env("OUT", s.root.join("slurm-out"));
        if let Some(t) = task {
            c.env("SLURM_ARRAY_TASK_ID", (t + 10).to_string())
                .env("SLURM_ARRAY_TASK_MIN", "10")
                .env("SLURM_ARRAY_TASK_COUNT", "3");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    };
    for t in 0..3 {
        script("build.sbatch", Some(t));
    }
    script("merge.sbatch", None);
    assert_same_tree(&s.root.join("whole"), &s.root.join("slurm-out/dataset"));
}
