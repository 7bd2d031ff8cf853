//! The bad-input corpus: every file in `tests/fixtures/hostile/` (written by
//! `tools/gen_hostile.py`) is read the way the product reads that kind of file, and must give the
//! error `expected.tsv` names — never a panic, never a hang, never anything else.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use std::process::Command;

use salient_engine::annotations::{Annotations, Bounds};
use salient_engine::{Engine, dataset, decode, fsutil};
use salient_tests::*;

/// Reads `path` as `kind`; the error message, or `"ok"`.
fn read_as(kind: &str, path: &Path) -> String {
    let result: Result<(), String> = match kind {
        "checkpoint" => Engine::load(path, &burn::tensor::Device::flex()).map(|_| ()).map_err(|e| e.to_string()),
        "image" => decode::load_image(path).map(|_| ()).map_err(|e| e.to_string()),
        "annotations" => Annotations::load(path, Bounds::IMAGENET_RESNET50).map(|_| ()).map_err(|e| e.to_string()),
        "index" => fsutil::read_text(path)
            .and_then(|text| dataset::parse_index(&path.display().to_string(), &text))
            .map(|_| ())
            .map_err(|e| e.to_string()),
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
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
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
    assert!(checked >= 38, "only {checked} files checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The pickle that calls `os.system("touch /tmp/salient-pwned")` on load: the reader keeps the
/// call as inert data — the callable, its argument — and performs nothing.
#[test]
fn a_pickled_call_is_recorded_not_performed() {
    use salient_engine::checkpoint::pickle::{self, Node};
    let bytes = std::fs::read(fixture("hostile/pickle-calls-system.pt")).unwrap();
    let (p, used) = pickle::parse(&bytes).unwrap();
    assert_eq!(used, bytes.len());
    let Node::Call { callable, args, state } = p.get(p.root) else {
        panic!("expected an inert call, got {:?}", p.get(p.root))
    };
    assert_eq!(p.as_global(*callable), Some(("os", "system")));
    let arg = p.as_seq(*args).and_then(|a| a.first().copied()).and_then(|a| p.as_str(a));
    assert_eq!(arg, Some("touch /tmp/salient-pwned"));
    assert_eq!(*state, None);
}

#[test]
fn a_csv_with_a_million_columns_is_refused_quickly() {
    let mut text = (0..1_000_000).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
    text.push_str("\n1,2,3\n");
    let message =
        bounded("wide.csv".into(), move || match Annotations::parse("wide.csv", &text, Bounds::IMAGENET_RESNET50) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        })
        .unwrap();
    assert!(message.contains("unrecognized header") && message.len() < 1000, "{}", &message[..message.len().min(300)]);
}

fn weights() -> String {
    fixture("model.safetensors").display().to_string()
}

/// Each reader on a FIFO with no writer, on `/dev/zero` and on a link to it: refused at once,
/// naming the kind of file, never blocking or reading forever. (Class: special files.)
#[test]
fn every_reader_refuses_special_files_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (kind, ext) in [("checkpoint", "pt"), ("image", "jpg"), ("annotations", "csv"), ("index", "jsonl")] {
        let fifo = dir.path().join(format!("fifo.{ext}"));
        assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs").success());
        let link = dir.path().join(format!("zero.{ext}"));
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        for (path, needle) in [
            (fifo, "it is a named pipe (FIFO), not a regular file"),
            (PathBuf::from("/dev/zero"), "it is a character device, not a regular file"),
            (link, "it is a character device, not a regular file"),
        ] {
            let shown = path.display().to_string();
            let message = bounded(format!("{kind} {shown}"), move || read_as(kind, &path)).unwrap();
            assert!(message.contains(needle) && message.contains(&shown), "{kind} {shown}: {message}");
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
    // And through the CLI: a FIFO as weights, a link to /dev/zero among images.
    let fifo = dir.path().join("fifo.pt");
    assert_one_line_error(
        &salient(&["predict", "-w", fifo.to_str().unwrap(), "x.png"], dir.path()),
        "named pipe (FIFO)",
    );
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    std::fs::copy(fixture("images/chelsea.png"), images.join("cat.png")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", images.join("zero.jpg")).unwrap();
    let o = salient(&["predict", "-w", &weights(), "--json", "images"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o).lines().count(), 1, "the real image is still predicted");
    assert!(stderr(&o).contains("zero.jpg: it is a character device, not a regular file"), "{}", stderr(&o));
}

/// A legacy torch file: magic, protocol, system info, `payload`, the storage keys, and
/// storage `0` holding `floats` f32 values.
fn legacy_checkpoint(payload: &[u8], floats: u64) -> Vec<u8> {
    let mut out = b"\x80\x02\x8a\x0a".to_vec();
    out.extend(&0x1950a86a20f9469cfc6c_u128.to_le_bytes()[..10]);
    out.extend(b".\x80\x02M\xe9\x03.\x80\x02}.");
    out.extend(payload);
    out.extend(b"\x80\x02](X\x01\x00\x00\x000e.");
    out.extend(floats.to_le_bytes());
    out.extend(vec![0u8; floats as usize * 4]);
    out
}

/// `_rebuild_tensor_v2` of 4 floats in storage `0`, as protocol-2 opcodes.
const TENSOR_CALL: &[u8] = b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR";

/// The checkpoints of the hostile corpus that are made at test time (megabytes to gigabytes,
/// sparse on disk), with the error each must give.
fn generated_checkpoints(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    // 100 000 tensor entries keyed by one memoized 8 MiB string.
    let mut payload = b"\x80\x02}(X".to_vec();
    payload.extend((8u32 << 20).to_le_bytes());
    payload.extend(vec![b'k'; 8 << 20]);
    payload.extend(b"q\x00");
    payload.extend(TENSOR_CALL);
    payload.extend(b"q\x01");
    for _ in 1..100_000 {
        payload.extend(b"h\x00h\x01");
    }
    payload.extend(b"u.");
    let long_keys = dir.join("long-keys.pt");
    std::fs::write(&long_keys, legacy_checkpoint(&payload, 4)).unwrap();
    // Sparse safetensors: 1 GiB of f16 and 9 GiB of f32 that the disk does not hold.
    let sparse = |name: &str, dtype: &str, elements: u64, size: u64| {
        let path = dir.join(name);
        let head = safetensors_file(&[("conv1.weight".into(), dtype, vec![elements as usize], Vec::new())], None);
        let n = u64::from_le_bytes(head[..8].try_into().unwrap()) as usize;
        let header = String::from_utf8(head[8..8 + n].to_vec()).unwrap().replace("[0,0]", &format!("[0,{size}]"));
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        std::fs::write(&path, &bytes).unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(bytes.len() as u64 + size).unwrap();
        path
    };
    vec![
        (long_keys, "a dict key at the top level is 8388608 bytes long, over the 1024-byte limit for tensor names"),
        (
            sparse("1gib.safetensors", "F16", 1 << 29, 1 << 30),
            "its tensors hold 536870912 elements, more than the 268435456",
        ),
        (
            sparse("9gib.safetensors", "F32", 9 << 28, 9 << 30),
            "its tensors hold 2415919104 elements, more than the 268435456",
        ),
    ]
}

/// Checkpoints whose declared sizes are far beyond their bytes: refused from the declaration,
/// before any allocation. (Class: readers bound work by the bytes present.)
#[test]
fn checkpoints_are_bounded_by_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for (path, needle) in generated_checkpoints(dir.path()) {
        let name = path.display().to_string();
        let message = bounded(name.clone(), move || read_as("checkpoint", &path)).unwrap();
        assert!(message.contains(needle), "{name}: {message}");
    }
}

/// Every checkpoint row of the corpus through the CLI: a one-line error, in bounded time and
/// well under the memory a ResNet-50 needs.
#[test]
fn the_cli_refuses_hostile_checkpoints_in_bounded_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = generated_checkpoints(dir.path());
    let table = std::fs::read_to_string(fixture("hostile/expected.tsv")).unwrap();
    let committed: Vec<(PathBuf, String)> = table
        .lines()
        .filter_map(|l| match l.splitn(3, '\t').collect::<Vec<_>>()[..] {
            [file, "checkpoint", expected] if !file.starts_with('#') => {
                Some((fixture("hostile").join(file), expected.to_owned()))
            }
            _ => None,
        })
        .collect();
    assert!(committed.len() >= 21, "{} checkpoint rows", committed.len());
    let image = fixture("images/chelsea.png").display().to_string();
    for (path, needle) in committed.iter().map(|(p, n)| (p.clone(), n.as_str())).chain(cases.drain(..)) {
        let (name, needle_owned, image) = (path.display().to_string(), needle.to_owned(), image.clone());
        let cwd = dir.path().to_path_buf();
        let (o, rss) = bounded_value(name.clone(), move || salient_peak_rss(&["predict", "-w", &name, &image], &cwd));
        assert_one_line_error(&o, &needle_owned);
        assert!(rss < 400 << 20, "{}: peak memory {} MB", path.display(), rss >> 20);
    }
}

/// Every image row of the corpus through the CLI: its error (or its prediction), within 30 s and
/// 400 MB, however much the file's headers, scans or compressed chunks ask for.
#[test]
fn the_cli_reads_hostile_images_in_bounded_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let table = std::fs::read_to_string(fixture("hostile/expected.tsv")).unwrap();
    let mut checked = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let [file, "image", expected] = line.splitn(3, '\t').collect::<Vec<_>>()[..] else { continue };
        let path = fixture("hostile").join(file).display().to_string();
        let cwd = dir.path().to_path_buf();
        let w = weights();
        let (o, rss) = bounded_value(path.clone(), move || salient_peak_rss(&["predict", "-w", &w, &path], &cwd));
        if expected == "ok" {
            assert!(o.status.success(), "{file}: {}", stderr(&o));
        } else {
            assert_one_line_error(&o, expected);
        }
        assert!(rss < 400 << 20, "{file}: peak memory {} MB", rss >> 20);
        checked += 1;
    }
    assert!(checked >= 10, "{checked} image rows");
}

