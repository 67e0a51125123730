//! Small presentation helpers shared by commands: human sizes and durations, and the
//! stderr reporter for warnings.

use std::io::Write as _;
use std::path::Path;

use chronofs::ingest::Reporter;

/// Bytes in IEC units, e.g. `1.5 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Parses a wait such as `30s`, `10m`, `2h` or `90` (seconds).
pub fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 10m or 2h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("{s:?}: the unit must be s, m or h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// Parses a keep count: a number, or `unlimited` (also `-1`, as restic accepts).
pub fn parse_count(s: &str) -> Result<u32, String> {
    match s {
        "unlimited" | "-1" => Ok(chronofs::maintain::policy::UNLIMITED),
        _ => s
            .parse::<u32>()
            .ok()
            .filter(|&n| n != chronofs::maintain::policy::UNLIMITED)
            .ok_or_else(|| format!("{s:?} is not a count (a number or `unlimited`)")),
    }
}

/// A duration in ns as people read it: `45s`, `12m 5s`, `19h 12m`, `3d 4h`.
pub fn secs_human(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let s = ns.unsigned_abs() / 1_000_000_000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let text = if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    };
    format!("{sign}{text}")
}

/// Seconds with millisecond precision.
pub fn secs(ns: u64) -> String {
    format!("{:.3}s", ns as f64 / 1e9)
}

/// Prints warnings to stderr as `chronofs: warning: PATH: message`, or as JSON objects.
pub struct StderrReporter {
    /// Leave out notes.
    pub quiet: bool,
    /// A status line may be on screen: clear it before printing.
    pub clear_line: bool,
    /// Print `{"message_type":"error",...}` objects instead of text.
    pub json: bool,
}

impl StderrReporter {
    fn print(&self, kind: &str, path: &Path, message: &str) {
        let mut err = std::io::stderr().lock();
        let _ = if self.json {
            let v = serde_json::json!({"message_type": kind, "path": path.to_string_lossy(), "message": message});
            writeln!(err, "{v}")
        } else {
            let clear = if self.clear_line { "\r\x1b[K" } else { "" };
            writeln!(
                err,
                "{clear}chronofs: {kind}: {}: {}",
                super::quote::path(path),
                super::quote::text(message)
            )
        };
    }
}

impl Reporter for StderrReporter {
    fn warning(&self, path: &Path, message: &str) {
        self.print(if self.json { "error" } else { "warning" }, path, message);
    }
    fn note(&self, path: &Path, message: &str) {
        if !self.quiet {
            self.print("note", path, message);
        }
    }
}

/// Parses a size such as `64M`, `1GiB`, `512k` or `1048576` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 64M, 1G, 524288)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}
