//! Shared helpers for the end-to-end tests: fixture paths, expected values, the CLI binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{Rgb, RgbImage};

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
    salient_with_env(args, cwd, &[])
}

/// [`salient`] with these environment variables set (and the CPU kernels the default unless
/// `env` names them).
pub fn salient_with_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(salient_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("SALIENT_WEIGHTS")
        .env_remove("SALIENT_CPU_KERNELS")
        .envs(env.iter().copied())
        .output()
        .expect("salient runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `root/<wnid>/<wnid>_<i>.png`: colored rectangles on textured backgrounds, different per
/// class; with `with_bad_files`, one truncated JPEG and one empty file, which must be skipped
/// and reported.
pub fn make_image_folder(root: &Path, classes: &[&str], per_class: usize, with_bad_files: bool) {
    let mut seed = 12345u64;
    let mut rand = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    for (c, wnid) in classes.iter().enumerate() {
        let dir = root.join(wnid);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let (w, h) = (96 + rand() % 64, 80 + rand() % 48);
            let bg = [rand() as u8, rand() as u8, rand() as u8];
            let fg = [[255, 40, 40], [40, 200, 40], [40, 40, 255], [230, 200, 30]][c % 4];
            let (x0, y0) = (rand() % (w / 2), rand() % (h / 2));
            let img = RgbImage::from_fn(w, h, |x, y| {
                if x >= x0 && x < x0 + w / 3 && y >= y0 && y < y0 + h / 3 {
                    Rgb(fg)
                } else {
                    let t = ((x * (c as u32 + 1) + y * 3) % 17) as u8 * 8;
                    Rgb([bg[0].wrapping_add(t), bg[1], bg[2].wrapping_sub(t)])
                }
            });
            img.save(dir.join(format!("{wnid}_{i}.png"))).unwrap();
        }
    }
    if with_bad_files {
        let jpeg = std::fs::read(fixture("images/rocket.jpg")).unwrap();
        std::fs::write(root.join(classes[1]).join("broken.JPEG"), &jpeg[..jpeg.len() / 3]).unwrap();
        std::fs::write(root.join(classes[2]).join("empty.jpg"), b"").unwrap();
    }
}

/// Serves the files under `root` on 127.0.0.1 under the URL prefix `prefix` (e.g. `/sub/path/`,
/// as a GitHub Pages project site would), for as long as the test runs. Returns the base URL.
pub fn serve_dir(root: PathBuf, prefix: &'static str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let base = format!("http://{}{prefix}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let path = path.split(['?', '#']).next().unwrap_or("/");
                let file = path
                    .strip_prefix(prefix)
                    .filter(|p| !p.split('/').any(|s| s == ".."))
                    .map(|p| root.join(if p.is_empty() { "index.html" } else { p }));
                let mut out = stream;
                match file.and_then(|f| std::fs::read(&f).ok().map(|b| (f, b))) {
                    Some((f, body)) => {
                        let kind = match f.extension().and_then(|e| e.to_str()).unwrap_or("") {
                            "html" => "text/html; charset=utf-8",
                            "js" => "text/javascript",
                            "wasm" => "application/wasm",
                            "css" => "text/css",
                            "json" => "application/json",
                            "png" => "image/png",
                            "jpg" | "jpeg" => "image/jpeg",
                            _ => "application/octet-stream",
                        };
                        let _ = write!(
                            out,
                            "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = out.write_all(&body);
                    }
                    None => {
                        let _ =
                            out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                }
            });
        }
    });
    base
}

/// A PNG holding only a valid header (and an empty image stream) of any declared size.
pub fn write_png_header(path: &Path, w: u32, h: u32) {
    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let crc = crc32(&[kind, data].concat());
        c.extend_from_slice(&crc.to_be_bytes());
        c
    }
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    png.extend(chunk(b"IEND", b""));
    std::fs::write(path, png).unwrap();
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Asserts that `o` failed with exit code 1 (bad data, a file, a failed stage) and one line of
/// error containing `needle`, with no panic and no raw control character (a file name's newline
/// or escape codes stay escaped).
pub fn assert_one_line_error(o: &Output, needle: &str) {
    assert_error(o, 1, needle);
}

/// [`assert_one_line_error`] for a usage error: options that do not fit, exit code 2 (clap's).
pub fn assert_usage_error(o: &Output, needle: &str) {
    assert_error(o, 2, needle);
}

fn assert_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "should fail with {code}:\n{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line of error, got:\n{err}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "expected {needle:?} in:\n{err}");
    assert!(!err.trim_end().chars().any(char::is_control), "control characters in: {err:?}");
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{err}");
}

/// A safetensors file: `(name, dtype, shape, bytes)` tensors in order, and header metadata.
pub fn safetensors_file(
    tensors: &[(String, &str, Vec<usize>, Vec<u8>)],
    metadata: Option<serde_json::Value>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if let Some(m) = metadata {
        header.insert("__metadata__".into(), m);
    }
    let mut offset = 0;
    for (name, dtype, shape, bytes) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
    }
    let header = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    for (_, _, _, bytes) in tensors {
        out.extend(bytes);
    }
    out
}

