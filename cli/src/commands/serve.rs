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
//!
//! Text, JSON, wasm and data files go gzip-compressed to clients that accept it (see
//! [`Gzipper`]), each file compressed once and kept in a cache of bounded size. Files named by
//! their content hash (trunk's bundle, see [`content_hashed`]) may be kept by clients for good;
//! every other file is revalidated on each use, against its `ETag` (see [`not_modified`]).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{Cursor, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;
use salient_engine::fsutil;
use tiny_http::{Header, Method, Request, Response, ResponseBox, Server, StatusCode};

use crate::error::{Error, Result};

/// Serve a folder (a `salient site` output) over HTTP on 127.0.0.1 until interrupted.
///
/// Any static host serves a site; this one is for looking at it locally. It serves files only
/// (no listings), never outside the folder, with the MIME types the app needs (wasm included);
/// text, JSON and wasm gzip-compressed to browsers that accept it, the app's hashed bundle files
/// cached by them for good and everything else revalidated on each load.
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

/// The largest file sent compressed (larger ones go as they are): the app's wasm bundle is about
/// 20 MB. A file is read whole to be compressed.
const MAX_GZIP_SOURCE: u64 = 32 << 20;

/// The most bytes of files being read and compressed at once, by all workers together: a file
/// that would take more is sent as it is, so that memory stays bounded when many clients ask for
/// many large files at once.
const MAX_COMPRESSING_BYTES: u64 = 64 << 20;

/// The most bytes of compressed bodies kept (see [`GzipCache`]).
const GZIP_CACHE_BYTES: usize = 64 << 20;

/// zlib's default level: most of the gain of the highest levels at a fraction of their time (the
/// 20 MB wasm bundle takes about a second, once, as the cache keeps the result).
const GZIP_LEVEL: u32 = 6;

/// Kept by clients for a year without asking again: the name changes when the content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Kept by clients but revalidated (with the `ETag`) on every use: the content may change in place.
const REVALIDATE: &str = "no-cache";

/// The file's type, from the lower-case extension.
fn extension(path: &Path) -> Option<String> {
    path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase)
}

fn mime(path: &Path) -> &'static str {
    match extension(path).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("csv") => "text/csv; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether gzip makes the file smaller: text, JSON, wasm and the site's `.bin` data. Images
/// (PNG, JPEG, WebP, AVIF) and anything unknown are compressed already or may be.
fn compressible(path: &Path) -> bool {
    matches!(extension(path).as_deref(), Some("html" | "js" | "css" | "json" | "wasm" | "svg" | "csv" | "txt" | "bin"))
}

