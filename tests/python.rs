//! The Python package (python/): `noise_eval` of a callable equals `salient eval`, a numpy-only
//! classifier runs end to end, `Dataset` reads a build and the paper's release layout, bad
//! input raises clear exceptions. Each test runs one case of python/tests/test_salient.py
//! with the Python that has the package installed: `$SALIENT_PYTHON` (`make test` builds it
//! with `make python`; without it the tests fail and say so).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use salient_tests::release::{make_release_layout, mturk_csv};
use salient_tests::*;

fn python() -> PathBuf {
    let p = std::env::var_os("SALIENT_PYTHON").map(PathBuf::from).unwrap_or_default();
    assert!(
        p.is_file(),
        "$SALIENT_PYTHON must name a Python with the salient package installed (`make python` makes one \
         in ~/.cache/salient/venv-*, and `make test` passes it); it is {p:?}"
    );
    p
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The synthetic benchmark, small, through the pipeline (once per run of this binary): the
/// robust model's dataset in `run/dataset`, its images in `bench/test`, and `salient eval`'s
/// report with seed 5 and 2 trials in `cli-eval`.
fn bench() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let models = repo().join("models");
        let robust = models.join("synth-robust.safetensors").display().to_string();
        let plain = models.join("synth-plain.safetensors").display().to_string();
        for args in [
            &["synth", "generate", "-o", "bench", "--train-per-class", "10", "--test-per-class", "8"][..],
            &["synth", "score", "--data", "bench", "--robust", &robust, "--plain", &plain, "-o", "run"],
            &["eval", "-w", &robust, "--dataset", "run/dataset", "--images", "bench/test"]
                .into_iter()
                .chain(["--seed", "5", "--trials", "2", "-o", "cli-eval"])
                .collect::<Vec<_>>(),
            &["spuriosity", "--run", "run/discover", "--annotations", "run/labels.csv", "--k", "3", "--model", &robust]
                .into_iter()
                .chain(["-o", "cli-spuriosity"])
                .collect::<Vec<_>>(),
        ] {
            let o = salient(args, p);
            assert!(o.status.success(), "salient {args:?} failed:\n{}", stderr(&o));
        }
        dir
    })
    .path()
}

/// Runs `case` of the Python tests with `args`; the case's output is shown when it fails.
fn case(name: &str, args: &[&str]) {
    let o = Command::new(python())
        .arg(repo().join("python/tests/test_salient.py"))
        .arg(name)
        .args(args)
        .env("SALIENT_BIN", salient_bin())
        .env_remove("SALIENT_WEIGHTS")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "python case {name} failed:\n{out}");
    assert!(out.contains(&format!("ok: {name}")), "python case {name} did not finish:\n{out}");
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn python_noise_eval_of_the_packages_model_equals_salient_eval() {
    let b = bench();
    let w = repo().join("models/synth-robust.safetensors");
    case(
        "equals_cli",
        &[
            &s(&w),
            &s(&b.join("run/dataset")),
            &s(&b.join("bench/test")),
            &s(&b.join("cli-eval")),
            &s(&b.join("py-eval")),
        ],
    );
}

#[test]
fn python_spuriosity_gap_equals_salient_spuriosity() {
    let b = bench();
    let w = repo().join("models/synth-robust.safetensors");
    let out = tempfile::tempdir().unwrap();
    case(
        "spuriosity",
        &[
            &s(&w),
            &s(&b.join("run/discover")),
            &s(&b.join("run/labels.csv")),
            &s(&b.join("cli-spuriosity")),
            &s(out.path()),
        ],
    );
}

#[test]
fn a_numpy_only_classifier_runs_end_to_end() {
    let b = bench();
    case("numpy_classifier", &[&s(&b.join("run/dataset")), &s(&b.join("bench/test"))]);
}

#[test]
fn the_dataset_reads_a_build_and_the_papers_release() {
    let b = bench();
    let dir = tempfile::tempdir().unwrap();
    let pairs: Vec<(usize, String, usize)> = vec![
        (0, "n01440764".into(), 59),
        (0, "n01440764".into(), 686),
        (325, "n02281406".into(), 1305),
        (325, "n02281406".into(), 1795),
    ];
    make_release_layout(&dir.path().join("release"), &pairs, 3);
    let rows: Vec<(usize, &str, usize)> = pairs.iter().map(|(c, w, f)| (*c, w.as_str(), *f)).collect();
    std::fs::write(dir.path().join("mturk.csv"), mturk_csv(&rows)).unwrap();
    case(
        "dataset",
        &[
            &s(&b.join("run/dataset")),
            &s(&b.join("bench/test")),
            &s(&dir.path().join("release")),
            &s(&dir.path().join("mturk.csv")),
        ],
    );
}

#[test]
fn the_model_answers_as_the_cli_does() {
    let w = fixture("model.safetensors");
    case("model", &[&s(&w), &s(&fixture("images"))]);
}

/// A full-size ResNet-50 through the package, from image files, against PyTorch + Pillow on the
/// same weights (tests/fixtures/full/expected.json, as the CLI's parity test): logits to 1e-4.
#[test]
fn the_packages_resnet50_matches_pytorch_at_full_size() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("r50.safetensors");
    salient_engine::checkpoint::write_safetensors(
        &formula_weights(&salient_engine::ResNetConfig::resnet50(), &fixture("full/bn_resnet50.safetensors")),
        &weights,
        false,
    )
    .unwrap();
    case("full_size", &[&s(&weights), &s(&fixture("images")), &s(&fixture("full/expected.json"))]);
}

#[test]
fn bad_input_raises_clear_exceptions() {
    let b = bench();
    let dir = tempfile::tempdir().unwrap();
    case("bad_input", &[&s(&b.join("run/dataset")), &s(&b.join("bench/test")), &s(dir.path())]);
}
