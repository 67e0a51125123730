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

impl Proxy {
    fn start(upstream: String, budget: u32, stall: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let injected = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (inj, stp) = (Arc::clone(&injected), Arc::clone(&stop));
        let rng = Arc::new(AtomicU64::new(0x9e37_79b9_7f4a_7c15));
        thread::spawn(move || {
            for client in listener.incoming() {
                if stp.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
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
                let inj = Arc::clone(&inj);
                thread::spawn(move || pump(client, server, fault, stall, &inj));
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
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = c_read.read(&mut buf) {
            if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
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

#[test]
fn backup_restore_and_copy_get_through_resets_and_stalls() {
    let server = Server::start(1);
    let endpoint = server
        .env
        .iter()
        .find(|(k, _)| k == "CHRONOFS_S3_ENDPOINT")
        .map(|(_, v)| v.trim_start_matches("http://").to_string())
        .unwrap();
    let proxy = Proxy::start(endpoint, 12, Duration::from_secs(3));
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
    let target = f.path("restored");
    f.ok(&[
        "--no-cache",
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_same_tree(&f.src, &f.restored_src(&target));
    let g = Fixture::at(Some(&through("copied")), env, &[]);
    f.ok(&["--no-cache", "copy", "--to", &through("copied")]);
    let copied = f.path("copied");
    g.ok(&[
        "--no-cache",
        "restore",
        "latest",
        "--target",
        copied.to_str().unwrap(),
    ]);
    assert_same_tree(&f.src, &f.restored_src(&copied));
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
