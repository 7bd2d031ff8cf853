//! `salient serve`: a static file server for a site, on the loopback interface.
//!
//! tiny_http 0.12 reads the requests of each connection on a thread of its own (one per
//! connection, without a cap) and hands complete ones to [`Server::recv`]; they are answered here
//! by a fixed pool of [`WORKERS`] threads, one connection by one worker at a time, so a client
//! that stalls holds up one worker at most, and each answer to it is dropped once a write has
//! made no progress for [`WRITE_TIMEOUT`].
//!
//! What tiny_http 0.12 leaves unbounded, exposing neither its sockets nor any limits:
//! - the request line and headers are read into buffers that grow without limit, with no
//!   timeout: a client that sends them slowly, or endlessly, keeps its connection thread and the
//!   memory it has sent until it goes away;
//! - an unread body is drained when its request is dropped, as slowly as the client sends it,
//!   into a buffer of the size it announced (see [`reject_body`]).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use salient_engine::fsutil;
use tiny_http::{Header, Method, Request, Response, ResponseBox, Server};

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

/// Requests answered at once; more wait for a free worker.
const WORKERS: usize = 64;

/// How long a write to a client may make no progress before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest URL answered (longer ones get 414).
const MAX_URL_BYTES: usize = 8 * 1024;

/// The largest announced body that tiny_http is left to drain (see [`reject_body`]).
const MAX_DRAINED_BODY: usize = 16 << 20;

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

/// The regular file a request path names inside `root`, as a canonical path: no `..` or
/// absolute parts, and no symbolic link that leads out of the root (links inside it are fine).
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
    let file = out.canonicalize().ok()?;
    let inside = file.starts_with(root.canonicalize().ok()?);
    (inside && std::fs::metadata(&file).is_ok_and(|m| m.is_file())).then_some(file)
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
    let root = args.dir.canonicalize().map_err(|e| Error::Usage(format!("{}: {e}", args.dir.display())))?;
    let listen_error = |e: &dyn std::fmt::Display| {
        Error::Usage(format!("cannot listen on 127.0.0.1:{}: {e} (try another --port)", args.port))
    };
    let listener =
        TcpListener::bind(("127.0.0.1", args.port)).and_then(with_write_timeout).map_err(|e| listen_error(&e))?;
    let port = listener.local_addr().map_or(args.port, |a| a.port());
    let server = Server::from_listener(listener, None).map_err(|e| listen_error(&e))?;
    println!("serving {} at http://127.0.0.1:{port}/ (Ctrl-C stops)", args.dir.display());

    let waiting = Waiting::default();
    let (jobs, queue) = std::sync::mpsc::channel();
    let queue = Mutex::new(queue);
    let error = std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| work(&queue, &waiting, &root));
        }
        dispatch(&server, &waiting, jobs)
    });
    Err(Error::Usage(format!("stopped accepting connections: {error}")))
}

/// Requests that wait for the one being answered on their connection, by the client's address.
///
/// tiny_http reads pipelined requests ahead and writes their answers in order, so a second worker
/// on a connection would only wait for the first: a client that asks for many files and reads
/// none would hold up every worker. Each connection is answered by one worker at a time.
type Waiting = Mutex<HashMap<SocketAddr, VecDeque<Request>>>;

/// Hands the requests to the workers in the order tiny_http read them, each to the worker that
/// answers its connection if there is one, until accepting connections fails (tiny_http's accept
/// thread then stops for good); the error. The workers stop when they have nothing left to do.
fn dispatch(server: &Server, waiting: &Waiting, jobs: Sender<Request>) -> std::io::Error {
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(e) => return e,
        };
        if let Some(&client) = request.remote_addr() {
            match lock(waiting).entry(client) {
                Entry::Occupied(mut queue) => {
                    queue.get_mut().push_back(request);
                    continue;
                }
                Entry::Vacant(slot) => {
                    slot.insert(VecDeque::new());
                }
            }
        }
        // The workers hang up only when this returns.
        let _ = jobs.send(request);
    }
}