/// Whether a file name carries a content hash as trunk writes it: `-` and 16 lower-case hex
/// digits right before the extension (`salient-app-7f3a9c0d1e2b4a56.js`, `style-0123456789abcdef.css`)
/// or before `_bg.wasm` (`salient-app-7f3a9c0d1e2b4a56_bg.wasm`), after a name of at least one
/// character. A new build writes new names, so the content under such a name never changes and
/// clients may keep it without asking again ([`IMMUTABLE`]).
pub fn content_hashed(name: &str) -> bool {
    let stem = match name.strip_suffix("_bg.wasm") {
        Some(stem) => stem,
        None => match name.rsplit_once('.') {
            Some((stem, extension)) if !extension.is_empty() => stem,
            _ => return false,
        },
    };
    let Some((base, hash)) = stem.rsplit_once('-') else { return false };
    !base.is_empty() && hash.len() == 16 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The `Cache-Control` of a file asked for as `url` and found at `file`: [`IMMUTABLE`] when both
/// names carry a content hash (a link named like a hashed file may be pointed elsewhere, and a
/// plain name may be a link to a hashed file, so neither alone is enough), else [`REVALIDATE`].
fn cache_control(url: &str, file: &Path) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let asked = percent_decode(path).unwrap_or_default();
    let asked = asked.rsplit('/').next().unwrap_or("");
    let found = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if content_hashed(asked) && content_hashed(found) { IMMUTABLE } else { REVALIDATE }
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
        Error::Serve(format!("cannot listen on 127.0.0.1:{}: {e} (try another --port)", args.port))
    };
    let listener =
        TcpListener::bind(("127.0.0.1", args.port)).and_then(with_write_timeout).map_err(|e| listen_error(&e))?;
    let port = listener.local_addr().map_or(args.port, |a| a.port());
    let server = Server::from_listener(listener, None).map_err(|e| listen_error(&e))?;
    println!("serving {} at http://127.0.0.1:{port}/ (Ctrl-C stops)", args.dir.display());

    let waiting = Waiting::default();
    let gzip = Gzipper::new(GZIP_CACHE_BYTES);
    let (jobs, queue) = std::sync::mpsc::channel();
    let queue = Mutex::new(queue);
    let error = std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| work(&queue, &waiting, &root, &gzip));
        }
        dispatch(&server, &waiting, jobs)
    });
    Err(Error::Serve(format!("stopped accepting connections: {error}")))
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
fn work(jobs: &Mutex<Receiver<Request>>, waiting: &Waiting, root: &Path, gzip: &Gzipper) {
    loop {
        let job = lock(jobs).recv();
        let Ok(first) = job else { return };
        let client = first.remote_addr().copied();
        let mut next = Some(first);
        while let Some(request) = next {
            respond(request, root, gzip);
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
fn respond(request: Request, root: &Path, gzip: &Gzipper) {
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
            Some((file, path)) => serve_file(&request, file, &path, gzip),
            None => status(404, "not found"),
        }
    };
    // HEAD gets the headers only (tiny_http leaves the body out); a client gone is not an error.
    let _ = request.respond(response);
}

/// The answer to a GET or HEAD of `file` (opened from `path`): the file as it is or gzipped, with
/// its validators and caching rule; 304 when the client's copy is current.
fn serve_file(request: &Request, mut file: File, path: &Path, gzip: &Gzipper) -> ResponseBox {
    let Ok(meta) = file.metadata() else { return status(500, "cannot read the file") };
    let len = meta.len();
    let stamp = meta.modified().ok().map(|modified| Stamp { len, modified });
    let compressible = compressible(path);
    let gzipped = if compressible && len <= MAX_GZIP_SOURCE && accepts_gzip(request.headers()) {
        match gzip.body(&mut file, path, len, stamp) {
            Ok(body) => body,
            Err(_) => return status(500, "cannot read the file"),
        }
    } else {
        None
    };
    let etag = stamp.map(|stamp| etag(stamp, gzipped.is_some()));

    // What a 304 repeats of the 200 it stands for (RFC 9110, 15.4.5).
    let mut headers = vec![header("Cache-Control", cache_control(request.url(), path))];
    headers.extend(etag.as_deref().map(|tag| header("ETag", tag)));
    if compressible {
        // The answer depends on Accept-Encoding, whichever it is.
        headers.push(header("Vary", "Accept-Encoding"));
    }
    let length = gzipped.as_ref().map_or(len, |body| body.len() as u64);
    if not_modified(request.headers(), etag.as_deref(), stamp.map(|s| s.modified)) {
        // No body, and the length of the one a 200 would carry (tiny_http sends one of
        // Content-Length and chunks; chunks here would misstate what the 200 sends).
        headers.push(header("Content-Length", &length.to_string()));
        return with_headers(Response::empty(304), headers).with_chunked_threshold(usize::MAX).boxed();
    }
    headers.push(header("Content-Type", mime(path)));
    headers.extend(stamp.and_then(|s| http_date(s.modified)).map(|date| header("Last-Modified", &date)));
    // Content-Length rather than chunks, whatever the size (tiny_http chunks from 32 KiB).
    match gzipped {
        Some(body) => {
            headers.push(header("Content-Encoding", "gzip"));
            let size = body.len();
            Response::new(StatusCode(200), headers, Cursor::new(body), Some(size), None)
                .with_chunked_threshold(usize::MAX)
                .boxed()
        }
        None => with_headers(Response::from_file(file), headers).with_chunked_threshold(usize::MAX).boxed(),
    }
}

fn with_headers<R: Read>(response: Response<R>, headers: Vec<Header>) -> Response<R> {
    headers.into_iter().fold(response, Response::with_header)
}

/// A header of ASCII built here.
fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name, value).expect("valid header")
}

