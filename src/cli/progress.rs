//! Live progress of a long command: on a terminal, a bar on stderr with the total, the
//! percentage, the rate and an ETA once the total is known, and a counter until then
//! (indicatif draws it); with `--json` (backup, restore, check), a JSON status object a second
//! and one at the end on stdout; off
//! a terminal or with `--quiet`, nothing. A separate thread samples the work's counters a few
//! times a second, so the work never waits for the display.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chronofs::progress::{Progress, ProgressView};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not at all (`--quiet`, or stderr is not a terminal).
    Off,
    /// A bar on stderr, redrawn in place.
    Terminal,
    /// A JSON object per second, and one at the end, on stdout.
    Json,
}

impl Mode {
    /// JSON lines with `json`; nothing when `quiet` or stderr is not a terminal; else a bar.
    pub fn choose(json: bool, quiet: bool) -> Mode {
        if json {
            Mode::Json
        } else if quiet || !std::io::stderr().is_terminal() {
            Mode::Off
        } else {
            Mode::Terminal
        }
    }
}

/// What the counters count, for the words of the display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// A backup: files read or reused; the total from the parent snapshot.
    Backup,
    /// A restore: files written; the total from the snapshot's trees.
    Restore,
    /// `check --read-data`: packs read and verified.
    Check,
    /// `prune`: its phases, each with its own total.
    Prune,
    /// `copy`: snapshots handled of those chosen, and the stored bytes copied.
    Copy,
}

impl Task {
    fn verb(self) -> &'static str {
        match self {
            Task::Backup => "backing up",
            Task::Restore => "restoring",
            Task::Check => "reading data",
            Task::Prune => "pruning",
            Task::Copy => "copying",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Task::Backup | Task::Restore => "files",
            Task::Check => "packs",
            Task::Prune => "items",
            Task::Copy => "snapshots",
        }
    }
}

/// Runs `work` while `progress` of `task` is shown in `mode`, and stops the display when the
/// work ends, however it ends.
pub fn showing<T>(mode: Mode, task: Task, progress: &Arc<Progress>, work: impl FnOnce() -> T) -> T {
    let display = Display::start(mode, task, Arc::clone(progress));
    let out = work();
    if let Some(d) = display {
        d.finish();
    }
    out
}

/// A running display; [`Display::finish`] stops it.
struct Display {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Display {
    /// Starts showing `progress` of `task` in `mode`; `None` for [`Mode::Off`].
    fn start(mode: Mode, task: Task, progress: Arc<Progress>) -> Option<Display> {
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
                let mut bar = (mode == Mode::Terminal).then(|| Bar::new(task));
                loop {
                    let stopped = !matches!(rx.recv_timeout(every), Err(RecvTimeoutError::Timeout));
                    let v = progress.view();
                    match &mut bar {
                        Some(b) => b.show(&v),
                        // A line a second, and one when the work ends: a script always
                        // sees the final counts, however quick the work.
                        None => {
                            let _ = outln!("{}", json_line(&v, started.elapsed()));
                        }
                    }
                    if stopped {
                        break;
                    }
                }
                if let Some(b) = bar {
                    b.finish();
                }
            })
            .ok()?;
        Some(Display { stop, thread })
    }

    /// Stops the display (a bar is left showing its final state).
    fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// The terminal form: a bar once the total is known, a spinner before.
struct Bar {
    bar: ProgressBar,
    task: Task,
    layout: Layout,
    phase: Option<&'static str>,
}

/// What the bar measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// No total known yet: a spinner and what is done.
    Spinner,
    /// Bytes of a known total.
    Bytes,
    /// Items (snapshots, files, packs) of a known number, when bytes are not counted.
    Items,
}

impl Layout {
    fn of(v: &ProgressView) -> Layout {
        if v.expected_bytes > 0 {
            Layout::Bytes
        } else if v.expected_files > 0 {
            Layout::Items
        } else {
            Layout::Spinner
        }
    }

    fn template(self) -> &'static str {
        match self {
            Layout::Spinner => WITHOUT_TOTAL,
            Layout::Bytes => WITH_TOTAL,
            Layout::Items => WITH_COUNT,
        }
    }
}

