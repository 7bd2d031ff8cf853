//! The `salient` command line: its output contracts, bad input, and downloads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use salient_tests::*;
use serde_json::Value;

fn weights() -> String {
    fixture("model.safetensors").display().to_string()
}

fn image(name: &str) -> String {
    fixture("images").join(name).display().to_string()
}

/// Runs `salient`, asserts success, returns stdout.
fn ok(args: &[&str], cwd: &Path) -> String {
    let o = salient(args, cwd);
    assert!(o.status.success(), "salient {args:?} failed:\n{}", stderr(&o));
    stdout(&o)
}

/// Runs `salient`, asserts a one-line error containing `needle` and exit code 1 (bad data).
fn fails(args: &[&str], cwd: &Path, needle: &str) {
    assert_one_line_error(&salient(args, cwd), needle);
}

/// Runs `salient`, asserts a one-line usage error containing `needle` and exit code 2.
fn misused(args: &[&str], cwd: &Path, needle: &str) {
    assert_usage_error(&salient(args, cwd), needle);
}

#[test]
fn predict_json_contract() {
    let dir = tempfile::tempdir().unwrap();
    let e = expected(&fixtures());
    let names = ["rocket.jpg", "chelsea.png", "coffee_cmyk.jpg"];
    let args: Vec<String> = ["predict", "-w", &weights(), "--json"]
        .iter()
        .map(|s| s.to_string())
        .chain(names.iter().map(|n| image(n)))
        .collect();
    let o = salient(&args.iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no progress bar or chatter off a terminal");
    let lines: Vec<Value> =
        stdout(&o).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), names.len());
    for (line, name) in lines.iter().zip(names) {
        let obj = line.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["features", "image", "logits", "schema", "top5"]);
        assert_eq!(line["schema"], 1, "the layout's version");
        assert_eq!(line["image"], image(name));
        let top5 = line["top5"].as_array().unwrap();
        assert_eq!(top5.len(), 5);
        for t in top5 {
            assert!(t["class"].is_u64() && t["name"].is_string() && t["prob"].is_f64());
        }
        let logits = floats(&line["logits"]);
        assert_eq!(logits.len(), 10);
        assert_eq!(floats(&line["features"]).len(), 256);
        // Against PyTorch on PyTorch's own preprocessing: close, and the same ranking.
        let want = floats(&e["images"][name]["logits"]);
        assert!(rel_err(&logits, &want) < 2e-2, "{name}");
        let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap() as u64;
        assert_eq!(top5[0]["class"].as_u64().unwrap(), argmax(&want), "{name}");
    }
}

#[test]
fn predict_reports_bad_images_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.jpg"), b"\xff\xd8\xff\xe0 not really").unwrap();
    let o = salient(&["predict", "-w", &weights(), "--json", &image("rocket.jpg"), "broken.jpg"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o).lines().count(), 1, "the good image is still reported");
    let err = stderr(&o);
    assert!(err.contains("broken.jpg") && err.contains("1 of 2 images"), "{err}");
}

#[test]
fn mask_writes_the_reference_mask() {
    let dir = tempfile::tempdir().unwrap();
    let e = expected(&fixtures());
    let features: Vec<String> = e["mask_features"][1].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    let key = features.join("_");
    for name in ["rocket.jpg", "chelsea.png"] {
        ok(
            &["mask", "-w", &weights(), "-f", &features.join(","), &image(name), "-o", "m.png", "--overlay", "o.png"],
            dir.path(),
        );
        let ours = image::open(dir.path().join("m.png")).unwrap();
        assert!(matches!(ours, image::DynamicImage::ImageLuma8(_)), "8-bit grayscale");
        let ours = ours.to_luma8();
        assert_eq!(ours.dimensions(), (224, 224));
        let want = image::open(fixtures().join(e["images"][name]["masks"][&key].as_str().unwrap())).unwrap().to_luma8();
        let diffs: Vec<u8> = ours.as_raw().iter().zip(want.as_raw()).map(|(a, b)| a.abs_diff(*b)).collect();
        let max = *diffs.iter().max().unwrap();
        // From the image file: preprocessing is within 1/255 of torchvision's, masks follow.
        assert!(max <= 2, "{name}: mask differs by up to {max}/255");
        assert_eq!(image::open(dir.path().join("o.png")).unwrap().to_rgb8().dimensions(), (224, 224));
    }
}