/// Whether the request's Accept-Encoding allows gzip (RFC 9110, 12.5.3): named (`gzip` or
/// `x-gzip`) with a weight above zero, or, when not named, covered by a `*` with a weight above
/// zero. `q=0` refuses; a weight that is no number refuses too. No Accept-Encoding: not allowed
/// (a client that says nothing may not decode it).
fn accepts_gzip(headers: &[Header]) -> bool {
    let mut named = None;
    let mut any = None;
    let items = headers.iter().filter(|h| h.field.equiv("Accept-Encoding")).flat_map(|h| h.value.as_str().split(','));
    for item in items {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let weight = parts.filter_map(|p| p.split_once('=')).find(|(k, _)| k.trim().eq_ignore_ascii_case("q"));
        // NaN and unparsable weights compare false: refused.
        let allowed = weight.is_none_or(|(_, q)| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0));
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            named.get_or_insert(allowed);
        } else if coding == "*" {
            any.get_or_insert(allowed);
        }
    }
    named.or(any).unwrap_or(false)
}

/// What identifies a version of a file: its length and modification time, both as the open
/// handle sees them. A file rewritten in place within the file system's time resolution and at
/// the same length goes unnoticed (as with any server that validates by time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: SystemTime,
}

/// The strong `ETag` of a version of a file, with a `-gz` suffix for its gzip encoding: the two
/// are different bytes, and a cache must not take one for the other.
fn etag(stamp: Stamp, gzipped: bool) -> String {
    let (sign, nanos) = match stamp.modified.duration_since(UNIX_EPOCH) {
        Ok(after) => ("", after.as_nanos()),
        Err(before) => ("m", before.duration().as_nanos()),
    };
    format!("\"{:x}-{sign}{nanos:x}{}\"", stamp.len, if gzipped { "-gz" } else { "" })
}

/// A time as an HTTP date (`Last-Modified`), when it has one (from 1970 to the year 9999:
/// httpdate panics outside).
fn http_date(time: SystemTime) -> Option<String> {
    let seconds = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (seconds < 253_402_300_800).then(|| httpdate::fmt_http_date(time))
}

/// Whether the client's copy is current (RFC 9110, 13.1.2 and 13.2.2): If-None-Match lists the
/// `etag` (or is `*`), or, when there is no If-None-Match, If-Modified-Since is no earlier than
/// `modified` (in whole seconds, as Last-Modified says it).
fn not_modified(headers: &[Header], etag: Option<&str>, modified: Option<SystemTime>) -> bool {
    let mut if_none_match = headers.iter().filter(|h| h.field.equiv("If-None-Match")).peekable();
    if if_none_match.peek().is_some() {
        return etag.is_some_and(|etag| if_none_match.any(|h| lists_etag(h.value.as_str(), etag)));
    }
    let since = headers.iter().find(|h| h.field.equiv("If-Modified-Since"));
    let since = since.and_then(|h| httpdate::parse_http_date(h.value.as_str().trim()).ok());
    let seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs());
    match (since.and_then(seconds), modified.and_then(seconds)) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// Whether an If-None-Match value is `*` or lists `etag` (quoted, as sent), by the weak
/// comparison: `W/"x"` matches `"x"`. Entity tags may hold commas, so the list is read tag by tag;
/// what follows a malformed tag is not read.
fn lists_etag(value: &str, etag: &str) -> bool {
    let mut rest = value.trim();
    if rest == "*" {
        return true;
    }
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(end) = tag.strip_prefix('"').and_then(|t| t.find('"')) else { return false };
        let (quoted, after) = tag.split_at(end + 2);
        if quoted == etag {
            return true;
        }
        rest = after;
    }
}

/// Gzip bodies for the workers: each file compressed once while it is unchanged and the cache
/// has room for it, and at most [`MAX_COMPRESSING_BYTES`] of files compressed at once. (Two
/// workers that miss the same file at the same time both compress it.)
struct Gzipper {
    cache: Mutex<GzipCache>,
    /// Bytes of files being read and compressed now.
    compressing: Mutex<u64>,
}