/// A tensor of a safetensors file: `(name, dtype, shape, bytes)`.
pub type StoredTensor = (String, String, Vec<usize>, Vec<u8>);

/// The tensors of a safetensors file, in data order.
pub fn safetensors_tensors(file: &[u8]) -> Vec<StoredTensor> {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&file[8..8 + n]).unwrap();
    let mut out: Vec<(usize, StoredTensor)> = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let (a, b) =
                (v["data_offsets"][0].as_u64().unwrap() as usize, v["data_offsets"][1].as_u64().unwrap() as usize);
            let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            (a, (k.clone(), v["dtype"].as_str().unwrap().to_owned(), shape, file[8 + n + a..8 + n + b].to_vec()))
        })
        .collect();
    out.sort_by_key(|t| t.0);
    out.into_iter().map(|(_, t)| t).collect()
}

/// SHA-256 of `bytes` in hex, computed by the system's `sha256sum` (an independent reference).
pub fn sha256_hex(bytes: &[u8]) -> String {
    // The CLI prints the digest; compute the reference with the system tool.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, bytes).unwrap();
    let o = std::process::Command::new("sha256sum").arg(&p).output().expect("sha256sum is available");
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap().to_owned()
}

/// Runs `salient` as [`salient`] does, and also returns the child's peak resident memory in
/// bytes (`wait4`'s `ru_maxrss`).
pub fn salient_peak_rss(args: &[&str], cwd: &Path) -> (Output, u64) {
    use std::io::Read;
    use std::process::Stdio;
    // Reaped below by `wait4` (which also gives the peak memory), not by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(salient_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("SALIENT_WEIGHTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("salient runs");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        stdout.read_to_end(&mut b).map(|_| b)
    });
    child.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    out.extend(reader.join().unwrap().unwrap());
    let mut status = 0;
    // SAFETY: wait4 on our own child's pid, with valid pointers to a status and an rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let status = std::os::unix::process::ExitStatusExt::from_raw(status);
    (Output { status, stdout: out, stderr: err }, usage.ru_maxrss as u64 * 1024)
}

/// The image `tools/gen_resize_fixtures.py` draws: pixel (x, y, c) is the top byte of a 32-bit
/// hash of (x, y, c, seed). `[h, w, channels]`, row-major.
pub fn formula_image(w: u32, h: u32, channels: u32, seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h * channels) as usize);
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                let mut v = x
                    .wrapping_mul(0x9E3779B1)
                    .wrapping_add(y.wrapping_mul(0x85EBCA77))
                    .wrapping_add(c.wrapping_mul(0xC2B2AE3D))
                    .wrapping_add(seed.wrapping_mul(0x27D4EB2F));
                v ^= v >> 15;
                v = v.wrapping_mul(0x2C1B3C6D);
                v ^= v >> 12;
                out.push((v >> 24) as u8);
            }
        }
    }
    out
}

/// FNV-1a (32-bit) of a tensor name: the seed of its formula weights.
fn fnv1a(name: &str) -> u32 {
    name.bytes().fold(0x811C9DC5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x01000193))
}

/// Element `i` of the formula tensor with `seed`: a uniform value in [-1, 1).
fn formula_uniform(i: u32, seed: u32) -> f64 {
    let mut v = i.wrapping_mul(0x9E3779B1).wrapping_add(seed.wrapping_mul(0x85EBCA77));
    v ^= v >> 15;
    v = v.wrapping_mul(0x2C1B3C6D);
    v ^= v >> 12;
    v = v.wrapping_mul(0x297A2D39);
    v ^= v >> 15;
    f64::from(v >> 8) / f64::from(1u32 << 23) - 1.0
}

/// The weights of `tools/gen_full_fixtures.py` for `config`: the formula for every tensor,
/// then the committed batch-norm statistics.
pub fn formula_weights(config: &salient_engine::ResNetConfig, bn_stats: &Path) -> salient_engine::StateDict {
    let mut sd = config.init(&burn::tensor::Device::flex(), 0).state_dict("formula");
    for (name, t) in sd.tensors.iter_mut() {
        let seed = fnv1a(name);
        let value = |u: f64| -> f64 {
            match t.shape.len() {
                4 => u * (6.0 / (t.shape[0] * t.shape[2] * t.shape[3]) as f64).sqrt(),
                2 => u / (t.shape[1] as f64).sqrt(),
                _ if name.ends_with(".weight") => (if name.starts_with("layer") { 0.5 } else { 1.0 }) + 0.1 * u,
                _ if name.ends_with(".running_var") => 1.25 + 0.25 * u,
                _ => 0.1 * u,
            }
        };
        t.data = (0..t.data.len() as u32).map(|i| value(formula_uniform(i, seed)) as f32).collect();
    }
    let stats = salient_engine::StateDict::load(bn_stats).unwrap();
    assert!(stats.tensors.len() >= 40, "{}: {} statistics", bn_stats.display(), stats.tensors.len());
    for (name, t) in stats.tensors {
        let slot = sd.tensors.get_mut(&name).unwrap_or_else(|| panic!("the model has no {name}"));
        assert_eq!(slot.shape, t.shape, "{name}");
        slot.data = t.data;
    }
    sd
}
pub mod release;
