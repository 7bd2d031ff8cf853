//! `salient fetch-model`: download the published robust ResNet-50, resumably.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use salient_engine::StateDict;

use crate::error::{Error, Result};
use crate::progress;

/// The robustness library's ImageNet ResNet-50, adversarially trained with L2 ε = 3
/// (MadryLab/robustness model zoo), which the Salient ImageNet method uses.
pub const ROBUST_RESNET50_URL: &str = "https://www.dropbox.com/s/knf4uimlqsi1yz8/imagenet_l2_3_0.pt?dl=1";

/// Download the robust ResNet-50 checkpoint (about 300 MB) the method uses.
///
/// Saves to the default location that every other command reads when --weights is not given.
/// A broken download resumes where it stopped, within this run (--retries) and on the next
/// run of the same command. Prints the file's SHA-256; with --sha256 the file is kept only if
/// it matches.
#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// Where to save it [default: $XDG_CACHE_HOME/salient/models/imagenet_l2_3_0.pt].
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,

    /// Download from this address instead (a mirror of the same file).
    #[arg(long, default_value = ROBUST_RESNET50_URL, value_name = "URL")]
    url: String,

    /// Expected SHA-256 (64 hex digits).
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,

    /// How many times to resume after a broken connection.
    #[arg(long, default_value_t = 5, value_name = "N")]
    retries: u32,
}

pub fn run(args: FetchArgs) -> Result<()> {
    let expected = args.sha256.as_deref().map(parse_sha256).transpose()?;
    let out = args
        .out
        .clone()
        .or_else(salient_pipeline::model::default_model_path)
        .ok_or_else(|| Error::Usage("cannot find a home directory for the default location: pass --out".into()))?;
    if out.exists() {
        let sha = salient_pipeline::manifest::file_sha256(&out)?;
        verify(&out, &sha, expected.as_deref())?;
        println!("{} is already here\nsha256 {sha}", out.display());
        return Ok(());
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| salient_engine::Error::write(dir, e))?;
    }
    let part = PathBuf::from(format!("{}.part", out.display()));
    download(&args.url, &part, args.retries)?;
    let sha = salient_pipeline::manifest::file_sha256(&part)?;
    println!("sha256 {sha}");
    verify(&part, &sha, expected.as_deref())?;
    if let Err(e) = StateDict::load(&part) {
        let _ = std::fs::remove_file(&part);
        return Err(Error::Download {
            url: args.url,
            message: format!("the file is not a model checkpoint ({e}); the server may have sent a web page"),
        });
    }
    std::fs::rename(&part, &out).map_err(|e| salient_engine::Error::write(&out, e))?;
    println!("saved {}", out.display());
    Ok(())
}

fn parse_sha256(s: &str) -> Result<String> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(Error::Usage(format!("--sha256 needs 64 hexadecimal digits, got {s:?}")))
    }
}

fn verify(path: &Path, actual: &str, expected: Option<&str>) -> Result<()> {
    match expected {
        Some(e) if e != actual => Err(Error::Data(format!(
            "{}: SHA-256 mismatch: expected {e}, found {actual}; delete the file and fetch again",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Downloads `url` into `part`, appending to what is already there (HTTP Range).
fn download(url: &str, part: &Path, retries: u32) -> Result<()> {
    let fail = |message: String| Error::Download { url: url.to_owned(), message };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut attempt = 0;
    loop {
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut request = agent.get(url);
        if have > 0 {
            request = request.header("Range", &format!("bytes={have}-"));
        }
        let outcome = match request.call() {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let length: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
                let start = match status {
                    200 => 0,
                    206 => have,
                    // The .part file already holds everything.
                    416 if have > 0 => return Ok(()),
                    _ => return Err(fail(format!("the server answered HTTP {status}"))),
                };
                let mut file = if start == 0 { File::create(part) } else { OpenOptions::new().append(true).open(part) }
                    .map_err(|e| salient_engine::Error::write(part, e))?;
                let bar = progress::bar(length.map_or(0, |l| l + start), "bytes", false);
                bar.set_position(start);
                let copied = copy(&mut response.body_mut().as_reader(), &mut file, &bar);
                bar.finish_and_clear();
                let total = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
                match copied {
                    Ok(()) if length.is_none_or(|l| start + l == total) => return Ok(()),
                    Ok(()) => format!("the connection closed after {total} bytes"),
                    Err(e) => format!("{e} after {total} bytes"),
                }
            }
            Err(e) => e.to_string(),
        };
        attempt += 1;
        if attempt > retries {
            return Err(fail(format!(
                "{outcome}; the partial download is kept in {}: run the same command again to resume",
                part.display()
            )));
        }
        eprintln!("warning: {outcome}; resuming (attempt {attempt} of {retries})");
        std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
    }
}

/// Copies until the end of the body, keeping on disk whatever arrived before an error.
fn copy(reader: &mut impl Read, file: &mut File, bar: &indicatif::ProgressBar) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    let result = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                file.write_all(&buf[..n])?;
                bar.inc(n as u64);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    file.sync_all()?;
    result
}
