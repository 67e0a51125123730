//! The backup's live progress: a status line on a terminal, or JSON status lines with
//! `--json`. A separate thread samples the pipeline's counters a few times a second, so the
//! backup itself never waits for the display.

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chronofs::ingest::progress::{Progress, ProgressView};

use super::ui;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not at all (`--quiet`, or stderr is not a terminal).
    Off,
    /// A status line on stderr, redrawn in place.
    Terminal,
    /// A JSON object per second on stdout.
    Json,
}

/// A running display; [`Display::finish`] stops it and clears the status line.
pub struct Display {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Display {
    /// Starts showing `progress` in `mode`; `None` for [`Mode::Off`].
    pub fn start(mode: Mode, progress: Arc<Progress>) -> Option<Display> {
        let every = match mode {
            Mode::Off => return None,
            Mode::Terminal => Duration::from_millis(250),
            Mode::Json => Duration::from_secs(1),
        };
        let (stop, rx) = mpsc::channel();
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    let v = progress.view();
                    let elapsed = started.elapsed();
                    if mode == Mode::Json {
                        let _ = outln!("{}", json_line(&v, elapsed));
                    } else {
                        let width = chronofs::sys::terminal_width().unwrap_or(80);
                        let mut err = std::io::stderr().lock();
                        let _ = write!(err, "\r\x1b[K{}", status_line(&v, elapsed, width));
                        let _ = err.flush();
                    }
                }
                if mode == Mode::Terminal {
                    let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
                }
            })
            .ok()?;
        Some(Display { stop, thread })
    }

    /// Stops the display and clears its line.
    pub fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Estimated seconds left, when the total is known and enough is done to tell the rate.
fn eta_secs(v: &ProgressView, elapsed: Duration) -> Option<u64> {
    let secs = elapsed.as_secs_f64();
    if v.expected_bytes == 0 || v.bytes_done == 0 || secs < 2.0 {
        return None;
    }
    let rate = v.bytes_done as f64 / secs;
    let left = v.expected_bytes.saturating_sub(v.bytes_done) as f64 / rate;
    Some(left.round() as u64)
}

fn percent(v: &ProgressView) -> Option<f64> {
    (v.expected_bytes > 0)
        .then(|| (v.bytes_done as f64 * 100.0 / v.expected_bytes as f64).min(100.0))
}

fn clock(secs: u64) -> String {
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// One status line, at most `width` characters.
fn status_line(v: &ProgressView, elapsed: Duration, width: usize) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let mut line = format!(
        "[{}] {} files, {}",
        clock(elapsed.as_secs()),
        v.files_done,
        ui::size(v.bytes_done)
    );
    if let Some(p) = percent(v) {
        line += &format!(" of ~{} ({p:.0}%)", ui::size(v.expected_bytes));
    }
    line += &format!(", read {}/s", ui::size((v.bytes_read as f64 / secs) as u64));
    if let Some(eta) = eta_secs(v, elapsed) {
        line += &format!(", ETA {}", clock(eta));
    }
    if v.errors > 0 {
        line += &format!(", {} errors", v.errors);
    }
    if let Some(c) = &v.current {
        line += &format!("  {}", c.display());
    }
    if line.chars().count() >= width {
        line = line.chars().take(width.saturating_sub(1)).collect();
    }
    line
}

fn json_line(v: &ProgressView, elapsed: Duration) -> serde_json::Value {
    serde_json::json!({
        "message_type": "status",
        "seconds_elapsed": elapsed.as_secs(),
        "seconds_remaining": eta_secs(v, elapsed),
        "percent_done": percent(v).map(|p| p / 100.0),
        "files_done": v.files_done,
        "bytes_done": v.bytes_done,
        "bytes_read": v.bytes_read,
        "total_files": (v.expected_files > 0).then_some(v.expected_files),
        "total_bytes": (v.expected_bytes > 0).then_some(v.expected_bytes),
        "error_count": v.errors,
        "current_file": v.current.as_ref().map(|p| p.to_string_lossy()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ProgressView {
        ProgressView {
            files_done: 10,
            bytes_done: 50 << 20,
            bytes_read: 20 << 20,
            errors: 1,
            expected_files: 40,
            expected_bytes: 100 << 20,
            current: Some("/home/alice/a-file-with-a-long-name".into()),
        }
    }

    #[test]
    fn status_line_shows_counts_percent_eta_and_fits() {
        let line = status_line(&view(), Duration::from_secs(10), 200);
        assert_eq!(
            line,
            "[0:00:10] 10 files, 50.0 MiB of ~100.0 MiB (50%), read 2.0 MiB/s, ETA 0:00:10, 1 errors  /home/alice/a-file-with-a-long-name"
        );
        assert_eq!(
            status_line(&view(), Duration::from_secs(10), 30)
                .chars()
                .count(),
            29
        );
    }

    #[test]
    fn unknown_totals_give_no_eta() {
        let mut v = view();
        v.expected_bytes = 0;
        v.expected_files = 0;
        assert_eq!(eta_secs(&v, Duration::from_secs(10)), None);
        let j = json_line(&v, Duration::from_secs(3));
        assert_eq!(j["total_bytes"], serde_json::Value::Null);
        assert_eq!(j["files_done"], 10);
        assert_eq!(j["message_type"], "status");
    }
}
