//! Files in and out, with hostile input in mind: reading opens regular files only (never a FIFO
//! or a device, never blocking on one) and never more bytes than a stated limit; paths read from
//! data files stay inside their root; names printed in messages are escaped; writing is atomic.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The largest data file (an index, a CSV, a JSON report) read whole: a full Salient ImageNet
/// `index.jsonl` is about 100 MB.
pub const MAX_DATA_FILE_BYTES: u64 = 1 << 30;

/// Opens `path` for reading if it is a regular file (a symbolic link to one is fine); its length.
///
/// FIFOs, sockets and devices are refused before they are opened for real: the open itself is
/// non-blocking, so a FIFO with no writer cannot hang it, and the type is checked on the opened
/// handle, so a file swapped after a check cannot slip through.
pub fn open_regular(path: &Path) -> Result<(File, u64), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| Error::read(path, e))?;
    let meta = file.metadata().map_err(|e| Error::read(path, e))?;
    if !meta.is_file() {
        let kind = file_kind(&meta);
        return Err(Error::read(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("it is {kind}, not a regular file")),
        ));
    }
    #[cfg(unix)]
    {
        // Back to blocking reads (regular files ignore the flag, but say what we mean).
        use std::os::fd::AsRawFd;
        // SAFETY: fcntl on a descriptor we own, with flags read from it.
        unsafe {
            let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
    }
    Ok((file, meta.len()))
}

/// Words for a file that is not a regular one.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() { "a folder" } else { "a special file" }
}

/// The whole of a regular file of at most `max` bytes. The limit is checked against the size
/// the file system reports and again while reading (a file that grows is cut off, not followed).
pub fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let (file, len) = open_regular(path)?;
    if len > max {
        return Err(Error::read(path, too_large(len, max)));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| Error::read(path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::read(path, too_large(bytes.len() as u64, max)));
    }
    Ok(bytes)
}

fn too_large(len: u64, max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the file is {len} bytes, over the limit of {max} bytes"),
    )
}

/// A regular UTF-8 text file of at most [`MAX_DATA_FILE_BYTES`].
pub fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = read_file(path, MAX_DATA_FILE_BYTES)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::read(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            ),
        )
    })
}

