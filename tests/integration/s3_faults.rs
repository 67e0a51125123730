//! Object storage under faults: a TCP proxy between chronofs and the real server that resets
//! and stalls connections at random (a bounded number of times), and a three-node Garage
//! cluster that loses a node during a backup. Every command must get through, byte for byte.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use super::s3::Server;
use super::util::{Fixture, assert_same_tree, noise};

/// What the proxy does to one connection.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Forward everything.
    None,
    /// Close both ways after this many bytes from the server.
    ResetAfter(u64),
    /// Stop forwarding after this many bytes from the server, wait, then close.
    StallAfter(u64),
}

/// A fault-injecting TCP proxy to `upstream`, with at most `budget` faults in all.
struct Proxy {
    port: u16,
    injected: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

/// What a proxy does.
#[derive(Clone, Copy)]
enum Mode {
    /// Resets and stalls connections (up to `budget` of them), in the server's replies.
    Faults { budget: u32, stall: Duration },
    /// Flips one byte in the body of every second PUT, up to `budget` of them.
    AlterPuts { budget: u32 },
    /// Answers the first request of every second connection itself, up to `budget` times,
    /// with 500, 503, 429 and 503 `SlowDown` in turn (and closes the connection).
    Refuse { budget: u32 },
}

impl Proxy {
    fn start(upstream: String, budget: u32, stall: Duration) -> Proxy {
        Self::with_mode(upstream, Mode::Faults { budget, stall })
    }

