//! Object storage under faults: a TCP proxy between chronofs and the real server that, request
//! by request, cuts and stalls uploads and replies, answers 500, 503, 429 and SlowDown, or
//! alters an upload's body; and a three-node Garage cluster that loses a node during a backup.
//! Each of backup, restore, check, copy, prune and a mount's reads meets every kind of fault
//! (counted per command) and still gives exact results.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::s3::Server;
use super::util::{Fixture, assert_same_tree, noise};

/// The faults [`Mode::Every`] injects, in turn; a command that meets all of them has met
/// every kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Close the connection halfway through a request: through its body when it has one
    /// (an upload cut off), else through its headers.
    CutRequest,
    /// Stop forwarding halfway through a request, wait, then close.
    StallRequest,
    /// Close the connection a few bytes into the reply.
    CutReply,
    /// Stop forwarding a few bytes into the reply, wait, then close.
    StallReply,
    /// Answer the request with refusal number `.0` of [`REFUSALS`] (and close).
    Refuse(usize),
}

const KINDS: [Kind; 8] = [
    Kind::CutRequest,
    Kind::Refuse(0),
    Kind::StallRequest,
    Kind::Refuse(1),
    Kind::CutReply,
    Kind::Refuse(2),
    Kind::StallReply,
    Kind::Refuse(3),
];

/// What [`Mode::Every`] counts, reset before each command.
#[derive(Default)]
struct Tally {
    /// Requests seen since the reset.
    requests: AtomicU32,
    /// Faults injected since the reset, by index in [`KINDS`].
    met: [AtomicU32; KINDS.len()],
    /// Of the `CutRequest` faults, those that cut a request body (an upload).
    bodies_cut: AtomicU32,
    /// A `CutRequest` waiting for a request with a body (at most [`DEFER`] requests).
    deferred: AtomicU32,
}

/// How many requests a `CutRequest` waits for one with a body before it cuts headers.
const DEFER: u32 = 6;