/// Checks a relative path read from a data file: one or more plain names separated by `/`
/// (no absolute path, no `..` or `.`, no empty part, no NUL or control character). The error
/// says what is wrong; the caller names the file and line.
pub fn check_relative(rel: &str) -> Result<(), String> {
    if rel.is_empty() {
        return Err("the path is empty".into());
    }
    if rel.len() > 4096 {
        return Err(format!("the path is {} bytes long, over the limit of 4096", rel.len()));
    }
    if rel.chars().any(char::is_control) {
        return Err(format!("the path {} holds control characters", escape(rel)));
    }
    if rel.starts_with('/') || rel.contains('\\') || Path::new(rel).is_absolute() {
        return Err(format!(
            "the path {} is absolute: paths in data files must be relative to their folder",
            escape(rel)
        ));
    }
    for part in rel.split('/') {
        match part {
            "" => return Err(format!("the path {} has an empty part", escape(rel))),
            "." | ".." => return Err(format!("the path {} leaves its folder or names it (`{part}`)", escape(rel))),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a single file or folder name read from a data file (a WordNet id, an image name):
/// a relative path of exactly one part.
pub fn check_name(name: &str) -> Result<(), String> {
    check_relative(name)?;
    if name.contains('/') {
        return Err(format!("the name {} holds a `/`", escape(name)));
    }
    if name.len() > 255 {
        return Err(format!("the name is {} bytes long, over the file-name limit of 255", name.len()));
    }
    Ok(())
}

/// A folder that paths read from data files must stay inside; its real path is resolved once.
pub struct Root {
    path: PathBuf,
    real: PathBuf,
}

impl Root {
    /// `path` (an existing folder; an empty path is the current one).
    pub fn new(path: &Path) -> Result<Root, Error> {
        let path = if path.as_os_str().is_empty() { Path::new(".") } else { path };
        let real = std::fs::canonicalize(path).map_err(|e| Error::read(path, e))?;
        Ok(Root { path: path.to_path_buf(), real })
    }

    /// `root/rel` for a relative path read from a data file, checked to stay inside the root:
    /// the path itself (see [`check_relative`]) and, if it exists, where its symbolic links
    /// lead. `what` names the data file for messages.
    pub fn join(&self, rel: &str, what: &str) -> Result<PathBuf, Error> {
        check_relative(rel).map_err(|m| Error::Invalid(format!("{what}: {m}")))?;
        let path = self.path.join(rel);
        if let Ok(real) = std::fs::canonicalize(&path)
            && !real.starts_with(&self.real)
        {
            return Err(Error::Invalid(format!(
                "{what}: {} is a symbolic link that leads outside {}: refusing to read {}",
                escape(rel),
                shown(&self.path),
                shown(&real)
            )));
        }
        Ok(path)
    }

    /// Reads `root/rel` (a path from a data file) as [`Root::join`] and [`read_file`] do.
    pub fn read(&self, rel: &str, what: &str, max: u64) -> Result<Vec<u8>, Error> {
        read_file(&self.join(rel, what)?, max)
    }
}

/// A path as it may be printed: control characters (newlines, escape sequences) and bytes
/// that are not UTF-8 are escaped, so a message stays one line and cannot drive the terminal.
pub fn shown(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut out = String::new();
        for chunk in path.as_os_str().as_bytes().utf8_chunks() {
            out.push_str(&escape(chunk.valid()));
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        out
    }
    #[cfg(not(unix))]
    escape(&path.to_string_lossy())
}

/// `text` with control characters escaped (`\n`, `\u{1b}`): one printable line.
pub fn escape(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it into place:
/// `path` either keeps its old content or has all of the new.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::write(path, e)
    })
}

/// `dir/.name.tmp-<pid>`: hidden, beside the target so the rename stays on one file system.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_checked() {
        assert!(check_relative("n01440764/feature_3/a.png").is_ok());
        for bad in ["", "/etc/shadow", "../x", "a/../../b", "a//b", "./a", "a\nb", "a\\..\\b"] {
            assert!(check_relative(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("n01440764").is_ok());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn names_are_escaped_for_messages() {
        assert_eq!(escape("a\nb\x1b[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(escape("plain é"), "plain é");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = Path::new(std::ffi::OsStr::from_bytes(b"bad\xffname\n.jpg"));
            assert_eq!(shown(p), "bad\\xffname\\n.jpg");
        }
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused_without_blocking() {
        let e = read_file(Path::new("/dev/zero"), 100).unwrap_err().to_string();
        assert!(e.contains("character device, not a regular file"), "{e}");
        let dir = std::env::temp_dir().join(format!("salient-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("x.pt");
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_file(&fifo, 100).unwrap_err().to_string();
        assert!(e.contains("named pipe (FIFO)"), "{e}");
        std::fs::write(dir.join("big"), vec![0u8; 101]).unwrap();
        assert!(read_file(&dir.join("big"), 100).unwrap_err().to_string().contains("over the limit of 100 bytes"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn confine_refuses_links_leaving_the_root() {
        let dir = std::env::temp_dir().join(format!("salient-confine-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/in.txt"), "x").unwrap();
        let _ = std::fs::remove_file(dir.join("a/out"));
        std::os::unix::fs::symlink("/etc/passwd", dir.join("a/out")).unwrap();
        let root = Root::new(&dir).unwrap();
        assert!(root.join("a/in.txt", "t").is_ok());
        let e = root.join("a/out", "t").unwrap_err().to_string();
        assert!(e.contains("leads outside"), "{e}");
        assert!(root.join("/etc/passwd", "t").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
