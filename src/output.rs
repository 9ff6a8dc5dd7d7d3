//! Part of the binary: turns copy events into what the user sees. Human lines on stdout
//! (progress bars on stderr when it is a terminal), or one JSON object per line (`--json`),
//! or nothing but errors (`-q`).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cnab_relocate::engine::Event;
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
    /// The width of standard output when it is a terminal: no line is wider.
    stdout_width: Option<usize>,
    /// The width of standard error, where the bars are drawn.
    stderr_width: usize,
    /// Each target repository's image, as the bundle names it: what a blob's bar is called.
    names: Mutex<HashMap<String, String>>,
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
            stdout_width: std::io::stdout().is_terminal().then(|| width(&console::Term::stdout())),
            stderr_width: width(&console::Term::stderr()),
            names: Mutex::new(HashMap::new()),
        })
    }

    /// The width lines are fitted to: the terminal they go to, if they go to one.
    fn line_width(&self) -> Option<usize> {
        match self.bars.get() {
            Some(_) => Some(self.stderr_width),
            None => self.stdout_width,
        }
    }

    fn start_bars(width: usize, target: ProgressDrawTarget) -> Bars {
        let multi = MultiProgress::with_draw_target(target);
        let total = multi.add(ProgressBar::new(0));
        // wide parts take what the fixed parts leave; a narrow terminal gets fewer parts
        let template = match width {
            0..60 => "{wide_bar} {percent:>3}%",
            _ => "[{wide_bar}] {binary_bytes:>10}/{binary_total_bytes:<10} {binary_bytes_per_sec:>12}",
        };
        total.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        Bars {
            multi,
            total,
            blobs: Mutex::new(HashMap::new()),
        }
    }

    /// A blob's bar: its image as `repository:tag` (the registry host left out, the middle cut
    /// to fit), then the blob's first hex digits.
    fn blob_label(&self, image: &str, digest: &str) -> String {
        let name = match image.split_once('/') {
            Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
            _ => image,
        };
        let name = crate::terminal::escape_controls(&short_digests(name)).into_owned();
        // what the template leaves the message, less the hex suffix
        let fixed = if self.stderr_width < 60 { 7 } else { 37 };
        let room = self.stderr_width.saturating_sub(fixed + 7).max(8);
        let hex = short(digest);
        format!("{} {}", elide_middle(&name, room), &hex[..hex.len().min(6)])
    }

    fn blob_style(&self) -> ProgressStyle {
        let template = match self.stderr_width {
            0..60 => "  {wide_msg} {percent:>3}%",
            _ => "  {wide_msg} {binary_bytes:>10}/{binary_total_bytes:<10} {bar:12}",
        };
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> ")
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
        let text = crate::terminal::escape_controls(text);
        let text = &*match self.line_width() {
            Some(width) => fit(&text, width),
            None => text.into_owned(),
        };
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

    pub fn mode(&self) -> Mode {
        self.mode
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
            Mode::Human => crate::terminal::warning(text),
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
            Event::ImageResolved { image, relocated, .. } => {
                let mut names = self.names.lock().expect("names lock");
                let name = names
                    .entry(repository_of(relocated).to_string())
                    .or_insert_with(|| image.clone());
                // a repository's bars are named by a tag rather than a digest, when it has one
                if name.contains('@') && !image.contains('@') {
                    *name = image.clone();
                }
            }
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
                let sent = human_bytes(stats.bytes_sent);
                let (up, mounted, present) = (stats.blobs_uploaded, stats.blobs_mounted, stats.blobs_present);
                let what = [
                    format!("{sent} sent, {up} blobs uploaded, {mounted} mounted, {present} already there{shared}"),
                    format!("{sent} sent, {up} up, {mounted} mounted, {present} there"),
                ];
                self.line(&self.image_line("copied ", image, relocated, digest, &what))
            }
            Event::ImageAlreadyPresent {
                image,
                relocated,
                digest,
            } => {
                let what = ["already there, nothing sent".to_string(), "already there".to_string()];
                self.later(&self.image_line("present", image, relocated, digest, &what))
            }
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
        if !matches!(event, Event::BlobStarted { .. }) && self.bars.get().is_none() {
            return;
        }
        let b = self
            .bars
            .get_or_init(|| Output::start_bars(self.stderr_width, ProgressDrawTarget::stderr()));
        match event {
            Event::BlobStarted {
                digest,
                size,
                repository,
            } => {
                b.total.inc_length(*size);
                let mut blobs = b.blobs.lock().expect("bars lock");
                // one blob sent to several repositories at once: one bar for all the copies
                if let Some(bar) = blobs.get(digest) {
                    bar.inc_length(*size);
                    return;
                }
                let bar = b.multi.add(ProgressBar::new(*size));
                bar.set_style(self.blob_style());
                let name = self.names.lock().expect("names lock").get(repository).cloned();
                bar.set_message(self.blob_label(name.as_deref().unwrap_or(repository), digest));
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
                let _ = outcome;
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

impl Output {
    /// `copied  IMAGE → RELOCATED DIGEST: WHAT`, whole into a pipe or a file (`what[0]`); on a
    /// terminal, to its width: `what[1]`, hex cut to a short suffix, the digest dropped when
    /// the names would have too little room, then the names cut in the middle.
    fn image_line(&self, verb: &str, image: &str, relocated: &str, digest: &str, what: &[String; 2]) -> String {
        let Some(width) = self.line_width() else {
            return format!("{verb} {image} → {relocated} {digest}: {}", what[0]);
        };
        let (image, relocated, what) = (short_digests(image), short_digests(relocated), &what[1]);
        let mut digest = format!(" @{}", short(digest));
        let fixed = |digest: &str| format!("{verb}  → {digest}: {what}").chars().count();
        if width < fixed(&digest) + 40 || relocated.contains('@') {
            digest.clear();
        }
        let room = width.saturating_sub(fixed(&digest));
        let (image_len, relocated_len) = (image.chars().count(), relocated.chars().count());
        let (image, relocated) = if image_len + relocated_len <= room {
            (image, relocated)
        } else {
            // the relocated name is the longer one: it gives up more
            let for_image = (room * 2 / 5).max(8).min(image_len);
            let for_relocated = room.saturating_sub(for_image).max(8);
            (elide_middle(&image, for_image), elide_middle(&relocated, for_relocated))
        };
        fit(&format!("{verb} {image} → {relocated}{digest}: {what}"), width)
    }
}

/// The widest a terminal is taken to be when it says nothing (a new pseudo-terminal says 0).
fn width(term: &console::Term) -> usize {
    match term.size_checked() {
        Some((_, cols)) if cols > 0 => usize::from(cols),
        _ => 80,
    }
}

/// The repository of a reference (`host/path:tag` → `path`), as the blob events name it.
fn repository_of(reference: &str) -> &str {
    let path = reference.split_once('/').map_or(reference, |(_, p)| p);
    let path = path.split_once('@').map_or(path, |(p, _)| p);
    match path.rsplit_once(':') {
        Some((p, tag)) if !tag.contains('/') => p,
        _ => path,
    }
}

/// The first 12 hex digits of a digest.
fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..hex.len().min(12)]
}

/// `text` with every run of 32 or more hex digits (digests, duffle's MD5s) cut to its first 8:
/// names stay readable, hex is left as a suffix.
fn short_digests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 32 {
            out.push_str(&run[..8]);
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// `text` at most `max` characters long, its middle replaced by `…` when it is longer.
fn elide_middle(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    if max < 2 {
        return "…".chars().take(max).collect();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    chars[..head]
        .iter()
        .chain(std::iter::once(&'…'))
        .chain(&chars[chars.len() - tail..])
        .collect()
}

/// `text` cut to `width` characters, the last being `…` when it was longer.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A line for standard error, fitted to it when it is a terminal.
pub fn fit_to_stderr(text: &str) -> String {
    match std::io::stderr().is_terminal() {
        true => fit(text, width(&console::Term::stderr())),
        false => text.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal of `width` columns that keeps what is drawn, line by line.
    #[derive(Debug)]
    struct Screen {
        width: u16,
        drawn: Arc<Mutex<Vec<String>>>,
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            self.width
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            // indicatif pads each line to the width with a separate write of spaces
            if !s.trim().is_empty() {
                self.drawn.lock().unwrap().push(s.to_string());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn human(width: usize) -> Output {
        Output {
            mode: Mode::Human,
            started: Instant::now(),
            show_bars: true,
            bars: std::sync::OnceLock::new(),
            held: Mutex::new(None),
            stdout_width: Some(width),
            stderr_width: width,
            names: Mutex::new(HashMap::new()),
        }
    }

    const IMAGE: &str = "registry.example.com/some-team/a-rather-long-application-name:1.2.3-beta.4";
    const RELOCATED: &str =
        "registry.internal.acme.com/smith/some-team-a-rather-long-application-name-6731e0d41b7fd5a24e14c853af93bd81:1.2.3-beta.4";
    const DIGEST: &str = "sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4";

    #[test]
    fn bars_name_images_and_no_line_is_wider_than_the_terminal() {
        for width in [30u16, 50, 60, 80, 132] {
            let out = human(usize::from(width));
            let drawn = Arc::new(Mutex::new(Vec::new()));
            let target = ProgressDrawTarget::term_like(Box::new(Screen {
                width,
                drawn: drawn.clone(),
            }));
            let _ = out.bars.set(Output::start_bars(usize::from(width), target));
            out.event(&Event::ImageResolved {
                image: IMAGE.into(),
                relocated: RELOCATED.into(),
                digest: DIGEST.into(),
                blobs: 1,
                bytes: 1 << 20,
            });
            let layer = "sha256:2db29710123e3e53a794f2694094b9b4338aa9ee5c40b930cb8063a1be392c54";
            out.event(&Event::BlobStarted {
                digest: layer.into(),
                repository: repository_of(RELOCATED).into(),
                size: 1 << 20,
            });
            out.event(&Event::BlobProgress {
                digest: layer.into(),
                bytes: 1 << 19,
            });
            let bars = out.bars.get().unwrap();
            bars.total.tick();
            for bar in bars.blobs.lock().unwrap().values() {
                bar.tick();
            }
            out.line(&out.image_line(
                "copied ",
                IMAGE,
                RELOCATED,
                DIGEST,
                &["long".into(), "1.0 MiB sent, 1 up, 0 mounted, 0 there".into()],
            ));
            let drawn = drawn.lock().unwrap().clone();
            assert!(
                drawn.iter().any(|l| l.contains('[') || l.contains('%')),
                "{width}: a bar: {drawn:?}"
            );
            assert!(
                drawn.iter().any(|l| l.contains("beta.4 2db297")),
                "{width}: the bar names the image by repository:tag, hex as a suffix: {drawn:?}"
            );
            if width >= 80 {
                assert!(
                    drawn.iter().any(|l| l.contains("some-team/a-rather")),
                    "{width}: {drawn:?}"
                );
            }
            for line in &drawn {
                let shown = console::strip_ansi_codes(line);
                assert!(
                    shown.chars().count() <= usize::from(width),
                    "{width}: {shown:?} is wider"
                );
                assert!(!has_long_hex(&shown), "{width}: hex only as a short suffix: {shown:?}");
            }
            assert!(drawn.iter().any(|l| l.starts_with("copied ")), "{drawn:?}");
        }
    }

    fn has_long_hex(text: &str) -> bool {
        text.split(|c: char| !c.is_ascii_hexdigit()).any(|run| run.len() >= 16)
    }

    #[test]
    fn image_lines_fit_a_terminal_and_stay_whole_elsewhere() {
        for width in [40usize, 60, 80, 100, 132, 200] {
            let out = human(width);
            let line = out.image_line(
                "copied ",
                IMAGE,
                RELOCATED,
                DIGEST,
                &["long".into(), "1 MiB sent".into()],
            );
            assert!(line.chars().count() <= width, "{width}: {line}");
            assert!(line.starts_with("copied  "), "{line}");
            assert!(!has_long_hex(&line), "{line}");
        }
        let wide = human(400).image_line(
            "copied ",
            IMAGE,
            RELOCATED,
            DIGEST,
            &["long".into(), "1 MiB sent".into()],
        );
        assert!(wide.contains(IMAGE) && wide.contains("@f54a58bc1aac"), "{wide}");
        let mut piped = human(80);
        piped.stdout_width = None;
        piped.show_bars = false;
        let whole = piped.image_line("copied ", IMAGE, RELOCATED, DIGEST, &["long".into(), "short".into()]);
        assert_eq!(whole, format!("copied  {IMAGE} → {RELOCATED} {DIGEST}: long"));
    }

    #[test]
    fn names_and_hex() {
        assert_eq!(
            repository_of(RELOCATED),
            "smith/some-team-a-rather-long-application-name-6731e0d41b7fd5a24e14c853af93bd81"
        );
        assert_eq!(repository_of("localhost:5000/a/b@sha256:00"), "a/b");
        assert_eq!(short_digests("x-6731e0d41b7fd5a24e14c853af93bd81:1"), "x-6731e0d4…:1");
        assert_eq!(elide_middle("abcdefghij", 5), "ab…ij");
        assert_eq!(fit("abcdef", 4), "abc…");
    }
}