#[test]
fn rank_json_contract_matches_pytorch_top5() {
    let dir = tempfile::tempdir().unwrap();
    let e = expected(&fixtures());
    let class = e["rank_class"].to_string();
    let images = fixtures().join("images").display().to_string();
    let out: Value =
        serde_json::from_str(&ok(&["rank", "-w", &weights(), "--class", &class, "--json", &images], dir.path()))
            .unwrap();
    assert_eq!(out["class"], e["rank_class"]);
    let top: Vec<u64> = out["top"].as_array().unwrap().iter().map(|t| t["feature"].as_u64().unwrap()).collect();
    let want: Vec<u64> = e["top5"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(top, want);
    assert!(out["top"][0]["importance"].is_f64());
    let table = ok(&["rank", "-w", &weights(), "--class", &class, "--top", "3", &images], dir.path());
    assert!(table.contains("top 3 features over 9 images"), "{table}");
}

#[test]
fn attack_json_contract() {
    let dir = tempfile::tempdir().unwrap();
    let e = expected(&fixtures())["attack"].clone();
    let f = e["feature"].to_string();
    let out = ok(
        &[
            "attack",
            "-w",
            &weights(),
            "-f",
            &f,
            "--steps",
            "5",
            &image(e["image"].as_str().unwrap()),
            "-o",
            "a.png",
            "--json",
        ],
        dir.path(),
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["feature"], e["feature"]);
    let (before, after) = (v["before"].as_f64().unwrap(), v["after"].as_f64().unwrap());
    // From the file's own preprocessing, so close to (not equal to) PyTorch's values.
    assert!((before - e["before"].as_f64().unwrap()).abs() < 0.05 * before, "{before}");
    assert!(after > 1.5 * before, "{before} -> {after}");
    assert_eq!(image::open(dir.path().join("a.png")).unwrap().to_rgb8().dimensions(), (224, 224));
}

#[test]
fn convert_keeps_the_model_and_drops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = fixture("model_robust_legacy.pt").display().to_string();
    let report = ok(&["convert", &legacy, "plain.safetensors"], dir.path());
    assert!(report.contains("robustness-library checkpoint (PyTorch legacy format)"), "{report}");
    ok(&["convert", &legacy, "half.safetensors", "--half"], dir.path());
    let sd = salient_engine::StateDict::load(&dir.path().join("plain.safetensors")).unwrap();
    assert!(sd.tensors.keys().all(|k| !k.starts_with("module.") && !k.contains("num_batches")));
    assert!(sd.normalization.is_some(), "the normalizer travels in the metadata");
    let half = std::fs::metadata(dir.path().join("half.safetensors")).unwrap().len();
    let full = std::fs::metadata(dir.path().join("plain.safetensors")).unwrap().len();
    assert!(half * 10 < full * 6, "f16 is about half the size ({half} vs {full})");
    let a = ok(&["predict", "-w", &legacy, "--json", &image("rocket.jpg")], dir.path());
    let b = ok(&["predict", "-w", "plain.safetensors", "--json", &image("rocket.jpg")], dir.path());
    assert_eq!(a, b, "the converted model predicts exactly as the original");
    misused(&["convert", &legacy, "out.pt"], dir.path(), "safetensors");
}

#[test]
fn bad_checkpoints_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let img = image("rocket.jpg");
    std::fs::write(p.join("text.pt"), "this is not a checkpoint\n").unwrap();
    fails(&["predict", "-w", "text.pt", &img], p, "not a model checkpoint");
    std::fs::write(p.join("empty.pt"), "").unwrap();
    fails(&["predict", "-w", "empty.pt", &img], p, "empty");
    let wrong = fixture("model_wrong_shape.pth").display().to_string();
    fails(
        &["predict", "-w", &wrong, &img],
        p,
        "tensor `layer1.0.conv2.weight` has shape [3, 3, 3, 3], but the model needs [8, 8, 3, 3]",
    );
    let nan = fixture("model_nan.pth").display().to_string();
    fails(&["predict", "-w", &nan, &img], p, "`layer2.0.bn1.running_var` holds NaN");
    fails(&["predict", "-w", "missing.pt", &img], p, "cannot read missing.pt");
    // Truncated at many points, in both torch formats: always an error, never a panic.
    for file in ["model_robust_legacy.pt", "model_robust_zip.pt", "model.safetensors"] {
        let bytes = std::fs::read(fixture(file)).unwrap();
        for cut in [1, 7, 64, 200, 1000, bytes.len() / 3, bytes.len() / 2, bytes.len() - 100, bytes.len() - 1] {
            let name = format!("cut{cut}.pt");
            std::fs::write(p.join(&name), &bytes[..cut]).unwrap();
            fails(&["predict", "-w", &name, &img], p, &name);
        }
    }
}

