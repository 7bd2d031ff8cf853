//! Joining the outputs of a sharded `build` or `discover` into one (`salient merge`): the
//! shards are checked to be the same job, every shard of `0..N` there once and finished; their
//! files are copied and the joined index files written exactly as an unsharded run would.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::build::{BuildSummary, finalize};
use crate::error::{Error, Result};
use crate::files::{STATE_DIR, write};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::shard::Shard;

#[derive(Debug, Clone)]
pub struct MergeParams {
    /// The shards' output folders.
    pub shards: Vec<PathBuf>,
    /// The joined output folder.
    pub out: PathBuf,
    /// Allow an output folder that already holds this same merge.
    pub resume: bool,
}

/// What the joined shards make.
#[derive(Debug, Clone)]
pub enum Joined {
    /// A dataset, its index files written.
    Build(BuildSummary),
    /// A discover run's feature cache, to be ranked with `discover --resume`.
    Discover,
}

#[derive(Debug, Clone)]
pub struct Merged {
    pub joined: Joined,
    /// Shards joined.
    pub count: usize,
    pub out: PathBuf,
}

impl fmt::Display for Merged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.joined {
            Joined::Build(summary) => writeln!(f, "{}", summary.text().trim_end())?,
            Joined::Discover => writeln!(f, "{}", crate::discover::merged_message(&self.out))?,
        }
        write!(f, "merged {} shards into {}", self.count, self.out.display())
    }
}

/// Merges the shards (see the module's documentation).
pub fn merge(params: &MergeParams) -> Result<Merged> {
    let Some(first) = params.shards.first() else {
        return Err(Error::Usage("no shards to merge".into()));
    };
    let manifests: Vec<Manifest> = params.shards.iter().map(|d| Manifest::read(d)).collect::<Result<_>>()?;
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
    for (dir, m) in params.shards.iter().zip(&manifests) {
        if m.kind != kind || unsharded(m) != base {
            return Err(Error::Usage(format!(
                "{} is not a shard of the same job as {}",
                dir.display(),
                first.display()
            )));
        }
        let shard =
            m.params.get("shard").and_then(Value::as_str).ok_or_else(|| {
                Error::Usage(format!("{} is not a shard (it was run without --shard)", dir.display()))
            })?;
        let s = Shard::parse(shard)?;
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
    Manifest::new(kind.clone(), base).claim(&params.out, params.resume)?;
    for dir in &params.shards {
        copy_tree(dir, dir, &params.out)?;
    }
    write(&params.out.join(STATE_DIR).join("complete"), b"")?;
    let joined = match kind.as_str() {
        "build" => Joined::Build(finalize(&params.out)?),
        "discover" => Joined::Discover,
        other => return Err(Error::Usage(format!("runs of kind `{other}` are not sharded"))),
    };
    Ok(Merged { joined, count, out: params.out.clone() })
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
            return Err(Error::Data(format!(
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
