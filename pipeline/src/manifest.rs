//! What a run was asked to do, stored in its output folder, so that a folder holding another
//! run's data is never mixed with this one and `--resume` continues only the same job.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const MANIFEST_FILE: &str = "salient-run.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of this output's layout ([`crate::SCHEMA`]).
    #[serde(default = "crate::schema")]
    pub schema: u32,
    /// `discover`, `build`, `eval`.
    pub kind: String,
    /// Everything that determines the output.
    pub params: Value,
}

impl Manifest {
    pub fn new(kind: impl Into<String>, params: Value) -> Self {
        Manifest { schema: crate::SCHEMA, kind: kind.into(), params }
    }

    pub fn text(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data") + "\n"
    }

    /// Makes `dir` ready for this run: creates it, or checks it is empty, or — with `resume` —
    /// that it holds a run of exactly this job.
    pub fn claim(&self, dir: &Path, resume: bool) -> Result<()> {
        let file = dir.join(MANIFEST_FILE);
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(|e| salient_engine::Error::read(dir, e))?;
            let empty = entries.next().is_none();
            if !empty {
                let Ok(text) = salient_engine::fsutil::read_text(&file) else {
                    return Err(Error::Usage(format!(
                        "{} is not empty and holds no Salient run: choose a new or empty folder",
                        dir.display()
                    )));
                };
                let theirs: Manifest = serde_json::from_str(&text)
                    .map_err(|e| Error::Data(format!("{}: unreadable run manifest ({e})", file.display())))?;
                if theirs != *self {
                    return Err(Error::Usage(format!(
                        "{} holds another run's data ({}): choose another output folder",
                        dir.display(),
                        difference(&theirs, self)
                    )));
                }
                if !resume {
                    return Err(Error::Usage(format!(
                        "{} already holds this run: pass --resume to continue (or finish) it",
                        dir.display()
                    )));
                }
                return Ok(());
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| salient_engine::Error::write(dir, e))?;
        Ok(salient_engine::fsutil::write_atomic(&file, self.text().as_bytes())?)
    }

    /// Reads the manifest of a finished or partial run.
    pub fn read(dir: &Path) -> Result<Self> {
        let file = dir.join(MANIFEST_FILE);
        let text = salient_engine::fsutil::read_text(&file)?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Data(format!("{}: unreadable run manifest ({e})", file.display())))
    }
}

/// The first parameter that differs, for the message.
fn difference(a: &Manifest, b: &Manifest) -> String {
    if a.kind != b.kind {
        return format!("a `{}` run, not `{}`", a.kind, b.kind);
    }
    if let (Value::Object(x), Value::Object(y)) = (&a.params, &b.params) {
        for (k, v) in y {
            if x.get(k) != Some(v) {
                return format!("its {k} is {}", x.get(k).map_or("unset".into(), Value::to_string));
            }
        }
    }
    "different parameters".into()
}

/// SHA-256 of a file, hex.
pub fn file_sha256(path: &Path) -> Result<String> {
    use std::io::Read;
    let (mut f, _) = salient_engine::fsutil::open_regular(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| salient_engine::Error::read(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn bytes_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