impl Gzipper {
    fn new(cache_bytes: usize) -> Gzipper {
        Gzipper { cache: Mutex::new(GzipCache::new(cache_bytes)), compressing: Mutex::new(0) }
    }

    /// The gzip body of `file`, `len` bytes (at most [`MAX_GZIP_SOURCE`]) found at `path`: from the
    /// cache, or read from the handle and compressed now. None when other workers are compressing
    /// too much already: the file then goes as it is, unread.
    fn body(&self, file: &mut File, path: &Path, len: u64, stamp: Option<Stamp>) -> std::io::Result<Option<Arc<[u8]>>> {
        if let Some(stamp) = stamp
            && let Some(body) = lock(&self.cache).get(path, stamp)
        {
            return Ok(Some(body));
        }
        let Some(_reserved) = Reservation::take(&self.compressing, len) else { return Ok(None) };
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len).read_to_end(&mut bytes)?;
        let body: Arc<[u8]> = gzip(&bytes)?.into();
        // Kept only if the file did not change while it was read. (Otherwise this answer goes
        // with the ETag of the version first seen, which no longer matches the file, so a client
        // that keeps it gets the new version at its next revalidation.)
        let now = file.metadata().ok().and_then(|m| Some(Stamp { len: m.len(), modified: m.modified().ok()? }));
        if let Some(stamp) = stamp
            && bytes.len() as u64 == len
            && now == Some(stamp)
        {
            lock(&self.cache).insert(path, stamp, Arc::clone(&body));
        }
        Ok(Some(body))
    }
}

/// A share of [`MAX_COMPRESSING_BYTES`], given back when dropped.
struct Reservation<'a> {
    total: &'a Mutex<u64>,
    bytes: u64,
}

impl<'a> Reservation<'a> {
    fn take(total: &'a Mutex<u64>, bytes: u64) -> Option<Reservation<'a>> {
        let mut taken = lock(total);
        let after = taken.checked_add(bytes).filter(|&after| after <= MAX_COMPRESSING_BYTES)?;
        *taken = after;
        Some(Reservation { total, bytes })
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        *lock(self.total) -= self.bytes;
    }
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4 + 64), Compression::new(GZIP_LEVEL));
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Compressed bodies by file (canonical path), each for the [`Stamp`] of the version it was made
/// from, their sizes together at most a bound: the least recently used go first to make room,
/// and a body larger than the bound is not kept. A newer version of a file replaces the older.
struct GzipCache {
    entries: HashMap<PathBuf, Cached>,
    /// The files by their last use (a count of uses), least recent first.
    by_use: BTreeMap<u64, PathBuf>,
    uses: u64,
    /// Bytes of the bodies kept.
    bytes: usize,
    limit: usize,
}

struct Cached {
    stamp: Stamp,
    body: Arc<[u8]>,
    used: u64,
}

impl GzipCache {
    fn new(limit: usize) -> GzipCache {
        GzipCache { entries: HashMap::new(), by_use: BTreeMap::new(), uses: 0, bytes: 0, limit }
    }

    /// The body of `path` made from the version `stamp`, if kept.
    fn get(&mut self, path: &Path, stamp: Stamp) -> Option<Arc<[u8]>> {
        let entry = self.entries.get_mut(path).filter(|e| e.stamp == stamp)?;
        let path = self.by_use.remove(&entry.used)?;
        self.uses += 1;
        entry.used = self.uses;
        self.by_use.insert(self.uses, path);
        Some(Arc::clone(&entry.body))
    }

    fn insert(&mut self, path: &Path, stamp: Stamp, body: Arc<[u8]>) {
        self.remove(path);
        if body.len() > self.limit {
            return;
        }
        while self.bytes + body.len() > self.limit {
            let Some((_, oldest)) = self.by_use.pop_first() else { break };
            if let Some(old) = self.entries.remove(&oldest) {
                self.bytes -= old.body.len();
            }
        }
        self.uses += 1;
        self.bytes += body.len();
        self.by_use.insert(self.uses, path.to_path_buf());
        self.entries.insert(path.to_path_buf(), Cached { stamp, body, used: self.uses });
    }