/// A worker: answers a request, then the ones that came after it on its connection, and so on.
fn work(jobs: &Mutex<Receiver<Request>>, waiting: &Waiting, root: &Path) {
    loop {
        let job = lock(jobs).recv();
        let Ok(first) = job else { return };
        let client = first.remote_addr().copied();
        let mut next = Some(first);
        while let Some(request) = next {
            respond(request, root);
            next = client.and_then(|client| {
                let mut waiting = lock(waiting);
                let next = waiting.get_mut(&client).and_then(VecDeque::pop_front);
                if next.is_none() {
                    waiting.remove(&client);
                }
                next
            });
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sets a write timeout on the listening socket, which the sockets it accepts inherit (on Linux,
/// macOS and the BSDs): tiny_http offers no hook on the connections it accepts. There is no read
/// timeout: the listener's own `accept` would time out with it, and tiny_http stops for good at
/// the first error from `accept`.
#[cfg(unix)]
fn with_write_timeout(listener: TcpListener) -> std::io::Result<TcpListener> {
    use std::os::fd::OwnedFd;
    // std sets socket options through `TcpStream` only; `SO_SNDTIMEO` means the same on any socket.
    let socket = std::net::TcpStream::from(OwnedFd::from(listener));
    socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
    Ok(TcpListener::from(OwnedFd::from(socket)))
}

#[cfg(not(unix))]
fn with_write_timeout(listener: TcpListener) -> std::io::Result<TcpListener> {
    Ok(listener)
}

/// Answers one request: a file under `root` to GET or HEAD, or an error status.
fn respond(request: Request, root: &Path) {
    if has_body(&request) {
        reject_body(request);
        return;
    }
    let response = if request.url().len() > MAX_URL_BYTES {
        status(414, "URI too long")
    } else if !matches!(request.method(), Method::Get | Method::Head) {
        let allow = Header::from_bytes("Allow", "GET, HEAD").expect("valid header");
        status(405, "method not allowed").with_header(allow)
    } else {
        // Opened as every file is read: without blocking, its type checked on the handle (a FIFO
        // that replaced the file after `resolve` checked it cannot hang a worker).
        match resolve(root, request.url()).and_then(|p| Some((fsutil::open_regular(&p).ok()?.0, p))) {
            Some((file, path)) => {
                let kind = Header::from_bytes("Content-Type", mime(&path)).expect("valid header");
                // Content-Length rather than chunks, whatever the size (tiny_http chunks from 32 KiB).
                Response::from_file(file).with_header(kind).with_chunked_threshold(usize::MAX).boxed()
            }
            None => status(404, "not found"),
        }
    };
    // HEAD gets the headers only (tiny_http leaves the body out); a client gone is not an error.
    let _ = request.respond(response);
}

/// Whether the request announces a body (none is accepted).
fn has_body(request: &Request) -> bool {
    request.body_length().is_some_and(|n| n > 0) || request.headers().iter().any(|h| h.field.equiv("Transfer-Encoding"))
}

/// Answers 413 without reading the body.
///
/// Dropping a request whose Content-Length body is unread makes tiny_http drain it, for as long
/// as the client takes to send it, into one buffer of the declared size allocated up front; so
/// the answer is written on a thread of its own, not a worker's. (Bodies of at most 1 KiB tiny_http
/// has read already; chunked ones it does not drain.) Past [`MAX_DRAINED_BODY`] the request is
/// never dropped: a size that cannot be allocated aborts the process. Its status and headers are
/// written through `upgrade` (the one way to answer without dropping the body's reader) and the
/// connection is leaked, its socket and tiny_http's thread for it kept until the process ends.
fn reject_body(request: Request) {
    if request.body_length().is_some_and(|n| n > MAX_DRAINED_BODY) {
        std::mem::forget(request.upgrade("none", Response::empty(413)));
        return;
    }
    let response = status(413, "request bodies are not accepted");
    // If no thread can be started, the request is answered here, where it was.
    let _ = std::thread::Builder::new().name("serve-413".into()).spawn(move || request.respond(response));
}

fn status(code: u16, text: &str) -> ResponseBox {
    Response::from_string(text).with_status_code(code).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_inside_the_root_only() {
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        let root = tmp.join(format!("salient-serve-{}", std::process::id()));
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("index.html"), "x").unwrap();
        std::fs::write(root.join("data/a b.json"), "{}").unwrap();
        assert_eq!(resolve(&root, "/"), Some(root.join("index.html")));
        assert_eq!(resolve(&root, "/data/a%20b.json?x=1"), Some(root.join("data/a b.json")));
        assert_eq!(resolve(&root, "/../etc/passwd"), None);
        assert_eq!(resolve(&root, "/data/%2e%2e/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(&root, "/missing"), None);
        assert_eq!(resolve(&root, "/data"), None, "a folder without index.html");
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            // Links out of the root are not followed, whether to a folder or to a file.
            symlink("/etc", root.join("etc")).unwrap();
            symlink("/etc/passwd", root.join("data/passwd")).unwrap();
            assert_eq!(resolve(&root, "/etc/passwd"), None);
            assert_eq!(resolve(&root, "/data/passwd"), None);
            // Links inside it are, to the file they name.
            symlink(root.join("data/a b.json"), root.join("absolute.json")).unwrap();
            symlink("a b.json", root.join("data/relative.json")).unwrap();
            symlink("data", root.join("alias")).unwrap();
            assert_eq!(resolve(&root, "/absolute.json"), Some(root.join("data/a b.json")));
            assert_eq!(resolve(&root, "/data/relative.json"), Some(root.join("data/a b.json")));
            assert_eq!(resolve(&root, "/alias/a%20b.json"), Some(root.join("data/a b.json")));
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
