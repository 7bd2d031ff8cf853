//! Shared helpers for the end-to-end tests: fixture paths, expected values, the CLI binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `tests/fixtures`, or the folder named by `SALIENT_FULL_FIXTURES` for full-size runs.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

/// `expected.json` of a fixture folder.
pub fn expected(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json is readable");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number") as f32).collect()
}

/// Largest |a − b| relative to the largest |b| (the vector's max), as the parity target reads.
pub fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// The `salient` binary built beside the test executables (`target/<profile>/salient`).
pub fn salient_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = dir.join(format!("salient{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} is missing: build the CLI first (cargo build --release -p salient)", bin.display());
    bin
}

/// Runs `salient` with `args` in `cwd`, without a terminal (so no progress bars).
pub fn salient(args: &[&str], cwd: &Path) -> Output {
    Command::new(salient_bin()).args(args).current_dir(cwd).env_remove("SALIENT_WEIGHTS").output().expect("salient runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
