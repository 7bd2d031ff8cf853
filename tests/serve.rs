//! `salient serve` under hostile clients: stalled connections do not hold up others, nothing
//! outside the folder or other than a regular file is served, and bodies are refused unread.

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