impl Tally {
    fn met(&self, kind: Kind) {
        let i = KINDS.iter().position(|k| *k == kind).unwrap();
        self.met[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The fault for the next request: every second request gets the next kind in turn,
    /// for `rounds` rounds of all kinds; a `CutRequest` that falls on a request without a
    /// body waits for one with a body (among those between the turns).
    fn next(&self, rounds: u32, has_body: bool) -> Option<Kind> {
        let r = self.requests.fetch_add(1, Ordering::Relaxed);
        let turn = r / 2;
        let slot = (r % 2 == 1 && turn < rounds * KINDS.len() as u32)
            .then(|| KINDS[turn as usize % KINDS.len()]);
        match slot {
            Some(Kind::CutRequest) if !has_body => {
                self.deferred.store(1, Ordering::Relaxed);
                None
            }
            Some(kind) => Some(kind),
            None => {
                let waiting = self.deferred.load(Ordering::Relaxed);
                if waiting > 0 && (has_body || waiting >= DEFER) {
                    self.deferred.store(0, Ordering::Relaxed);
                    Some(Kind::CutRequest)
                } else {
                    if waiting > 0 {
                        self.deferred.store(waiting + 1, Ordering::Relaxed);
                    }
                    None
                }
            }
        }
    }
}

/// A fault-injecting TCP proxy to the server.
struct Proxy {
    port: u16,
    /// [`Mode::AlterPuts`]: bodies altered.
    injected: Arc<AtomicU32>,
    /// [`Mode::Every`]: what the current command met.
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
}

/// What a proxy does.
#[derive(Clone, Copy)]
enum Mode {
    /// Every second request gets the next fault of [`KINDS`], for `rounds` rounds after each
    /// [`Proxy::reset`]; stalls last `stall`.
    Every { rounds: u32, stall: Duration },
    /// Flips one byte in the body of every second PUT, up to `budget` of them.
    AlterPuts { budget: u32 },
}

impl Proxy {
    fn with_mode(upstream: String, mode: Mode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let injected = Arc::new(AtomicU32::new(0));
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (inj, tal, stp) = (Arc::clone(&injected), Arc::clone(&tally), Arc::clone(&stop));
        let puts = Arc::new(AtomicU32::new(0));
        thread::spawn(move || {
            for (n, client) in (0u64..).zip(listener.incoming()) {
                if stp.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                match mode {
                    Mode::Every { rounds, stall } => {
                        let tally = Arc::clone(&tal);
                        // Where in a reply it is cut: always within the status line and
                        // headers, which every reply has.
                        let after = usize::try_from(n.wrapping_mul(37) % 100).unwrap();
                        thread::spawn(move || faulty(client, server, &tally, rounds, stall, after));
                    }
                    Mode::AlterPuts { budget } => {
                        let (puts, inj) = (Arc::clone(&puts), Arc::clone(&inj));
                        thread::spawn(move || alter_puts(client, server, budget, &puts, &inj));
                    }
                }
            }
        });
        Proxy {
            port,
            injected,
            tally,
            stop,
        }
    }

    /// Starts counting afresh, for the next command.
    fn reset(&self) {
        let t = &self.tally;
        t.requests.store(0, Ordering::Relaxed);
        t.bodies_cut.store(0, Ordering::Relaxed);
        t.deferred.store(0, Ordering::Relaxed);
        for m in &t.met {
            m.store(0, Ordering::Relaxed);
        }
    }

    /// Asserts that `command` met every kind of fault since the last reset, and, if it
    /// uploads, had an upload cut off.
    fn assert_met_all(&self, command: &str, uploads: bool) {
        let t = &self.tally;
        let met: Vec<(Kind, u32)> = KINDS
            .iter()
            .zip(&t.met)
            .map(|(k, m)| (*k, m.load(Ordering::Relaxed)))
            .collect();
        let requests = t.requests.load(Ordering::Relaxed);
        assert!(
            met.iter().all(|(_, n)| *n > 0),
            "{command} ({requests} requests) did not meet every fault: {met:?}"
        );
        if uploads {
            assert!(
                t.bodies_cut.load(Ordering::Relaxed) > 0,
                "{command}: no upload was cut off ({met:?})"
            );
        }
        eprintln!("{command}: {requests} requests, faults {met:?}");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Forwards one connection request by request, putting on each the fault `tally` chooses;
/// a reply fault lets `after` bytes of the reply through. Every fault ends the connection.
fn faulty(
    client: TcpStream,
    server: TcpStream,
    tally: &Arc<Tally>,
    rounds: u32,
    stall: Duration,
    after: usize,
) {
    let armed: Arc<Mutex<Option<Kind>>> = Arc::default();
    let (mut s_read, mut c_write) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    let (reply, down_tally) = (Arc::clone(&armed), Arc::clone(tally));
    // Replies: requests are not pipelined, so once a reply fault is armed, what comes next
    // is that request's reply.
    let down = thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut since = 0;
        loop {
            let n = match s_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let kind = *reply.lock().unwrap();
            if let Some(kind) = kind {
                if since + n > after {
                    let _ = c_write.write_all(&buf[..after - since]);
                    down_tally.met(kind);
                    if kind == Kind::StallReply {
                        thread::sleep(stall);
                    }
                    break;
                }
                since += n;
            }
            if c_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = c_write.shutdown(Shutdown::Both);
        let _ = s_read.shutdown(Shutdown::Both);
    });
    let (mut from, mut to) = (client, server);
    let mut buf: Vec<u8> = Vec::new();
    while let Some((end, _, len)) = read_head(&mut from, &mut buf) {
        let kind = tally.next(rounds, len > 0);
        match kind {
            None => {
                if !forward_request(&mut from, &mut to, &mut buf, end, len, None) {
                    break;
                }
            }
            Some(k @ (Kind::CutReply | Kind::StallReply)) => {
                *armed.lock().unwrap() = Some(k);
                if !forward_request(&mut from, &mut to, &mut buf, end, len, None) {
                    break;
                }
            }
            Some(k @ Kind::Refuse(n)) => {
                while buf.len() < end + len {
                    if !fill(&mut from, &mut buf) {
                        break;
                    }
                }
                refuse(&mut from, n);
                tally.met(k);
                break;
            }
            Some(k @ (Kind::CutRequest | Kind::StallRequest)) => {
                // Halfway through the body, or through the headers when there is none.
                let upto = if len > 0 { end + len / 2 } else { end / 2 };
                while buf.len() < upto {
                    if !fill(&mut from, &mut buf) {
                        break;
                    }
                }
                let _ = to.write_all(&buf[..upto.min(buf.len())]);
                if len > 0 && k == Kind::CutRequest {
                    tally.bodies_cut.fetch_add(1, Ordering::Relaxed);
                }
                tally.met(k);
                if k == Kind::StallRequest {
                    thread::sleep(stall);
                }
                break;
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    let _ = down.join();
}

/// Forwards the request whose headers end at `end` in `buf` and whose body is `len` bytes
/// (read from `from` as needed) to `to`, flipping the body's byte at `flip`; false when
/// either side is gone.
fn forward_request(
    from: &mut TcpStream,
    to: &mut TcpStream,
    buf: &mut Vec<u8>,
    end: usize,
    len: usize,
    flip: Option<usize>,
) -> bool {
    // The headers go on at once (a client may wait for `100 Continue` before the body).
    if to.write_all(&buf[..end]).is_err() {
        return false;
    }
    buf.drain(..end);
    let mut at = 0;
    while at < len {
        if buf.is_empty() && !fill(from, buf) {
            return false;
        }
        let n = (len - at).min(buf.len());
        let mut piece: Vec<u8> = buf.drain(..n).collect();
        if let Some(f) = flip
            && (at..at + n).contains(&f)
        {
            piece[f - at] ^= 0x01;
        }
        if to.write_all(&piece).is_err() {
            return false;
        }
        at += n;
    }
    true
}

/// Forwards one connection both ways; in the requests, flips one byte in the middle of the
/// body of every second PUT (`puts` counts them, over all connections) while fewer than
/// `budget` were altered (`altered` counts those). Requests are parsed (headers, then
/// `Content-Length` bytes of body), so keep-alive connections that carry many requests are
/// altered where a body is.
fn alter_puts(
    client: TcpStream,
    server: TcpStream,
    budget: u32,
    puts: &AtomicU32,
    altered: &AtomicU32,
) {
    let (mut s_read, mut c_write) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    let down = thread::spawn(move || {
        let _ = std::io::copy(&mut s_read, &mut c_write);
        let _ = c_write.shutdown(Shutdown::Write);
    });
    let (mut from, mut to) = (client, server);
    let mut buf: Vec<u8> = Vec::new();
    while let Some((end, head, len)) = read_head(&mut from, &mut buf) {
        let is_put = head.starts_with("put ") && len > 0;
        let flip = (is_put
            && puts.fetch_add(1, Ordering::Relaxed).is_multiple_of(2)
            && altered
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                    (a < budget).then_some(a + 1)
                })
                .is_ok())
        .then_some(len / 2);
        if !forward_request(&mut from, &mut to, &mut buf, end, len, flip) {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = down.join();
}

/// Reads more of `from` into `buf`; false at the end of the stream.
fn fill(from: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 64 * 1024];
    match from.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Reads `from` into `buf` until `buf` holds a request's headers; returns where they end, the
/// headers (lowercase) and the body's `Content-Length`. `None` at the end of the stream.
fn read_head(from: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(usize, String, usize)> {
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if !fill(from, buf) {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some((end, head, len))
}

/// The error answers of [`Kind::Refuse`]: status, reason, S3 error code.
const REFUSALS: [(u16, &str, &str); 4] = [
    (500, "Internal Server Error", "InternalError"),
    (503, "Service Unavailable", "ServiceUnavailable"),
    (429, "Too Many Requests", "TooManyRequests"),
    (503, "Slow Down", "SlowDown"),
];

/// Answers the request just read from `client` with refusal number `k` of [`REFUSALS`].
fn refuse(client: &mut TcpStream, k: usize) {
    let (status, reason, code) = REFUSALS[k % REFUSALS.len()];
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
         <Message>refused by the test proxy</Message></Error>"
    );
    let _ = write!(
        client,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The proxy's address for the server's S3 endpoint.
fn endpoint(server: &Server) -> String {
    server
        .env
        .iter()
        .find(|(k, _)| k == "CHRONOFS_S3_ENDPOINT")
        .map(|(_, v)| v.trim_start_matches("http://").to_string())
        .unwrap()
}

#[test]
fn an_upload_altered_on_the_way_is_refused_by_the_server_and_sent_again() {
    const BUDGET: u32 = 8;
    let server = Server::start(1);
    let files: Vec<(u64, usize)> = (0..6).map(|i| (70 + i, 700_000)).collect();
    let (proxy, direct, f) = through_proxy(
        &server,
        Mode::AlterPuts { budget: BUDGET },
        "altered",
        &files,
    );
    let (retries, summary) = backup_retries(&f);
    let altered = proxy.injected.load(Ordering::Relaxed);
    assert_eq!(altered, BUDGET, "PUTs altered on the way");
    assert!(
        retries >= u64::from(BUDGET),
        "each altered body was refused and sent again: {summary}"
    );
    // Straight to the server: what is stored is what chronofs sent, not what arrived altered.
    direct.ok(&["--no-cache", "check", "--read-data"]);
    restores_exactly(&direct, &f, "restored");
}

/// A repository `prefix` made straight on `server` (returned second), a proxy in `mode` before
/// it, and a fixture that reaches the repository through the proxy, with `files` (noise seed,
/// length) in its source.
fn through_proxy(
    server: &Server,
    mode: Mode,
    prefix: &str,
    files: &[(u64, usize)],
) -> (Proxy, Fixture, Fixture) {
    let proxy = Proxy::with_mode(endpoint(server), mode);
    let through = format!("s3:http://127.0.0.1:{}/chronofs-test/{prefix}", proxy.port);
    let direct = Fixture::at(
        Some(&server.repo(prefix)),
        server.client_env(2),
        &["--pack-size", "1"],
    );
    let f = Fixture::attach(Some(&through), server.client_env(10));
    for (i, &(seed, len)) in files.iter().enumerate() {
        fs::write(f.src.join(format!("f{i}")), noise(seed, len)).unwrap();
    }
    (proxy, direct, f)
}

/// Backs up `f`'s source; returns how many requests the backup sent again, and its summary.
fn backup_retries(f: &Fixture) -> (u64, serde_json::Value) {
    let out = f.ok(&["--no-cache", "backup", "--json", f.src_str()]);
    let summary: serde_json::Value =
        serde_json::from_str(out.lines().rfind(|l| l.contains("\"summary\"")).unwrap()).unwrap();
    let retries = summary["storage_traffic"]["retries"].as_u64().unwrap();
    (retries, summary)
}

/// `latest` of `via`'s repository, restored into `f`'s directory `dir`, is `f`'s source.
fn restores_exactly(via: &Fixture, f: &Fixture, dir: &str) {
    let target = f.path(dir);
    via.ok(&[
        "--no-cache",
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_same_tree(&f.src, &f.restored_src(&target));
}

#[test]
fn every_command_meets_every_fault_and_gives_exact_results() {
    let server = Server::start(1);
    let proxy = Proxy::with_mode(
        endpoint(&server),
        Mode::Every {
            rounds: 2,
            stall: Duration::from_secs(3),
        },
    );
    let through =
        |prefix: &str| format!("s3:http://127.0.0.1:{}/chronofs-test/{prefix}", proxy.port);
    let mut env = server.client_env(12);
    env.push(("CHRONOFS_S3_TIMEOUT".into(), "1".into()));
    let f = Fixture::at(Some(&through("every")), env.clone(), &["--pack-size", "1"]);
    for i in 0..8 {
        fs::write(f.src.join(format!("f{i}")), noise(40 + i, 700_000)).unwrap();
    }
    fs::write(f.src.join("small"), b"small").unwrap();
    let step = |command: &str, uploads: bool, run: &dyn Fn()| {
        proxy.reset();
        run();
        proxy.assert_met_all(command, uploads);
    };
    step("backup", true, &|| {
        f.ok(&["--no-cache", "backup", f.src_str()]);
    });
    step("restore", false, &|| restores_exactly(&f, &f, "restored"));
    step("check --read-data", false, &|| {
        f.ok(&["--no-cache", "check", "--read-data"]);
    });
    let g = Fixture::at(Some(&through("every-copy")), env, &[]);
    step("copy", true, &|| {
        f.ok(&["--no-cache", "copy", "--to", &through("every-copy")]);
    });
    restores_exactly(&g, &f, "copied");
    // Something for prune to do: a snapshot, dropped by forget, that alone holds a file.
    fs::write(f.src.join("gone"), noise(99, 700_000)).unwrap();
    f.ok(&["--no-cache", "backup", f.src_str()]);
    fs::remove_file(f.src.join("gone")).unwrap();
    f.ok(&["--no-cache", "backup", f.src_str()]);
    f.ok(&["--no-cache", "forget", "--keep-last", "1"]);
    step("prune", true, &|| {
        f.ok(&["--no-cache", "prune"]);
    });
    restores_exactly(&f, &f, "after-prune");
    step("mount read", false, &|| {
        let m = super::mount::Mounted::new(&f, &["--no-cache"]);
        assert_same_tree(&f.src, &m.src_in(&f, "latest"));
    });
    // Straight to the server: both repositories are whole.
    let direct = |prefix: &str| Fixture::attach(Some(&server.repo(prefix)), server.client_env(2));
    direct("every").ok(&["--no-cache", "check", "--read-data"]);
    direct("every-copy").ok(&["--no-cache", "check", "--read-data"]);
}

#[test]
fn a_three_node_cluster_loses_a_node_during_a_backup_and_nothing_else() {
    let server = Server::start(3);
    let f = Fixture::at(
        Some(&server.repo("cluster")),
        server.client_env(8),
        &["--pack-size", "1"],
    );
    for i in 0..30 {
        fs::write(f.src.join(format!("f{i}")), noise(500 + i, 1_000_000)).unwrap();
    }
    let child = f
        .cmd(&["backup", f.src_str()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    server.wait_until_stored(1, 5_000_000, &mut child);
    // Node 3 dies; node 1 (the endpoint) and node 2 still make a quorum.
    server.kill_node(3);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the backup failed with a node down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = f.path("restored");
    f.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&target));
    f.ok(&["check", "--read-data"]);
    server.start_node(3);
    f.ok(&["backup", f.src_str()]);
    f.ok(&["check"]);
}
