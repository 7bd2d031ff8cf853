//! The files every stage writes: atomically, with their bookkeeping beside them.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::Result;

/// Bookkeeping inside an output folder: progress markers and per-class parts.
pub const STATE_DIR: &str = ".salient";

/// Writes a file atomically (temporary file, then rename). Every file a pipeline stage writes
/// goes through here.
///
/// For crash-safety tests, `SALIENT_TEST_ABORT_AFTER_WRITES=N` aborts the process (as a
/// SIGKILL would end it) right after the N-th write.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| salient_engine::Error::write(dir, e))?;
    }
    salient_engine::fsutil::write_atomic(path, bytes)?;
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(limit) = std::env::var("SALIENT_TEST_ABORT_AFTER_WRITES").ok().and_then(|v| v.parse::<u64>().ok())
        && n >= limit
    {
        std::process::abort();
    }
    Ok(())
}

/// Removes temporary files a killed run left behind (`.<name>.tmp-<pid>`), recursively.
pub fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            remove_stale_temporaries(&path)?;
        } else if name.starts_with('.') && name.contains(".tmp-") {
            std::fs::remove_file(&path).map_err(|e| salient_engine::Error::write(&path, e))?;
        }
    }
    Ok(())
}

/// One line of `skipped.jsonl`: an image that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Skipped {
    pub image: String,
    pub reason: String,
}

/// JSON Lines text of any records.
pub fn jsonl<T: Serialize>(items: &[T]) -> String {
    items.iter().map(|r| serde_json::to_string(r).expect("plain data") + "\n").collect()
}

/// Reads an annotations file as [`Annotations::load`] does, and reports on standard error the
/// answers it did not count (a worker answering the same pair twice).
///
/// [`Annotations::load`]: salient_engine::annotations::Annotations::load
pub fn load_annotations(
    path: &std::path::Path,
    bounds: salient_engine::annotations::Bounds,
) -> Result<salient_engine::annotations::Annotations> {
    load_annotations_reporting(path, bounds, &crate::progress::Quiet)
}

/// [`load_annotations`], the answers not counted reported through `progress`.
pub fn load_annotations_reporting(
    path: &std::path::Path,
    bounds: salient_engine::annotations::Bounds,
    progress: &dyn crate::progress::Progress,
) -> Result<salient_engine::annotations::Annotations> {
    let annotations = salient_engine::annotations::Annotations::load(path, bounds)?;
    if !annotations.repeated.is_empty() {
        progress.warn(&format!(
            "{}: {} repeated answer(s) not counted (the same worker answering one pair again)",
            salient_engine::fsutil::shown(path),
            annotations.repeated.len()
        ));
        for r in annotations.repeated.iter().take(5) {
            progress.message(&format!("  {r}"));
        }
        if annotations.repeated.len() > 5 {
            progress.message("  …");
        }
    }
    Ok(annotations)
}