/// Runs `f` on its own thread, failing the test if it takes over 30 s.
fn bounded_value<T: Send + 'static>(what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("{what}: HANG (over 30 s)"))
}

/// A real model written with a header length whose low byte is 0x80 and next byte 2 (a pickle's
/// `PROTO 2`, as Python's safetensors writes about one file in 32) still loads as safetensors.
#[test]
fn safetensors_whose_header_length_looks_like_a_pickle_load() {
    let original = std::fs::read(fixture("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(original[..8].try_into().unwrap()) as usize;
    let len = (n.div_ceil(1 << 16)) * (1 << 16) + 0x0280;
    let mut padded = (len as u64).to_le_bytes().to_vec();
    padded.extend(&original[8..8 + n]);
    padded.resize(8 + len, b' ');
    padded.extend(&original[8 + n..]);
    assert_eq!(&padded[..2], b"\x80\x02");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, padded).unwrap();
    let a = salient_engine::StateDict::load(&path).expect("loads as safetensors");
    let b = salient_engine::StateDict::load(&fixture("model.safetensors")).unwrap();
    assert_eq!(a.format, salient_engine::checkpoint::Format::Safetensors);
    assert_eq!(a.tensors, b.tensors);
}

/// Weights stored as integers or booleans are refused by name, by `predict` and `convert`
/// alike, and `convert` writes nothing.
#[test]
fn integer_weights_are_refused() {
    let tensors: Vec<_> = safetensors_tensors(&std::fs::read(fixture("model.safetensors")).unwrap())
        .into_iter()
        .map(|(name, dtype, shape, bytes)| match name.as_str() {
            "conv1.weight" => (name, "I8", shape, bytes[..bytes.len() / 4].to_vec()),
            "bn1.running_var" => (name, "BOOL", shape, vec![1u8; bytes.len() / 4]),
            _ => (name, if dtype == "F32" { "F32" } else { "I64" }, shape, bytes),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("int8.safetensors"), safetensors_file(&tensors, None)).unwrap();
    let needle = "tensor `conv1.weight` is stored as I8: model weights must be floating point";
    assert_one_line_error(
        &salient(
            &["predict", "-w", "int8.safetensors", &fixture("images/chelsea.png").display().to_string()],
            dir.path(),
        ),
        needle,
    );
    assert_one_line_error(&salient(&["convert", "int8.safetensors", "out.safetensors"], dir.path()), needle);
    assert!(!dir.path().join("out.safetensors").exists());
}

/// A dataset's index and the files it names, for the confinement tests: one class of the
/// fixture model, one image, one mask at `mask_rel` (whatever the caller puts there).
fn crafted_dataset(root: &Path, record: serde_json::Value) {
    make_image_folder(&root.join("images"), &["n00000001"], 1, false);
    std::fs::create_dir_all(root.join("ds/n00000001/feature_1")).unwrap();
    std::fs::write(root.join("ds/index.jsonl"), record.to_string() + "\n").unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/index.html"), "<html></html>").unwrap();
}

fn record(mask: &str, wnid: &str) -> serde_json::Value {
    serde_json::json!({"class": 0, "wnid": wnid, "feature": 1, "label": "core", "position": 0, "image": "n00000001_0",
        "source": "n00000001/n00000001_0.png", "activation": 1.0, "mask": mask, "sha256": "00"})
}

/// `site` and `eval` read only what lies inside the dataset and the images root, and write only
/// inside the output folder. (Class: paths from data files are confined.)
#[test]
fn dataset_paths_stay_inside_their_roots() {
    let site =
        |root: &Path| salient(&["site", "--dataset", "ds", "--images", "images", "--app", "app", "-o", "site"], root);
    let eval =
        |root: &Path| salient(&["eval", "-w", &weights(), "--dataset", "ds", "--images", "images", "-o", "eval"], root);
    // An absolute mask path and a class name that climbs out of the output folder.
    for (rec, needle) in [
        (record("/etc/passwd", "n00000001"), "line 1: `mask`: the path /etc/passwd is absolute"),
        (
            record("n00000001/feature_1/x.png", "../../../outside"),
            "line 1: `wnid`: the path ../../../outside leaves its folder",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        crafted_dataset(dir.path(), rec);
        assert_one_line_error(&site(dir.path()), needle);
        assert_one_line_error(&eval(dir.path()), needle);
        assert!(!dir.path().join("outside").exists() && !dir.path().parent().unwrap().join("outside").exists());
    }
    // A mask that is a link to a file outside the dataset.
    let dir = tempfile::tempdir().unwrap();
    crafted_dataset(dir.path(), record("n00000001/feature_1/n00000001_0.png", "n00000001"));
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("ds/n00000001/feature_1/n00000001_0.png")).unwrap();
    assert_one_line_error(&site(dir.path()), "is a symbolic link that leads outside");
    assert_one_line_error(&eval(dir.path()), "is a symbolic link that leads outside");
    let passwd = std::fs::read("/etc/passwd").unwrap();
    for entry in walk_files(&dir.path().join("site")) {
        assert_ne!(std::fs::read(&entry).unwrap(), passwd, "{} is a copy of /etc/passwd", entry.display());
    }
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk_files(&p)) } else { out.push(p) }
    }
    out
}

