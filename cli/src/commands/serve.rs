//! `salient serve`: a static file server for a site, on the loopback interface.

use std::path::{Component, Path, PathBuf};

use tiny_http::{Header, Response, Server};

use crate::error::{Error, Result};

/// Serve a folder (a `salient site` output) over HTTP on 127.0.0.1 until interrupted.
///
/// Any static host serves a site; this one is for looking at it locally. It serves files only
/// (no listings), never outside the folder, with the MIME types the app needs (wasm included).
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The folder to serve.
    #[arg(value_name = "SITE")]
    dir: PathBuf,

    /// Port (0: any free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The file a request path names inside `root`, if it is one (no `..`, no absolute parts).
pub fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let mut out = root.to_path_buf();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    out.is_file().then_some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn run(args: ServeArgs) -> Result<()> {
    if !args.dir.join("index.html").is_file() {
        return Err(Error::Usage(format!("{}: no index.html: serve a `salient site` output", args.dir.display())));
    }
    let server = Server::http(("127.0.0.1", args.port))
        .map_err(|e| Error::Usage(format!("cannot listen on 127.0.0.1:{}: {e} (try another --port)", args.port)))?;
    let port = server.server_addr().to_ip().map_or(args.port, |a| a.port());
    println!("serving {} at http://127.0.0.1:{port}/ (Ctrl-C stops)", args.dir.display());
    for request in server.incoming_requests() {
        let response = match resolve(&args.dir, request.url()).map(|p| (std::fs::File::open(&p), p)) {
            Some((Ok(file), path)) => {
                let header = Header::from_bytes("Content-Type", mime(&path)).expect("valid header");
                Response::from_file(file).with_header(header).boxed()
            }
            _ => Response::from_string("not found").with_status_code(404).boxed(),
        };
        let _ = request.respond(response);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_inside_the_root_only() {
        let root = std::env::temp_dir().join(format!("salient-serve-{}", std::process::id()));
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("index.html"), "x").unwrap();
        std::fs::write(root.join("data/a b.json"), "{}").unwrap();
        assert_eq!(resolve(&root, "/"), Some(root.join("index.html")));
        assert_eq!(resolve(&root, "/data/a%20b.json?x=1"), Some(root.join("data/a b.json")));
        assert_eq!(resolve(&root, "/../etc/passwd"), None);
        assert_eq!(resolve(&root, "/data/%2e%2e/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(&root, "/missing"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
