//! `salient serve` under hostile clients: stalled connections do not hold up others, nothing
//! outside the folder or other than a regular file is served, and bodies are refused unread.
//! And what it tells well-behaved ones: gzip as Accept-Encoding allows, caching rules by name,
//! ETags and 304s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use salient_tests::salient_bin;

/// How long an answer may take while other clients stall.
const PROMPT: Duration = Duration::from_secs(2);

/// A running `salient serve`, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts `salient serve dir --port 0` and reads the port from its first line of output.
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(salient_bin())
            .arg("serve")
            .arg(dir)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("salient serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        // Own the child before any assertion, so that a failure still kills it.
        let mut server = Server { child, port: 0 };
        let digits = line.split("http://127.0.0.1:").nth(1).map(|r| r.chars().take_while(char::is_ascii_digit));
        server.port = digits.and_then(|d| d.collect::<String>().parse().ok()).unwrap_or_else(|| {
            panic!("no port in the first line of output: {line:?}");
        });
        server
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connects");
        stream.set_read_timeout(Some(PROMPT)).unwrap();
        stream.set_write_timeout(Some(PROMPT)).unwrap();
        stream
    }

    /// Sends `head` (request line and headers, without the blank line) with `Connection: close`
    /// and reads the whole answer, which must come within [`PROMPT`].
    fn request(&self, head: &str) -> Answer {
        let start = Instant::now();
        let mut stream = self.connect();
        write!(stream, "{head}\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap_or_else(|e| panic!("{head:?}: no complete answer: {e}"));
        assert!(start.elapsed() < PROMPT, "{head:?} took {:?}", start.elapsed());
        Answer::parse(&raw)
    }

    fn get(&self, path: &str) -> Answer {
        self.request(&format!("GET {path} HTTP/1.1"))
    }

    /// GET with `Accept-Encoding: {encoding}`.
    fn get_encoded(&self, path: &str, encoding: &str) -> Answer {
        self.request(&format!("GET {path} HTTP/1.1\r\nAccept-Encoding: {encoding}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers (names in lower case), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| {
            panic!("no end of headers in {:?}", String::from_utf8_lossy(raw));
        });
        let head = String::from_utf8_lossy(&raw[..end]);
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("a status");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Answer { status, headers, body: raw[end + 4..].to_vec() }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as sent: a whole gzip member, decoded, when Content-Encoding says gzip.
    fn decoded(&self) -> Vec<u8> {
        match self.header("content-encoding") {
            None => self.body.clone(),
            Some("gzip") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(self.body.as_slice()).read_to_end(&mut out).expect("a gzip body");
                out
            }
            Some(other) => panic!("unexpected Content-Encoding {other:?}"),
        }
    }

    /// The headers that describe the content (all but the time of the answer and the length).
    fn content_headers(&self) -> Vec<(String, String)> {
        let mut headers: Vec<_> = self.headers.iter().filter(|(k, _)| k != "date").cloned().collect();
        headers.sort();
        headers
    }
}

const INDEX: &str = "<!doctype html><title>site</title>";

/// A site folder: `index.html`, and `big.bin` of `big` bytes.
fn site(big: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), INDEX).unwrap();
    std::fs::write(dir.path().join("big.bin"), vec![7u8; big]).unwrap();
    dir
}

fn assert_index(server: &Server) {
    let a = server.get("/index.html");
    assert_eq!((a.status, a.body.as_slice()), (200, INDEX.as_bytes()));
    assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
}

