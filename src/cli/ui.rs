//! Small presentation helpers shared by commands: human sizes and durations, and the
//! stderr reporter for warnings.

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

/// Seconds with millisecond precision.
pub fn secs(ns: u64) -> String {
    format!("{:.3}s", ns as f64 / 1e9)
}

/// Prints warnings to stderr as `warning: PATH: message`.
pub struct StderrReporter {
    pub quiet: bool,
}

impl Reporter for StderrReporter {
    fn warning(&self, path: &Path, message: &str) {
        eprintln!("chronofs: warning: {}: {message}", path.display());
    }
    fn note(&self, path: &Path, message: &str) {
        if !self.quiet {
            eprintln!("chronofs: note: {}: {message}", path.display());
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
