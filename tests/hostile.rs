//! The bad-input corpus: every file in `tests/fixtures/hostile/` (written by
//! `tools/gen_hostile.py`) is read the way the product reads that kind of file, and must give the
//! error `expected.tsv` names — never a panic, never a hang, never anything else.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use salient_engine::annotations::{Annotations, Bounds};
use salient_engine::{Engine, dataset, decode};
use salient_tests::*;

/// Reads `path` as `kind`; the error message, or `"ok"`.
fn read_as(kind: &str, path: &Path) -> String {
    let result: Result<(), String> = match kind {
        "checkpoint" => Engine::load(path, &burn::tensor::Device::flex()).map(|_| ()).map_err(|e| e.to_string()),
        "image" => decode::load_image(path).map(|_| ()).map_err(|e| e.to_string()),
        "annotations" => Annotations::load(path, Bounds::IMAGENET_RESNET50).map(|_| ()).map_err(|e| e.to_string()),
        "index" => {
            let text = std::fs::read_to_string(path).unwrap();
            dataset::parse_index(&path.display().to_string(), &text).map(|_| ()).map_err(|e| e.to_string())
        }
        other => panic!("unknown kind {other} in expected.tsv"),
    };
    result.err().unwrap_or_else(|| "ok".into())
}

/// Runs `f` on its own thread: its value, or a description of its panic or of the time-out.
fn bounded(what: String, f: impl FnOnce() -> String + Send + 'static) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(outcome.map_err(|p| {
            p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
        }));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(message)) => Ok(message),
        Ok(Err(panic)) => Err(format!("{what}: PANIC: {panic}")),
        Err(_) => Err(format!("{what}: HANG (over 30 s)")),
    }
}

#[test]
fn every_hostile_file_gets_its_exact_error() {
    let dir: PathBuf = fixture("hostile");
    let table = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in table.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let cols: Vec<&str> = line.splitn(3, '\t').collect();
        let [file, kind, expected] = cols[..] else { panic!("expected.tsv: bad line {line:?}") };
        let (path, kind_owned) = (dir.join(file), kind.to_owned());
        match bounded(file.to_owned(), move || read_as(&kind_owned, &path)) {
            Ok(message) if message.contains(expected) => {}
            Ok(message) => failures.push(format!("{file}: expected an error containing {expected:?}, got {message:?}")),
            Err(e) => failures.push(e),
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} files checked");
    assert!(!Path::new("/tmp/salient-pwned").exists(), "a zip entry was extracted outside the archive");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_csv_with_a_million_columns_is_refused_quickly() {
    let mut text = (0..1_000_000).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
    text.push_str("\n1,2,3\n");
    let message = bounded("wide.csv".into(), move || match Annotations::parse("wide.csv", &text, Bounds::IMAGENET_RESNET50) {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    })
    .unwrap();
    assert!(message.contains("unrecognized header") && message.len() < 1000, "{}", &message[..message.len().min(300)]);
}