    fn remove(&mut self, path: &Path) {
        if let Some(old) = self.entries.remove(path) {
            self.by_use.remove(&old.used);
            self.bytes -= old.body.len();
        }
    }
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

    #[test]
    fn content_hashes_are_found_as_trunk_writes_them() {
        for name in [
            "salient-app-7f3a9c0d1e2b4a56.js",
            "salient-app-7f3a9c0d1e2b4a56_bg.wasm",
            "style-0123456789abcdef.css",
            "a-0123456789abcdef.json",
        ] {
            assert!(content_hashed(name), "{name}");
        }
        for name in [
            "index.html",
            "worker.js",
            "salient-app.js",
            "salient-app_bg.wasm",
            "style-0123456789ABCDEF.css",  // upper case
            "style-0123456789abcde.css",   // 15 digits
            "style-0123456789abcdef0.css", // 17 digits
            "style_0123456789abcdef.css",  // no dash
            "style-0123456789abcdeg.css",  // not hex
            "-0123456789abcdef.css",       // no name
            "style-0123456789abcdef",      // no extension
            "style-0123456789abcdef.",
            "app-0123456789abcdef.js.map", // the hash is not right before the extension
            "app-0123456789abcdef_bg.js",
            "",
        ] {
            assert!(!content_hashed(name), "{name}");
        }
    }