/// Links to `.` and `..` inside a folder neither loop nor count an image twice.
#[test]
fn folder_links_neither_loop_nor_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::copy(fixture("images/chelsea.png"), root.join("a.png")).unwrap();
    std::fs::copy(fixture("images/coffee.jpg"), root.join("sub/b.jpg")).unwrap();
    std::os::unix::fs::symlink(".", root.join("again")).unwrap();
    std::os::unix::fs::symlink(".", root.join("and-again")).unwrap();
    std::os::unix::fs::symlink("..", root.join("sub/up")).unwrap();
    let o = bounded("predict over links".into(), {
        let cwd = dir.path().to_path_buf();
        move || stdout(&salient(&["predict", "-w", &weights(), "--json", "images"], &cwd))
    })
    .unwrap();
    assert_eq!(o.lines().count(), 2, "{o}");
}

/// Two images of a class that would share a mask name: the second is skipped and listed, not
/// written over the first; a mask changed after the build is caught by `eval`.
#[test]
fn output_names_never_collide_and_masks_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    make_image_folder(&root.join("images"), &["n00000001", "n00000002"], 3, false);
    let class = root.join("images/n00000001");
    std::fs::copy(class.join("n00000001_0.png"), class.join("n00000001_0.jpg")).unwrap();
    std::fs::write(root.join("labels.csv"), "class,feature,label\n0,191,core\n0,80,spurious\n1,49,core\n").unwrap();
    let w = weights();
    let o = salient(
        &["build", "-w", &w, "--images", "images", "--annotations", "labels.csv", "--per-feature", "4", "-o", "ds"],
        root,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let skipped = std::fs::read_to_string(root.join("ds/skipped.jsonl")).unwrap();
    assert!(
        skipped.contains("n00000001/n00000001_0.png") && skipped.contains("is taken by n00000001/n00000001_0.jpg"),
        "{skipped}"
    );
    let index = std::fs::read_to_string(root.join("ds/index.jsonl")).unwrap();
    for line in index.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let bytes = std::fs::read(root.join("ds").join(r["mask"].as_str().unwrap())).unwrap();
        assert_eq!(sha256_hex(&bytes), r["sha256"].as_str().unwrap(), "the index matches the masks");
    }
    let first: serde_json::Value = serde_json::from_str(index.lines().next().unwrap()).unwrap();
    let mask = root.join("ds").join(first["mask"].as_str().unwrap());
    let other = root.join("ds").join(
        serde_json::from_str::<serde_json::Value>(index.lines().last().unwrap()).unwrap()["mask"].as_str().unwrap(),
    );
    std::fs::copy(&other, &mask).unwrap();
    let o = salient(&["eval", "-w", &w, "--dataset", "ds", "--images", "images", "-o", "eval"], root);
    assert_one_line_error(&o, "the mask's SHA-256 differs from the one in index.jsonl");
}