impl Bar {
    fn new(task: Task) -> Bar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(style(Layout::Spinner));
        bar.set_prefix(task.verb());
        Bar {
            bar,
            task,
            layout: Layout::Spinner,
            phase: None,
        }
    }

    fn show(&mut self, v: &ProgressView) {
        if v.phase != self.phase {
            // A new phase: its own elapsed time, rate and ETA.
            self.phase = v.phase;
            self.bar.reset();
            self.bar.set_prefix(match v.phase {
                Some(p) => format!("{}: {p}", self.task.verb()),
                None => self.task.verb().to_string(),
            });
        }
        let layout = Layout::of(v);
        if layout != self.layout {
            self.bar.set_style(style(layout));
            self.layout = layout;
        }
        match layout {
            Layout::Bytes => {
                self.bar.set_length(v.expected_bytes);
                self.bar.set_position(v.bytes_done.min(v.expected_bytes));
            }
            Layout::Items => {
                self.bar.set_length(v.expected_files);
                self.bar.set_position(v.files_done.min(v.expected_files));
            }
            Layout::Spinner => {
                self.bar.set_position(v.bytes_done);
                self.bar.tick();
            }
        }
        self.bar.set_message(message(v, self.task));
    }

    fn finish(self) {
        // Left as it is (`finish` would fill the bar, even for a command that failed).
        self.bar.abandon();
        // indicatif leaves the cursor at the end of the bar: what is printed next goes below.
        eprintln!();
    }
}

/// The bar's layout with a total: the bar, done of total, percentage, rate and ETA.
const WITH_TOTAL: &str = "{prefix} [{elapsed_precise}] [{bar:24}] {bytes}/{total_bytes} \
                          ({percent}%) {binary_bytes_per_sec}, ETA {eta} {wide_msg}";
/// The layout for a number of items: the bar, done of total, percentage and ETA.
const WITH_COUNT: &str = "{prefix} [{elapsed_precise}] [{bar:24}] {pos}/{len} ({percent}%), \
                          ETA {eta} {wide_msg}";
/// The layout until the total is known: what is done so far, and the rate.
const WITHOUT_TOTAL: &str = "{prefix} [{elapsed_precise}] {spinner} {bytes} (no total yet) \
                             {binary_bytes_per_sec} {wide_msg}";

fn style(layout: Layout) -> ProgressStyle {
    ProgressStyle::with_template(layout.template())
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The words after the bar: files (or packs) done, of how many if known, errors, and the
/// file being read.
fn message(v: &ProgressView, task: Task) -> String {
    if Layout::of(v) == Layout::Items {
        // The bar counts them; then what else is counted, and what is being worked on.
        let mut parts = Vec::new();
        if task == Task::Copy {
            parts.push(format!("{} copied", super::ui::size(v.bytes_done)));
        }
        if v.errors > 0 {
            parts.push(format!("{} errors", v.errors));
        }
        let mut m = parts.join(", ");
        if let Some(c) = &v.current {
            m += &format!("  {}", c.display());
        }
        return m;
    }
    let mut m = format!("{} {}", v.files_done, task.unit());
    if v.scanning {
        m = format!(
            "{m} (scanning for the total: {} files, {} so far)",
            v.scanned_files,
            super::ui::size(v.scanned_bytes)
        );
    }
    if v.expected_files > 0 {
        m = format!("{} of {} {}", v.files_done, v.expected_files, task.unit());
    }
    if v.errors > 0 {
        m += &format!(", {} errors", v.errors);
    }
    if let Some(c) = &v.current {
        m += &format!("  {}", c.display());
    }
    m
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
            ..ProgressView::default()
        }
    }

    #[test]
    fn the_message_names_counts_errors_and_the_current_file() {
        assert_eq!(
            message(&view(), Task::Backup),
            "10 of 40 files, 1 errors  /home/alice/a-file-with-a-long-name"
        );
        let mut v = view();
        v.expected_files = 0;
        v.errors = 0;
        v.current = None;
        assert_eq!(message(&v, Task::Check), "10 packs");
        v.expected_files = 4;
        v.expected_bytes = 0;
        assert_eq!(message(&v, Task::Prune), "");
        v.current = Some("2026-12-01T10:00:00".into());
        assert_eq!(
            message(&v, Task::Copy),
            "50.0 MiB copied  2026-12-01T10:00:00"
        );
        v.expected_files = 0;
        v.current = None;
        v.expected_bytes = 0;
        v.scanning = true;
        v.scanned_files = 7;
        v.scanned_bytes = 3 << 20;
        assert_eq!(
            message(&v, Task::Backup),
            "10 files (scanning for the total: 7 files, 3.0 MiB so far)"
        );
    }

    #[test]
    fn both_layouts_parse() {
        // One that did not would fall back to indicatif's default bar, silently.
        for t in [WITH_TOTAL, WITH_COUNT, WITHOUT_TOTAL] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn unknown_totals_give_no_eta() {
        let mut v = view();
        assert_eq!(eta_secs(&v, Duration::from_secs(10)), Some(10));
        v.expected_bytes = 0;
        v.expected_files = 0;
        assert_eq!(eta_secs(&v, Duration::from_secs(10)), None);
        let j = json_line(&v, Duration::from_secs(3));
        assert_eq!(j["total_bytes"], serde_json::Value::Null);
        assert_eq!(j["files_done"], 10);
        assert_eq!(j["message_type"], "status");
    }
}
