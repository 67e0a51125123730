//! The writer at work: change detection (touched files, `--parent`), files that change size
//! while they are read, bounded memory for a 5 GiB sparse file and a multi-GiB stream,
//! dedup across files and snapshots, many files through many reader threads, and `--json`
//! progress lines.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use super::util::assert_ok;
use super::util::{Fixture, assert_same_tree, noise, sh};

/// Runs `backup --json ARGS` (exit code `code`); returns every stdout line parsed.
fn json_lines(f: &Fixture, args: &[&str], code: i32) -> Vec<serde_json::Value> {
    let mut full = vec!["backup", "--json"];
    full.extend_from_slice(args);
    let out = f.run(&full);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_lines(&out.stdout)
}

/// Every line of a `--json` run's stdout, parsed.
fn parse_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn final_summary(lines: &[serde_json::Value]) -> &serde_json::Value {
    let last = lines.last().expect("a summary line");
    assert_eq!(last["message_type"], "summary");
    last
}

fn counts(s: &serde_json::Value) -> (u64, u64, u64) {
    let n = |k: &str| s["summary"][k].as_u64().unwrap();
    (n("files_new"), n("files_changed"), n("files_unchanged"))
}

const MIB: u64 = 1 << 20;

#[test]
fn touched_files_are_reread_and_parent_chooses_the_comparison() {
    let f = Fixture::new();
    for i in 0..10 {
        fs::write(f.src.join(format!("f{i}")), noise(i, 50_000)).unwrap();
    }
    let first = json_lines(&f, &[f.src_str()], 0);
    let first_id = final_summary(&first)["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(counts(final_summary(&first)), (10, 0, 0));
    assert_eq!(final_summary(&first)["parent"], serde_json::Value::Null);

    // Same content, new mtime: re-read, and the chunks dedup.
    sh(&format!(
        "touch -d '2001-02-03 04:05:06' '{}/f1'",
        f.src_str()
    ));
    let second = json_lines(&f, &[f.src_str()], 0);
    let s = final_summary(&second);
    assert_eq!(counts(s), (0, 1, 9));
    assert_eq!(s["summary"]["bytes_read"], 50_000);
    assert_eq!(s["summary"]["chunks_new"], 0);
    assert_eq!(
        s["parent"],
        first_id.as_str(),
        "the newest snapshot is the parent"
    );

    // A further change, compared with the first snapshot (a differential-style report): both
    // changes since the first show, though f1 did not change since the second.
    fs::write(f.src.join("f2"), noise(99, 50_000)).unwrap();
    let third = json_lines(&f, &["--parent", &first_id[..8], f.src_str()], 0);
    assert_eq!(counts(final_summary(&third)), (0, 2, 8));
    assert_eq!(final_summary(&third)["parent"], first_id.as_str());

    // A different set of paths has no parent: everything is new.
    let other = f.path("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("x"), b"x").unwrap();
    let fourth = json_lines(&f, &[other.to_str().unwrap()], 0);
    assert_eq!(counts(final_summary(&fourth)), (1, 0, 0));
}

#[test]
fn files_that_change_size_while_read_are_stored_as_read_with_a_warning() {
    let f = Fixture::new();
    // procfs reports size 0 but yields bytes (it "grows"); sysfs reports 4096 and yields a
    // few bytes (it "shrinks"): deterministic stand-ins for files written during a backup.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let grows = format!("/proc/{}/status", sleeper.id());
    let shrinks = "/sys/kernel/uevent_seqnum";
    assert_eq!(fs::metadata(&grows).unwrap().size(), 0);
    assert_eq!(fs::metadata(shrinks).unwrap().size(), 4096);
    let out = f.run(&["backup", &grows, shrinks]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    for p in [grows.as_str(), shrinks] {
        assert!(
            stderr.contains(&format!("{p}: changed size while being read")),
            "{stderr}"
        );
    }
    let t = f.path("t");
    f.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    let shrunk = fs::read(t.join("sys/kernel/uevent_seqnum")).unwrap();
    assert!(
        !shrunk.is_empty() && shrunk.len() < 4096 && shrunk.ends_with(b"\n"),
        "the snapshot holds what was read: {shrunk:?}"
    );
    let grown = fs::read_to_string(t.join(&grows[1..])).unwrap();
    assert!(grown.starts_with("Name:\tsleep"), "{grown}");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();

    // A real file appended to throughout the backup: whatever was read is stored, a prefix
    // of the final file, and the listing's size matches the restored bytes.
    let log = f.src.join("growing.log");
    fs::write(&log, noise(1, 8 << 20)).unwrap();
    let mut writer = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while :; do head -c 65536 /dev/zero >> '{}'; done",
            log.display()
        ))
        .spawn()
        .unwrap();
    let out = f.run(&["backup", f.src_str()]);
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t2 = f.path("t2");
    f.ok(&["restore", "latest", "--target", t2.to_str().unwrap()]);
    let got = fs::read(f.restored_src(&t2).join("growing.log")).unwrap();
    let now = fs::read(&log).unwrap();
    assert!(got.len() >= 8 << 20 && got.len() <= now.len());
    assert!(now.starts_with(&got), "the stored bytes are what was read");
}

/// What a backup may take whatever the size of its input: a fixed part, and per core one
/// compressor with its queue (a few chunks of at most 4 MiB, raw and compressed).
fn rss_bound() -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get) as u64;
    160 * MIB + cores * 24 * MIB
}