/// File names that are not UTF-8 are skipped and listed by `discover`, which finishes, and
/// resumes the same way.
#[test]
fn non_utf8_names_are_skipped_and_listed() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    make_image_folder(&root.join("images"), &["n00000001", "n00000002"], 3, false);
    let odd = root.join("images/n00000001").join(std::ffi::OsStr::from_bytes(b"odd_\xff.png"));
    std::fs::copy(root.join("images/n00000001/n00000001_0.png"), odd).unwrap();
    let w = weights();
    let args = [
        "discover",
        "-w",
        &w,
        "--images",
        "images",
        "-o",
        "run",
        "--group",
        "label",
        "--top",
        "2",
        "--per-feature",
        "2",
        "--show",
        "1",
        "--attack-steps",
        "0",
    ];
    for resume in [false, true] {
        let mut a = args.to_vec();
        if resume {
            a.push("--resume");
        }
        let o = salient(&a, root);
        assert!(o.status.success(), "resume={resume}: {}", stderr(&o));
        let skipped = std::fs::read_to_string(root.join("run/skipped.jsonl")).unwrap();
        assert!(skipped.contains("odd_\\\\xff.png") && skipped.contains("not UTF-8"), "{skipped}");
    }
}

/// A file name holding a newline and a terminal escape sequence is printed escaped, on one line.
#[test]
fn names_in_errors_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad\n\x1b[2J.jpg"), b"not an image").unwrap();
    let o = salient(&["predict", "-w", &weights(), "bad\n\x1b[2J.jpg"], dir.path());
    assert_one_line_error(&o, "bad\\n\\u{1b}[2J.jpg: not a JPEG, PNG or WebP image");
}