#[test]
fn bad_images_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let w = weights();
    let jpeg = std::fs::read(fixture("images/rocket.jpg")).unwrap();
    std::fs::write(p.join("truncated.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    fails(&["predict", "-w", &w, "truncated.jpg"], p, "truncated");
    std::fs::write(p.join("garbage.jpg"), b"\xff\xd8\xff\xe0\x00\x10JFIF\x00garbage garbage").unwrap();
    fails(&["predict", "-w", &w, "garbage.jpg"], p, "garbage.jpg");
    std::fs::write(p.join("notes.png"), "hello").unwrap();
    fails(&["predict", "-w", &w, "notes.png"], p, "not a JPEG, PNG or WebP image");
    write_png_header(&p.join("tiny.png"), 1, 1);
    fails(&["predict", "-w", &w, "tiny.png"], p, "1×1 pixels");
    write_png_header(&p.join("huge.png"), 30000, 30000);
    fails(&["predict", "-w", &w, "huge.png"], p, "30000×30000 pixels, over the limit");
    write_png_header(&p.join("strip.png"), 16, 16000);
    fails(&["mask", "-w", &w, "-f", "1", "strip.png", "-o", "m.png"], p, "aspect ratio");
    assert!(!p.join("m.png").exists(), "no output for a failed input");
}

#[test]
fn bad_arguments_give_one_line_errors_and_leave_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let w = weights();
    let img = image("rocket.jpg");
    misused(
        &["mask", "-w", &w, "-f", "256", &img, "-o", "m.png"],
        p,
        "feature 256 does not exist: this model has 256 features (0–255)",
    );
    misused(&["rank", "-w", &w, "--class", "10", &img], p, "class 10 does not exist");
    misused(&["mask", "-w", &w, "-f", "1", &img, "-o", "m.jpg"], p, "PNG");
    fails(&["mask", "-w", &w, "-f", "1", &img, "-o", "no/such/dir/m.png"], p, "cannot write");
    fails(&["rank", "-w", &w, "--class", "1", p.to_str().unwrap()], p, "holds no JPEG, PNG or WebP images");
    let left: Vec<_> = std::fs::read_dir(p).unwrap().collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}

/// A one-file HTTP server on loopback with Range support. The first `break_first` responses
/// are cut off after `cut` bytes, as a flaky network would. Returns the URL and a request log.
fn serve(body: Vec<u8>, break_first: usize, cut: usize) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/imagenet_l2_3_0.pt", listener.local_addr().unwrap());
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let served = Arc::new(AtomicUsize::new(0));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut range_start = 0usize;
            let mut request = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(r) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range_start = r.trim().trim_end_matches('-').parse().unwrap_or(0);
                }
                request.push_str(&line);
            }
            log2.lock().unwrap().push(format!("range {range_start}"));
            let rest = &body[range_start.min(body.len())..];
            let head = if range_start > 0 {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {range_start}-{}/{}\r\nConnection: close\r\n\r\n",
                    rest.len(),
                    body.len() - 1,
                    body.len()
                )
            } else {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", rest.len())
            };
            let n = served.fetch_add(1, Ordering::SeqCst);
            let send = if n < break_first { &rest[..cut.min(rest.len())] } else { rest };
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(send);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
            let _ = reader.read(&mut [0u8; 1]);
        }
    });
    (url, log)
}

#[test]
fn fetch_model_resumes_broken_downloads_and_checks_the_digest() {
    let body = std::fs::read(fixture("model_robust_legacy.pt")).unwrap();
    let sha = sha256_hex(&body);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();

    // Two broken connections, then a good one: resumed within one run.
    let (url, log) = serve(body.clone(), 2, 100_000);
    let out = ok(&["fetch-model", "--url", &url, "-o", "m.pt", "--sha256", &sha], p);
    assert!(out.contains(&format!("sha256 {sha}")), "{out}");
    assert_eq!(std::fs::read(p.join("m.pt")).unwrap(), body);
    assert_eq!(*log.lock().unwrap(), ["range 0", "range 100000", "range 200000"]);
    assert!(!p.join("m.pt.part").exists());

    // Out of retries: the partial file stays, and the next run resumes from it.
    let (url, _) = serve(body.clone(), 100, 300_000);
    let o = salient(&["fetch-model", "--url", &url, "-o", "n.pt", "--retries", "0"], p);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("run the same command again to resume"), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(p.join("n.pt.part")).unwrap().len(), 300_000);
    let (url, log) = serve(body.clone(), 0, 0);
    ok(&["fetch-model", "--url", &url, "-o", "n.pt"], p);
    assert_eq!(*log.lock().unwrap(), ["range 300000"]);
    assert_eq!(std::fs::read(p.join("n.pt")).unwrap(), body);

    // A wrong digest keeps nothing under the final name.
    let (url, _) = serve(body.clone(), 0, 0);
    let o = salient(&["fetch-model", "--url", &url, "-o", "x.pt", "--sha256", &"0".repeat(64)], p);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("SHA-256 mismatch") && !p.join("x.pt").exists(), "{}", stderr(&o));

    // A web page instead of a checkpoint is recognized.
    let (url, _) = serve(b"<!DOCTYPE html><html>sign in</html>".to_vec(), 0, 0);
    let o = salient(&["fetch-model", "--url", &url, "-o", "h.pt"], p);
    assert!(stderr(&o).contains("not a model checkpoint") && !p.join("h.pt").exists(), "{}", stderr(&o));
}