#[test]
fn a_5_gib_sparse_file_and_a_3_gib_stream_take_bounded_memory() {
    let f = Fixture::new();
    let sparse = f.src.join("disk.img");
    {
        let mut file = fs::File::create(&sparse).unwrap();
        file.write_all(&noise(5, MIB as usize)).unwrap();
        file.set_len(5 << 30).unwrap();
        use std::os::unix::fs::FileExt;
        file.write_all_at(b"tail", (5 << 30) - 4).unwrap();
    }
    let lines = json_lines(&f, &[f.src_str()], 0);
    let s = final_summary(&lines);
    assert_eq!(s["summary"]["total_bytes"], 5u64 << 30);
    assert!(
        s["summary"]["bytes_read"].as_u64().unwrap() < 8 * MIB,
        "holes are not read: {s}"
    );
    let rss = s["peak_rss_bytes"].as_u64().unwrap();
    assert!(rss > 0 && rss < rss_bound(), "peak RSS {rss}");

    // 3 GiB through a pipe: a 64 MiB pattern repeated, so most chunks dedup.
    let mut child = f
        .cmd(&["backup", "--json", "--stdin", "--stdin-name", "dump.bin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let block = noise(7, 64 << 20);
        for _ in 0..48 {
            stdin.write_all(&block).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_ok(&out);
    let lines = parse_lines(&out.stdout);
    let s = final_summary(&lines);
    assert_eq!(s["summary"]["total_bytes"], 3u64 << 30);
    assert_eq!(s["summary"]["bytes_read"], 3u64 << 30);
    assert!(
        s["summary"]["bytes_added"].as_u64().unwrap() < 80 * MIB,
        "the repeats dedup: {s}"
    );
    let rss = s["peak_rss_bytes"].as_u64().unwrap();
    assert!(rss > 0 && rss < rss_bound(), "peak RSS {rss}");
    let ls = f.ok(&["ls", "latest", "--long"]);
    assert!(ls.contains("3221225472") && ls.contains("dump.bin"), "{ls}");
}

#[test]
fn identical_content_is_stored_once_across_files_and_snapshots() {
    let f = Fixture::new();
    let data = noise(11, 6 << 20);
    fs::write(f.src.join("a"), &data).unwrap();
    fs::create_dir(f.src.join("sub")).unwrap();
    fs::write(f.src.join("sub/b"), &data).unwrap();
    let s = json_lines(&f, &[f.src_str()], 0);
    let added = final_summary(&s)["summary"]["bytes_added"]
        .as_u64()
        .unwrap();
    let len = data.len() as u64;
    assert!(
        added >= len && added < len + 64 * 1024,
        "two copies stored once: {added}"
    );

    let other = f.path("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("c"), &data).unwrap();
    let s = json_lines(&f, &[other.to_str().unwrap()], 0);
    let s = final_summary(&s);
    assert_eq!(counts(s), (1, 0, 0), "another path set: read again");
    assert_eq!(s["summary"]["chunks_new"], 0, "but nothing new stored");
    assert!(s["summary"]["bytes_added"].as_u64().unwrap() < 4096);
}

/// Also more large files (1 MiB and up, read in buffers lent for them: four with eight
/// readers) than buffers, between small ones: a buffer not given back would stall the backup,
/// one given back while in use would mix two files' bytes.
#[test]
fn many_files_through_many_readers_restore_exactly() {
    let f = Fixture::new();
    for d in 0..30 {
        let dir = f.src.join(format!("d{d:02}/inner"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..40u64 {
            let len = ((d * 40 + i as usize) * 997) % 70_000;
            fs::write(dir.join(format!("f{i}")), noise(i + d as u64 * 100, len)).unwrap();
        }
        if d % 3 == 0 {
            let len = (1 << 20) + d * 313_000;
            fs::write(dir.join("large"), noise(7_000 + d as u64, len)).unwrap();
        }
        // A hardlink whose other name lives in another directory.
        if d > 0 {
            fs::hard_link(
                dir.join("f0"),
                f.src.join(format!("d{:02}/link-to-prev", d - 1)),
            )
            .unwrap();
        }
    }
    fs::create_dir(f.src.join("empty")).unwrap();
    let s = json_lines(&f, &["--read-concurrency", "8", f.src_str()], 0);
    assert_eq!(counts(final_summary(&s)).0, 30 * 40 + 10 + 29);
    let t = f.path("t");
    f.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_same_tree(&f.src, &f.restored_src(&t));
    f.ok(&["check", "--read-data"]);
}
