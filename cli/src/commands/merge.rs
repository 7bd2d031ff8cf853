//! `salient merge`: join the outputs of a sharded `build` or `discover` into one.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use salient_pipeline::manifest::{MANIFEST_FILE, Manifest};
use salient_pipeline::files::{STATE_DIR, write};

/// Join shard outputs (`build` or `discover` run with --shard I/N) into one output.
///
/// Checks that the shards are the same job, that every shard of 0..N is there once and
/// finished, copies their files, and writes the joined index files exactly as an unsharded run
/// would: the result is byte-identical to running the whole job at once.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The shards' output folders.
    #[arg(required = true, value_name = "SHARD_DIR")]
    shards: Vec<PathBuf>,

    /// The joined output folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: PathBuf,

    /// Allow an output folder that already holds this same merge.
    #[arg(long)]
    resume: bool,
}

pub fn run(args: MergeArgs) -> Result<()> {
    let manifests: Vec<Manifest> = args.shards.iter().map(|d| Manifest::read(d)).collect::<salient_pipeline::Result<_>>()?;
    let kind = manifests[0].kind.clone();
    let unsharded = |m: &Manifest| {
        let mut p = m.params.clone();
        if let Value::Object(o) = &mut p {
            o.remove("shard");
        }
        p
    };
    let base = unsharded(&manifests[0]);
    let mut seen = Vec::new();
    let mut count = None;
    for (dir, m) in args.shards.iter().zip(&manifests) {
        if m.kind != kind || unsharded(m) != base {
            return Err(Error::Usage(format!(
                "{} is not a shard of the same job as {}",
                dir.display(),
                args.shards[0].display()
            )));
        }
        let shard =
            m.params.get("shard").and_then(Value::as_str).ok_or_else(|| {
                Error::Usage(format!("{} is not a shard (it was run without --shard)", dir.display()))
            })?;
        let s = salient_pipeline::shard::Shard::parse(shard)?;
        if *count.get_or_insert(s.count) != s.count {
            return Err(Error::Usage(format!("{} is shard {shard}, of a different split", dir.display())));
        }
        if seen.contains(&s.index) {
            return Err(Error::Usage(format!("shard {shard} is given twice")));
        }
        if !dir.join(STATE_DIR).join("complete").exists() {
            return Err(Error::Usage(format!("{} (shard {shard}) has not finished: resume it first", dir.display())));
        }
        seen.push(s.index);
    }
    let count = count.unwrap_or(0);
    if let Some(missing) = (0..count).find(|i| !seen.contains(i)) {
        return Err(Error::Usage(format!("shard {missing}/{count} is missing")));
    }
    Manifest { kind: kind.clone(), params: base }.claim(&args.out, args.resume)?;
    for dir in &args.shards {
        copy_tree(dir, dir, &args.out)?;
    }
    write(&args.out.join(STATE_DIR).join("complete"), b"")?;
    let summary = match kind.as_str() {
        "build" => super::build::finalize(&args.out)?,
        "discover" => super::discover::finalize_merged(&args.out)?,
        other => return Err(Error::Usage(format!("runs of kind `{other}` are not sharded"))),
    };
    println!("{}", summary.trim_end());
    println!("merged {count} shards into {}", args.out.display());
    Ok(())
}

/// Copies every file under `dir` (relative to `root`) into `out`, except the run manifest and
/// the shard's own completion marker. A shard holds only folders and regular files, as the
/// stages write them: a symbolic link (which could lead anywhere) or a special file is an error.
fn copy_tree(root: &Path, dir: &Path, out: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| salient_engine::Error::read(dir, e))?;
    let mut items: Vec<(PathBuf, std::fs::FileType)> = entries
        .map(|e| e.and_then(|e| Ok((e.path(), e.file_type()?))))
        .collect::<std::io::Result<_>>()
        .map_err(|e| salient_engine::Error::read(dir, e))?;
    items.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in items {
        let rel = path.strip_prefix(root).expect("under root");
        if kind.is_dir() {
            copy_tree(root, &path, out)?;
        } else if !kind.is_file() {
            return Err(Error::Usage(format!(
                "{}: a shard holds only folders and regular files, not links or special files: is it a Salient shard?",
                salient_engine::fsutil::shown(&path)
            )));
        } else if rel != Path::new(MANIFEST_FILE) && rel != Path::new(STATE_DIR).join("complete") {
            let bytes = salient_engine::fsutil::read_file(&path, salient_engine::fsutil::MAX_DATA_FILE_BYTES)?;
            write(&out.join(rel), &bytes)?;
        }
    }
    Ok(())
}