    #[test]
    fn immutable_only_when_asked_and_found_names_are_hashed() {
        let hashed = Path::new("/site/app-0123456789abcdef.js");
        assert_eq!(cache_control("/app-0123456789abcdef.js?v=1", hashed), IMMUTABLE);
        assert_eq!(cache_control("/sub/app-0123456789abcdef.js", hashed), IMMUTABLE);
        // A plain name that links to a hashed file, a hashed name that links to a plain one.
        assert_eq!(cache_control("/app.js", hashed), REVALIDATE);
        assert_eq!(cache_control("/app-0123456789abcdef.js", Path::new("/site/app.js")), REVALIDATE);
        assert_eq!(cache_control("/", Path::new("/site/index.html")), REVALIDATE);
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<Header> {
        pairs.iter().map(|(k, v)| header(k, v)).collect()
    }

    #[test]
    fn gzip_is_accepted_as_accept_encoding_says() {
        let accepts = |value: &str| accepts_gzip(&headers(&[("Accept-Encoding", value)]));
        for value in
            ["gzip", "GZIP", "gzip, deflate, br", "br;q=1.0, gzip;q=0.5", "x-gzip", "*", "br, *;q=0.1", "gzip;q=1"]
        {
            assert!(accepts(value), "{value:?}");
        }
        for value in
            ["", "identity", "br, deflate", "gzip;q=0", "gzip; q=0.000", "gzip;Q=0", "*;q=0", "gzip;q=0, *", "gzip;q=x"]
        {
            assert!(!accepts(value), "{value:?}");
        }
        assert!(!accepts_gzip(&[]), "no Accept-Encoding");
        let two = headers(&[("Accept-Encoding", "br"), ("Accept-Encoding", "gzip")]);
        assert!(accepts_gzip(&two), "a list over two fields");
    }

    #[test]
    fn if_none_match_lists_are_read_tag_by_tag() {
        let etag = "\"1f-abc\"";
        for value in ["\"1f-abc\"", "*", " * ", "W/\"1f-abc\"", "\"x\", \"1f-abc\"", "\"a,b\",W/\"1f-abc\""] {
            assert!(lists_etag(value, etag), "{value:?}");
        }
        for value in ["", "\"1f-abc-gz\"", "1f-abc", "\"1f-ab\"", "\"x\", junk, \"1f-abc\"", "\"1f-abc"] {
            assert!(!lists_etag(value, etag), "{value:?}");
        }
    }

    #[test]
    fn validators_are_checked_as_rfc_9110_orders_them() {
        let modified = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
        let stamp = Stamp { len: 5, modified };
        let tag = etag(stamp, false);
        assert_eq!(tag, "\"5-17979cfe53f76500\"");
        assert_eq!(etag(stamp, true), "\"5-17979cfe53f76500-gz\"", "each encoding has its own tag");
        assert_ne!(tag, etag(Stamp { len: 6, modified }, false));
        assert_ne!(tag, etag(Stamp { len: 5, modified: modified + Duration::from_nanos(1) }, false));
        let date = http_date(modified).unwrap();
        assert_eq!(date, "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(http_date(UNIX_EPOCH - Duration::from_secs(1)), None);

        let check = |pairs: &[(&str, &str)]| not_modified(&headers(pairs), Some(&tag), Some(modified));
        assert!(check(&[("If-None-Match", &tag)]));
        assert!(!check(&[("If-None-Match", "\"other\"")]));
        assert!(check(&[("If-Modified-Since", &date)]));
        assert!(check(&[("If-Modified-Since", "Wed, 15 Nov 2023 00:00:00 GMT")]));
        assert!(!check(&[("If-Modified-Since", "Tue, 14 Nov 2023 22:13:19 GMT")]));
        assert!(!check(&[("If-Modified-Since", "yesterday")]));
        // If-None-Match decides alone when present.
        assert!(!check(&[("If-None-Match", "\"other\""), ("If-Modified-Since", &date)]));
        assert!(!check(&[]));
        assert!(!not_modified(&headers(&[("If-None-Match", "*")]), None, None), "no tag, no match");
    }

    #[test]
    fn the_gzip_cache_stays_within_its_bound() {
        let stamp = Stamp { len: 1, modified: UNIX_EPOCH };
        let body = |n: usize| -> Arc<[u8]> { vec![0u8; n].into() };
        let mut cache = GzipCache::new(100);
        cache.insert(Path::new("/a"), stamp, body(40));
        cache.insert(Path::new("/b"), stamp, body(40));
        assert!(cache.get(Path::new("/a"), stamp).is_some(), "a used last: b goes first");
        cache.insert(Path::new("/c"), stamp, body(40));
        assert_eq!(cache.bytes, 80);
        assert!(cache.get(Path::new("/b"), stamp).is_none());
        assert!(cache.get(Path::new("/a"), stamp).is_some());
        // Another version of a file replaces the older one and does not match it.
        let newer = Stamp { len: 2, modified: UNIX_EPOCH };
        cache.insert(Path::new("/a"), newer, body(10));
        assert!(cache.get(Path::new("/a"), stamp).is_none());
        assert_eq!(cache.get(Path::new("/a"), newer).map(|b| b.len()), Some(10));
        assert_eq!(cache.bytes, 50);
        // Too large for the cache: not kept, and nothing is dropped for it.
        cache.insert(Path::new("/d"), stamp, body(101));
        assert!(cache.get(Path::new("/d"), stamp).is_none());
        assert_eq!((cache.bytes, cache.entries.len(), cache.by_use.len()), (50, 2, 2));
        for i in 0..1000 {
            cache.insert(&PathBuf::from(format!("/f{i}")), stamp, body(i % 37));
            assert!(cache.bytes <= 100);
            assert_eq!(cache.bytes, cache.entries.values().map(|e| e.body.len()).sum::<usize>());
            assert_eq!(cache.entries.len(), cache.by_use.len());
        }
    }

    #[test]
    fn compressing_is_bounded() {
        let total = Mutex::new(0);
        let a = Reservation::take(&total, MAX_COMPRESSING_BYTES - 10).unwrap();
        assert!(Reservation::take(&total, 11).is_none());
        let b = Reservation::take(&total, 10).unwrap();
        assert!(Reservation::take(&total, 1).is_none());
        drop((a, b));
        assert_eq!(*lock(&total), 0);
        assert!(Reservation::take(&total, u64::MAX).is_none());
    }

    #[test]
    fn gzip_round_trips() {
        let bytes: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let packed = gzip(&bytes).unwrap();
        assert!(packed.len() < bytes.len() / 10);
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice()).read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, bytes);
    }
}