    fn with_mode(upstream: String, mode: Mode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let injected = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (inj, stp) = (Arc::clone(&injected), Arc::clone(&stop));
        let rng = Arc::new(AtomicU64::new(0x9e37_79b9_7f4a_7c15));
        let puts = Arc::new(AtomicU32::new(0));
        thread::spawn(move || {
            for client in listener.incoming() {
                if stp.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let inj = Arc::clone(&inj);
                match mode {
                    Mode::Refuse { budget } => {
                        let n = puts.fetch_add(1, Ordering::Relaxed);
                        let refuse = if n.is_multiple_of(2) {
                            inj.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                                (a < budget).then_some(a + 1)
                            })
                            .ok()
                        } else {
                            None
                        };
                        thread::spawn(move || match refuse {
                            Some(k) => refuse_first(client, k),
                            None => pump(client, server, Fault::None, Duration::ZERO, &inj),
                        });
                    }
                    Mode::AlterPuts { budget } => {
                        let puts = Arc::clone(&puts);
                        thread::spawn(move || alter_puts(client, server, budget, &puts, &inj));
                    }
                    Mode::Faults { budget, stall } => {
                        // xorshift: reproducible, spread over connections.
                        let mut x = rng.load(Ordering::Relaxed);
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        rng.store(x, Ordering::Relaxed);
                        let fault = if inj.load(Ordering::Relaxed) >= budget {
                            Fault::None
                        } else {
                            match x % 4 {
                                0 | 1 => Fault::ResetAfter(x % 300_000),
                                2 => Fault::StallAfter(x % 300_000),
                                _ => Fault::None,
                            }
                        };
                        thread::spawn(move || pump(client, server, fault, stall, &inj));
                    }
                }
            }
        });
        Proxy {
            port,
            injected,
            stop,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Forwards one connection both ways, applying `fault` to the server's answers.
fn pump(client: TcpStream, server: TcpStream, fault: Fault, stall: Duration, injected: &AtomicU32) {
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut sent = 0u64;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let limit = match fault {
            Fault::ResetAfter(at) | Fault::StallAfter(at) => Some(at),
            Fault::None => None,
        };
        if let Some(at) = limit
            && sent + n as u64 > at
        {
            injected.fetch_add(1, Ordering::Relaxed);
            let keep = usize::try_from(at - sent).unwrap_or(0);
            let _ = c_write.write_all(&buf[..keep]);
            if let Fault::StallAfter(_) = fault {
                thread::sleep(stall);
            }
            break;
        }
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = s_read.shutdown(Shutdown::Both);
    let _ = up.join();
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
    'requests: while let Some((end, head, len)) = read_head(&mut from, &mut buf) {
        let is_put = head.starts_with("put ") && len > 0;
        let flip = (is_put
            && puts.fetch_add(1, Ordering::Relaxed).is_multiple_of(2)
            && altered
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                    (a < budget).then_some(a + 1)
                })
                .is_ok())
        .then_some(len / 2);
        // The headers go on at once (a client may wait for `100 Continue` before the body).
        if to.write_all(&buf[..end]).is_err() {
            break;
        }
        buf.drain(..end);
        let mut at = 0;
        while at < len {
            if buf.is_empty() && !fill(&mut from, &mut buf) {
                break 'requests;
            }
            let n = (len - at).min(buf.len());
            let mut piece: Vec<u8> = buf.drain(..n).collect();
            if let Some(f) = flip
                && (at..at + n).contains(&f)
            {
                piece[f - at] ^= 0x01;
            }
            if to.write_all(&piece).is_err() {
                break 'requests;
            }
            at += n;
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

/// The error answers of [`Mode::Refuse`], in turn: status, reason, S3 error code.
const REFUSALS: [(u16, &str, &str); 4] = [
    (500, "Internal Server Error", "InternalError"),
    (503, "Service Unavailable", "ServiceUnavailable"),
    (429, "Too Many Requests", "TooManyRequests"),
    (503, "Slow Down", "SlowDown"),
];

/// Reads one whole request from `client` (headers, then `Content-Length` bytes of body) and
/// answers it with refusal number `k` of [`REFUSALS`], closing the connection.
fn refuse_first(mut client: TcpStream, k: u32) {
    let mut buf = Vec::new();
    let Some((end, _, len)) = read_head(&mut client, &mut buf) else {
        return;
    };
    while buf.len() < end + len {
        if !fill(&mut client, &mut buf) {
            return;
        }
    }
    let (status, reason, code) = REFUSALS[k as usize % REFUSALS.len()];
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
    let _ = client.shutdown(Shutdown::Both);
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
fn server_errors_and_slow_down_are_retried_and_every_command_gets_through() {
    // Two of each refusal in turn.
    const BUDGET: u32 = 2 * REFUSALS.len() as u32;
    let server = Server::start(1);
    let files: Vec<(u64, usize)> = (0..4).map(|i| (90 + i, 600_000)).collect();
    let (proxy, direct, f) =
        through_proxy(&server, Mode::Refuse { budget: BUDGET }, "refused", &files);
    let (retries, summary) = backup_retries(&f);
    assert!(retries >= 1, "{summary}");
    restores_exactly(&f, &f, "restored");
    f.ok(&["--no-cache", "check", "--read-data"]);
    fs::write(f.src.join("f0"), noise(99, 600_000)).unwrap();
    f.ok(&["--no-cache", "backup", f.src_str()]);
    f.ok(&["--no-cache", "snapshots"]);
    restores_exactly(&f, &f, "restored-again");
    // The refusals come in turn: four or more means each kind was met and retried.
    let refused = proxy.injected.load(Ordering::Relaxed);
    eprintln!("refusals answered: {refused}");
    assert!(refused >= 4, "only {refused} refusals were answered");
    direct.ok(&["--no-cache", "check", "--read-data"]);
}

#[test]
fn backup_restore_and_copy_get_through_resets_and_stalls() {
    let server = Server::start(1);
    let proxy = Proxy::start(endpoint(&server), 12, Duration::from_secs(3));
    let through =
        |prefix: &str| format!("s3:http://127.0.0.1:{}/chronofs-test/{prefix}", proxy.port);
    let mut env = server.client_env(10);
    env.push(("CHRONOFS_S3_TIMEOUT".into(), "1".into()));
    let f = Fixture::at(Some(&through("faulty")), env.clone(), &["--pack-size", "2"]);
    for i in 0..12 {
        fs::write(
            f.src.join(format!("f{i}")),
            noise(40 + i, 1_000_000 + i as usize),
        )
        .unwrap();
    }
    fs::write(f.src.join("small"), b"small").unwrap();
    f.ok(&["--no-cache", "backup", f.src_str()]);
    restores_exactly(&f, &f, "restored");
    let g = Fixture::at(Some(&through("copied")), env, &[]);
    f.ok(&["--no-cache", "copy", "--to", &through("copied")]);
    restores_exactly(&g, &f, "copied");
    let faults = proxy.injected.load(Ordering::Relaxed);
    assert!(faults >= 4, "the proxy injected only {faults} faults");
    // Straight to the server: both repositories are clean.
    let direct = |prefix: &str| Fixture::attach(Some(&server.repo(prefix)), server.client_env(2));
    direct("faulty").ok(&["--no-cache", "check", "--read-data"]);
    direct("copied").ok(&["--no-cache", "check", "--read-data"]);
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
