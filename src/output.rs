//! Part of the binary: turns copy events into what the user sees. Human lines on stdout
//! (progress bars on stderr when it is a terminal), or one JSON object per line (`--json`),
//! or nothing but errors (`-q`).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cnab_relocate::engine::{BlobOutcome, Event};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The outcome of a command, as the `--json` summary names it.
pub fn outcome(exit_code: u8, done: &'static str) -> &'static str {
    match exit_code {
        0 => done,
        1 => "failed",
        2 => "input_error",
        _ => "interrupted",
    }
}

/// One problem of a failed command: the summary lists every one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// What went wrong, as the error line says it.
    pub message: String,
    /// The bundle image it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Where that image was going.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relocated: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            image: None,
            relocated: None,
        }
    }
}

/// The last `--json` line of every command, whatever its outcome: `event`, `command`,
/// `outcome`, `success`, `exit_code`, `error` (the whole message, or null), `errors` (each
/// problem) and `seconds`, then what the command adds (`fields`).
pub fn summary(
    command: &str,
    exit_code: u8,
    done: &'static str,
    error: Option<String>,
    problems: &[Problem],
    seconds: f64,
    fields: serde_json::Value,
) -> serde_json::Value {
    let mut summary = serde_json::json!({
        "event": "summary",
        "command": command,
        "outcome": outcome(exit_code, done),
        "success": exit_code == 0,
        "exit_code": exit_code,
        "error": error,
        "errors": problems,
        "seconds": (seconds * 1000.0).round() / 1000.0,
    });
    if let (Some(all), serde_json::Value::Object(extra)) = (summary.as_object_mut(), fields) {
        all.extend(extra);
    }
    summary
}

/// Prints one `--json` line.
pub fn print_json(value: &serde_json::Value) {
    let _ = writeln!(std::io::stdout().lock(), "{value}");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Human,
    Json,
    Quiet,
}

pub struct Output {
    mode: Mode,
    started: Instant,
    /// Whether progress bars may be drawn (a person at a terminal).
    show_bars: bool,
    /// Drawn from the first transfer on: an error before any shows no bar.
    bars: std::sync::OnceLock<Bars>,
    /// Lines held back until the run is under way (`None` once it is): an input error found
    /// on the way (exit 2) is then all the user reads.
    held: Mutex<Option<Vec<String>>>,
}

struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    blobs: Mutex<HashMap<String, ProgressBar>>,
}

impl Output {
    pub fn new(mode: Mode) -> Arc<Output> {
        Arc::new(Output {
            mode,
            started: Instant::now(),
            show_bars: mode == Mode::Human && std::io::stderr().is_terminal(),
            bars: std::sync::OnceLock::new(),
            held: Mutex::new(Some(Vec::new())),
        })
    }

    fn start_bars() -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        total.set_prefix("total");
        Bars {
            multi,
            total,
            blobs: Mutex::new(HashMap::new()),
        }
    }

    /// A line shown once the run is under way ([`commit`](Self::commit)), or never.
    pub fn later(&self, text: &str) {
        match self.held.lock().expect("held lines lock").as_mut() {
            Some(held) => held.push(text.to_string()),
            None => self.line(text),
        }
    }

    /// The run is under way: the lines held back are shown, and every line from now on.
    pub fn commit(&self) {
        let held = self.held.lock().expect("held lines lock").take();
        for text in held.into_iter().flatten() {
            self.line(&text);
        }
    }

    /// A line for the user (above the bars, if any).
    pub fn line(&self, text: &str) {
        if self.mode != Mode::Human {
            return;
        }
        let text = &*crate::terminal::escape_controls(text);
        match self.bars.get() {
            Some(b) => {
                let _ = b.multi.println(text);
            }
            None => {
                let _ = writeln!(std::io::stdout().lock(), "{text}");
            }
        }
    }

    pub fn json(&self, value: &serde_json::Value) {
        if self.mode == Mode::Json {
            print_json(value);
        }
    }

    pub fn is_json(&self) -> bool {
        self.mode == Mode::Json
    }

    /// A warning (or a note): on standard error, or a `warning` event with `--json`; nothing
    /// with `-q`.
    pub fn warn(&self, text: &str) {
        match self.mode {
            Mode::Json => {
                let (event, message) = match text.split_once(": ") {
                    Some(("note", rest)) => ("note", rest),
                    Some(("warning", rest)) => ("warning", rest),
                    _ => ("warning", text),
                };
                print_json(&serde_json::json!({"event": event, "message": message}));
            }
            Mode::Human => eprintln!("{}", crate::terminal::escape_controls(text)),
            Mode::Quiet => {}
        }
    }

    /// Failures are not printed as they happen: the final error lists every one of them.
    pub fn event(&self, event: &Event) {
        if self.mode == Mode::Json {
            if !matches!(event, Event::BlobProgress { .. }) {
                self.json(&serde_json::to_value(event).expect("events serialise"));
            }
            return;
        }
        match event {
            // found while resolving, before the images are checked against each other
            Event::ImageResolved { .. } | Event::ImageAlreadyPresent { .. } | Event::ImageFailed { .. } => {}
            _ => self.commit(),
        }
        self.progress(event);
        match event {
            Event::ImageCopied {
                image,
                relocated,
                digest,
                stats,
            } => {
                let shared = match stats.blobs_shared {
                    0 => String::new(),
                    n => format!(", {n} placed by an earlier image"),
                };
                self.line(&format!(
                    "copied  {image} → {relocated} {digest}: {} sent, {} blobs uploaded, {} mounted, {} already there{shared}",
                    human_bytes(stats.bytes_sent),
                    stats.blobs_uploaded,
                    stats.blobs_mounted,
                    stats.blobs_present
                ))
            }
            Event::ImageAlreadyPresent {
                image,
                relocated,
                digest,
            } => self.later(&format!(
                "present {image} → {relocated} {digest}: already there, nothing sent"
            )),
            Event::ReferrerCopied {
                image, kind, relocated, ..
            } => self.line(&format!("copied  {image}: its {} → {relocated}", kind.as_str())),
            _ => {}
        }
    }

    fn progress(&self, event: &Event) {
        if !self.show_bars {
            return;
        }
        let b = self.bars.get_or_init(Output::start_bars);
        match event {
            Event::BlobStarted { digest, size, .. } => {
                b.total.inc_length(*size);
                let mut blobs = b.blobs.lock().expect("bars lock");
                // one blob sent to several repositories at once: one bar for all the copies
                if let Some(bar) = blobs.get(digest) {
                    bar.inc_length(*size);
                    return;
                }
                let bar = b.multi.add(ProgressBar::new(*size));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(short(digest).to_string());
                blobs.insert(digest.clone(), bar);
            }
            Event::BlobProgress { digest, bytes } => {
                b.total.inc(*bytes);
                if let Some(bar) = b.blobs.lock().expect("bars lock").get(digest) {
                    bar.inc(*bytes);
                }
            }
            Event::BlobDone { digest, outcome, .. } => {
                if let Some(bar) = b.blobs.lock().expect("bars lock").remove(digest) {
                    bar.finish_and_clear();
                    b.multi.remove(&bar);
                }
                if !matches!(outcome, BlobOutcome::Uploaded { .. }) {
                    b.total.set_message(format!("{} reused", short(digest)));
                }
            }
            _ => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = self.bars.get() {
            for bar in b.blobs.lock().expect("bars lock").drain().map(|(_, bar)| bar) {
                bar.finish_and_clear();
            }
            b.total.finish_and_clear();
        }
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..hex.len().min(12)]
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