#[test]
fn stalled_clients_do_not_hold_up_others() {
    // Larger than what the loopback socket buffers take in, so that the answer's writer blocks.
    const BIG: usize = 32 << 20;
    let dir = site(BIG);
    let server = Server::start(dir.path());

    // Half a request line, then nothing.
    let mut slow = server.connect();
    slow.write_all(b"GET /index.ht").unwrap();
    // A large file asked for and never read, then asked for again and again on the same
    // connection (pipelined: more requests than the server has workers).
    let mut greedy = server.connect();
    greedy.write_all(&b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(100)).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    for _ in 0..5 {
        assert_index(&server);
    }
    // Both stalled connections are still open (nothing dropped them early), and the greedy one
    // has the start of its answer waiting.
    let mut start = [0u8; 12];
    greedy.read_exact(&mut start).unwrap();
    assert_eq!(&start, b"HTTP/1.1 200");
    slow.write_all(b"ml HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    slow.read_to_end(&mut raw).unwrap();
    assert_eq!(Answer::parse(&raw).body, INDEX.as_bytes());
}

#[test]
fn methods_other_than_get_and_head_are_refused() {
    let dir = site(100_000);
    let server = Server::start(dir.path());

    for method in ["POST", "PUT", "DELETE", "OPTIONS", "BREW"] {
        let a = server.request(&format!("{method} /index.html HTTP/1.1"));
        assert_eq!(a.status, 405, "{method}");
        assert_eq!(a.header("allow"), Some("GET, HEAD"), "{method}");
    }
    // HEAD: the headers of GET (the length included), no body.
    let a = server.request("HEAD /big.bin HTTP/1.1");
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-length"), Some("100000"));
    assert!(a.body.is_empty(), "HEAD answered with {} bytes of body", a.body.len());
    assert_eq!(server.get("/big.bin").body.len(), 100_000);
}

#[cfg(unix)]
#[test]
fn only_regular_files_inside_the_folder_are_served() {
    let dir = site(10);
    let root = dir.path();
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    std::os::unix::fs::symlink("index.html", root.join("home.html")).unwrap();
    let made = Command::new("mkfifo").arg(root.join("fifo")).status().expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    let server = Server::start(root);

    let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    for path in ["/passwd", "/etc/passwd", "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"] {
        let a = server.get(path);
        assert_eq!(a.status, 404, "{path}");
        assert!(a.body != passwd && !a.body.starts_with(b"root:"), "{path} served the passwd file");
    }
    // A FIFO with no writer: answered at once, the open never blocks.
    for _ in 0..3 {
        let a = server.get("/fifo");
        assert!(matches!(a.status, 403 | 404), "the FIFO got {}", a.status);
    }
    // A link inside the folder is followed.
    assert_eq!(server.get("/home.html").body, INDEX.as_bytes());
    assert_index(&server);
}

#[test]
fn bodies_and_long_urls_are_refused() {
    let dir = site(10);
    let server = Server::start(dir.path());

    // 1 MB of body: 413, or the connection closed without an answer.
    let mut upload = server.connect();
    let body = vec![b'x'; 1 << 20];
    let head =
        format!("POST /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", body.len());
    upload.write_all(head.as_bytes()).unwrap();
    let _ = upload.write_all(&body); // the server may close before taking it all
    let mut raw = Vec::new();
    let _ = upload.read_to_end(&mut raw);
    if !raw.is_empty() {
        assert_eq!(Answer::parse(&raw).status, 413);
    }
    // A body announced in chunks, and a small one.
    let a = server.request("POST /index.html HTTP/1.1\r\nTransfer-Encoding: chunked");
    assert_eq!(a.status, 413);
    let a = server.request("GET /index.html HTTP/1.1\r\nContent-Length: 0");
    assert_eq!(a.status, 200, "an empty body is no body");

    // A body too large to allocate (tiny_http, left to drain it, would abort the process): 413.
    let mut huge = server.connect();
    huge.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999\r\n\r\n").unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        huge.read_exact(&mut byte).expect("the status and headers of an answer");
        head.push(byte[0]);
    }
    assert_eq!(Answer::parse(&head).status, 413);
    assert_index(&server);

    // A body that is announced and never sent does not hold up anyone.
    let mut stalled = Vec::new();
    for _ in 0..80 {
        let mut s = server.connect();
        s.write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n").unwrap();
        stalled.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_index(&server);

    let a = server.get(&format!("/{}", "a".repeat(9000)));
    assert_eq!(a.status, 414);
    assert_index(&server);
    drop(stalled);
}

const HASHED_JS: &str = "/salient-app-7f3a9c0d1e2b4a56.js";
const HASHED_WASM: &str = "/salient-app-7f3a9c0d1e2b4a56_bg.wasm";
const HASHED_CSS: &str = "/style-0123456789abcdef.css";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Text that compresses well, `n` bytes of it.
fn text(n: usize) -> Vec<u8> {
    let line = b"{\"class\": 417, \"feature\": 12, \"label\": \"spurious\", \"score\": 0.25}\n";
    line.iter().copied().cycle().take(n).collect()
}

/// A site with the files of trunk's bundle, data files, an image and a plain script; by URL.
fn bundle_site() -> (tempfile::TempDir, Vec<(&'static str, Vec<u8>)>) {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(&'static str, Vec<u8>)> = vec![
        ("/index.html", INDEX.as_bytes().to_vec()),
        (HASHED_JS, text(80_000)),
        (HASHED_WASM, [b"\0asm\x01\0\0\0".as_slice(), &text(200_000)].concat()),
        (HASHED_CSS, text(9_000)),
        ("/worker.js", text(3_000)),
        ("/data/index.json", text(50_000)),
        ("/data/scores.csv", text(20_000)),
        ("/data/model.bin", text(100_000)),
        // A PNG signature and then text: a server that compressed by content would shrink it.
        ("/data/mask.png", [b"\x89PNG\r\n\x1a\n".as_slice(), &text(40_000)].concat()),
        ("/data/thumb.jpg", text(40_000)),
        ("/data/thumb.webp", text(40_000)),
        ("/data/thumb.avif", text(40_000)),
    ];
    for (url, bytes) in &files {
        let path = dir.path().join(url.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    (dir, files)
}

fn is_compressible(url: &str) -> bool {
    [".html", ".js", ".css", ".json", ".wasm", ".csv", ".bin"].iter().any(|e| url.ends_with(e))
}

#[test]
fn gzip_answers_decode_to_the_files() {
    let (dir, files) = bundle_site();
    let server = Server::start(dir.path());
    for (url, bytes) in files.iter().filter(|(url, _)| is_compressible(url)) {
        let a = server.get_encoded(url, "gzip, deflate, br");
        assert_eq!(a.status, 200, "{url}");
        assert_eq!(a.header("content-encoding"), Some("gzip"), "{url}");
        assert_eq!(a.header("vary"), Some("Accept-Encoding"), "{url}");
        assert_eq!(a.header("content-length"), Some(a.body.len().to_string().as_str()), "{url}");
        assert_eq!(a.header("transfer-encoding"), None, "{url}");
        assert_eq!(&a.decoded(), bytes, "{url}");
        if bytes.len() > 1000 {
            assert!(a.body.len() < bytes.len() / 5, "{url}: {} bytes gzipped from {}", a.body.len(), bytes.len());
        }
        // Again, from the cache: the same bytes.
        let again = server.get_encoded(url, "gzip");
        assert_eq!((again.status, &again.body), (200, &a.body), "{url}");
    }
    // Content types are unchanged by the encoding.
    let a = server.get_encoded(HASHED_WASM, "gzip");
    assert_eq!(a.header("content-type"), Some("application/wasm"));
    assert_eq!(server.get_encoded("/data/index.json", "gzip").header("content-type"), Some("application/json"));
}

#[test]
fn no_gzip_unless_accept_encoding_allows_it() {
    let (dir, files) = bundle_site();
    let server = Server::start(dir.path());
    let (url, bytes) = files.iter().find(|(url, _)| *url == "/data/index.json").unwrap();
    for encoding in
        [None, Some("gzip;q=0"), Some("gzip; q=0.0, br"), Some("br, deflate"), Some("identity"), Some("*;q=0")]
    {
        let a = match encoding {
            Some(encoding) => server.get_encoded(url, encoding),
            None => server.get(url),
        };
        assert_eq!(a.status, 200, "{encoding:?}");
        assert_eq!(a.header("content-encoding"), None, "{encoding:?}");
        assert_eq!(&a.body, bytes, "{encoding:?}");
        // The answer still depends on Accept-Encoding: caches must keep the two apart.
        assert_eq!(a.header("vary"), Some("Accept-Encoding"), "{encoding:?}");
    }
    for encoding in ["GZIP", "br;q=1, gzip;q=0.5", "x-gzip", "*"] {
        let a = server.get_encoded(url, encoding);
        assert_eq!(a.header("content-encoding"), Some("gzip"), "{encoding:?}");
        assert_eq!(&a.decoded(), bytes, "{encoding:?}");
    }
}

#[test]
fn images_are_never_compressed() {
    let (dir, files) = bundle_site();
    let server = Server::start(dir.path());
    for (url, bytes) in files.iter().filter(|(url, _)| !is_compressible(url) && *url != "/worker.js") {
        let a = server.get_encoded(url, "gzip, deflate, br, *");
        assert_eq!(a.status, 200, "{url}");
        assert_eq!(a.header("content-encoding"), None, "{url}");
        assert_eq!(a.header("vary"), None, "{url}");
        assert_eq!(&a.body, bytes, "{url}");
    }
    assert_eq!(server.get_encoded("/data/mask.png", "gzip").header("content-type"), Some("image/png"));
}

#[test]
fn hashed_names_are_immutable_and_others_revalidated() {
    let (dir, _) = bundle_site();
    let root = dir.path();
    #[cfg(unix)]
    {
        // Links may be pointed elsewhere: a hashed name is immutable only if the file's is too.
        std::os::unix::fs::symlink("worker.js", root.join("alias-0123456789abcdef.js")).unwrap();
        std::os::unix::fs::symlink(&HASHED_JS[1..], root.join("app.js")).unwrap();
    }
    let server = Server::start(root);
    for url in [HASHED_JS, HASHED_WASM, HASHED_CSS] {
        for encoding in ["gzip", "identity"] {
            let a = server.get_encoded(url, encoding);
            assert_eq!(a.status, 200, "{url}");
            assert_eq!(a.header("cache-control"), Some(IMMUTABLE), "{url} {encoding}");
        }
    }
    let mut unhashed = vec!["/", "/index.html", "/worker.js", "/data/index.json", "/data/mask.png", "/data/model.bin"];
    if cfg!(unix) {
        unhashed.extend(["/alias-0123456789abcdef.js", "/app.js"]);
    }
    for url in unhashed {
        let a = server.get(url);
        assert_eq!(a.status, 200, "{url}");
        assert_eq!(a.header("cache-control"), Some("no-cache"), "{url}");
        let etag = a.header("etag").unwrap_or_else(|| panic!("{url}: no ETag"));
        assert!(
            etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"') && !etag[1..etag.len() - 1].contains('"')
        );
        let modified = a.header("last-modified").unwrap_or_else(|| panic!("{url}: no Last-Modified"));
        assert!(modified.ends_with(" GMT") && modified.len() == 29, "{url}: Last-Modified {modified:?}");
    }
    // Errors are not files: no validators.
    let a = server.get("/missing.js");
    assert_eq!((a.status, a.header("etag"), a.header("cache-control")), (404, None, None));
}

#[test]
fn if_none_match_gets_304_without_a_body() {
    let (dir, _) = bundle_site();
    let server = Server::start(dir.path());
    let plain = server.get("/index.html");
    let etag = plain.header("etag").expect("an ETag").to_string();
    let gzipped = server.get_encoded("/index.html", "gzip");
    let gz_etag = gzipped.header("etag").expect("an ETag").to_string();
    assert_ne!(etag, gz_etag, "the gzip encoding is other bytes: another tag");
    assert_eq!(server.get("/index.html").header("etag"), Some(etag.as_str()), "the tag is stable");

    for (encoding, tag, length) in [("identity", &etag, plain.body.len()), ("gzip", &gz_etag, gzipped.body.len())] {
        for if_none_match in [tag.clone(), format!("\"other\", W/{tag}"), "*".to_string()] {
            let head =
                format!("GET /index.html HTTP/1.1\r\nAccept-Encoding: {encoding}\r\nIf-None-Match: {if_none_match}");
            let a = server.request(&head);
            assert_eq!(a.status, 304, "{encoding} {if_none_match}");
            assert!(a.body.is_empty(), "a 304 with {} bytes of body", a.body.len());
            assert_eq!(a.header("etag"), Some(tag.as_str()));
            assert_eq!(a.header("cache-control"), Some("no-cache"));
            assert_eq!(a.header("vary"), Some("Accept-Encoding"));
            // The length of the body a 200 would send, or none at all (never chunks, never 0).
            assert_eq!(a.header("content-length"), Some(length.to_string().as_str()));
            assert_eq!(a.header("transfer-encoding"), None);
        }
    }
    // A tag of the other encoding, or of another version, is not this one.
    let a = server.request(&format!("GET /index.html HTTP/1.1\r\nAccept-Encoding: gzip\r\nIf-None-Match: {etag}"));
    assert_eq!((a.status, a.decoded().as_slice()), (200, INDEX.as_bytes()));
    let a = server.request("GET /index.html HTTP/1.1\r\nIf-None-Match: \"0-0\"");
    assert_eq!((a.status, a.body.as_slice()), (200, INDEX.as_bytes()));
    // Immutable files are validated too.
    let js = server.get(HASHED_JS);
    let a = server.request(&format!("GET {HASHED_JS} HTTP/1.1\r\nIf-None-Match: {}", js.header("etag").unwrap()));
    assert_eq!((a.status, a.header("cache-control")), (304, Some(IMMUTABLE)));

    // The 304 leaves the connection ready for the next request: nothing follows its headers.
    let mut stream = server.connect();
    write!(stream, "GET /index.html HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n").unwrap();
    write!(stream, "GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let first = Answer::parse(&raw);
    assert_eq!(first.status, 304);
    let second = Answer::parse(&first.body);
    assert_eq!((second.status, second.body.as_slice()), (200, INDEX.as_bytes()));

    // A changed file gets a new tag, and its new content, compressed anew.
    let changed = format!("{INDEX}<p>changed</p>");
    std::fs::write(dir.path().join("index.html"), &changed).unwrap();
    for (encoding, tag) in [("identity", &etag), ("gzip", &gz_etag)] {
        let a =
            server.request(&format!("GET /index.html HTTP/1.1\r\nAccept-Encoding: {encoding}\r\nIf-None-Match: {tag}"));
        assert_eq!((a.status, a.decoded()), (200, changed.as_bytes().to_vec()), "{encoding}");
        assert_ne!(a.header("etag"), Some(tag.as_str()));
    }
}

#[test]
fn head_sends_the_headers_of_get_without_a_body() {
    let (dir, _) = bundle_site();
    let server = Server::start(dir.path());
    for url in ["/index.html", HASHED_WASM, "/data/model.bin", "/data/mask.png"] {
        for encoding in ["gzip", "identity"] {
            let get = server.get_encoded(url, encoding);
            let head = server.request(&format!("HEAD {url} HTTP/1.1\r\nAccept-Encoding: {encoding}"));
            assert_eq!(head.status, 200, "{url} {encoding}");
            assert!(head.body.is_empty(), "HEAD {url} answered with {} bytes of body", head.body.len());
            assert_eq!(head.content_headers(), get.content_headers(), "{url} {encoding}");
            assert_eq!(head.header("content-length"), Some(get.body.len().to_string().as_str()), "{url} {encoding}");
        }
    }
    let head = server.request(&format!("HEAD {HASHED_WASM} HTTP/1.1\r\nAccept-Encoding: gzip"));
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    assert_eq!(head.header("cache-control"), Some(IMMUTABLE));
    let head = server.request("HEAD /index.html HTTP/1.1");
    assert_eq!((head.header("content-encoding"), head.header("cache-control")), (None, Some("no-cache")));
    assert!(head.header("etag").is_some() && head.header("last-modified").is_some());
}
