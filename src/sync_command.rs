//! `cnab-relocate sync CONFIG.yaml`: the command line's half (options, what is printed, the
//! exit status). The run itself is the library's [`SyncRun`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cnab_relocate::engine::Event;
use cnab_relocate::sync::config::NoticeLevel;
use cnab_relocate::{Error, SyncEvent, SyncReport, SyncRun};

use crate::output::{self, human_bytes, Mode, Output};
use crate::{creds, init_logging, interrupted, options, runtime, terminal, OutputArgs, RegistryArgs, TransferArgs};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// A dregsy configuration file: tasks, each with a source, a target and mappings.
    #[arg(value_name = "CONFIG.yaml")]
    config: PathBuf,

    /// Run only the tasks whose name EXPR (a regular expression) matches as a whole;
    /// repeatable (also spelt --run, as dregsy's -run). The whole file is checked either way.
    #[arg(long = "task", alias = "run", value_name = "EXPR")]
    tasks: Vec<String>,

    /// Plan only: list the sources and print each pair as "TASK: SOURCE -> TARGET"; nothing
    /// is written anywhere.
    #[arg(long)]
    dry_run: bool,

    #[command(flatten)]
    registry: RegistryArgs,

    #[command(flatten)]
    transfers: TransferArgs,

    #[command(flatten)]
    say: OutputArgs,
}

pub fn run_sync(args: SyncArgs) -> ExitCode {
    init_logging(args.say.quiet, args.say.verbose);
    let out = Output::new(args.say.mode());
    // a named auth file that cannot be read is an error, as for relocation, not anonymity
    let given = creds::Given {
        authfile: args.registry.authfile.as_ref(),
        src: None,
        dest: None,
        destination: None,
        password_stdin: false,
    };
    let credentials = match creds::options(given, std::io::empty()) {
        Ok(c) => c,
        Err(message) => return finished(&out, None, Some(&Error::Usage(message)), args.dry_run),
    };
    let verbose = args.say.verbose > 0;
    let dry_run = args.dry_run;
    let planned = SyncRun::new(&args.config)
        .tasks(args.tasks.clone())
        .dry_run(dry_run)
        .options(options(
            &args.registry,
            args.transfers.concurrency,
            !args.transfers.no_referrers,
            credentials,
        ))
        .on_event({
            let out = out.clone();
            move |e: &SyncEvent| say(&out, e, verbose, dry_run)
        })
        .plan();
    let planned = match planned {
        Ok(p) => p,
        Err(e) => return finished(&out, None, Some(&e), dry_run),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(planned.run_until(interrupted()));
    out.finish();
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(report) => finished(&out, Some(&report), None, dry_run),
        Err(e) => finished(&out, None, Some(&e), dry_run),
    }
}

/// Prints one event of the run as the mode wants it.
fn say(out: &Output, event: &SyncEvent, verbose: bool, dry_run: bool) {
    match event {
        SyncEvent::Notice(n) => match n.level {
            NoticeLevel::Warning => out.warn(&format!("warning: {}", n.message)),
            NoticeLevel::Verbose if verbose => out.warn(&format!("note: {}", n.message)),
            NoticeLevel::Verbose => {}
        },
        SyncEvent::Planned { task, pair } => {
            let mut json = serde_json::json!({
                "event": "sync_planned",
                "task": task,
                "source": pair.source_reference,
                "target": pair.target_reference,
            });
            if let Some(platform) = &pair.platform {
                json["platform"] = platform.to_string().into();
            }
            out.json(&json);
            if dry_run && !out.is_json() {
                // exactly one line per pair, never fitted to a terminal: scripts read these
                let line = pair.dry_run_line(task);
                let _ = writeln!(std::io::stdout().lock(), "{}", terminal::escape_controls(&line));
            }
        }
        // in human mode, said with every other failure at the end
        SyncEvent::TaskFailed { task, error } => {
            out.json(&serde_json::json!({"event": "task_failed", "task": task, "error": error}))
        }
        SyncEvent::PairFailed { task, pair, error } => {
            out.json(&serde_json::json!({
                "event": "image_failed",
                "task": task,
                "image": pair.source_reference,
                "relocated": pair.target_reference,
                "error": error,
            }));
            out.line(&format!("{task}: {pair}: failed: {error}"));
        }
        SyncEvent::Copy { task, event } => {
            if out.is_json() {
                if !matches!(event, Event::BlobProgress { .. }) {
                    let mut json = serde_json::to_value(event).expect("events serialise");
                    json["task"] = task.as_str().into();
                    out.json(&json);
                }
                return;
            }
            match event {
                Event::ImageCopied {
                    image,
                    relocated,
                    digest,
                    stats,
                } => out.line(&format!(
                    "{task}: {image} -> {relocated}: copied {digest}, {} sent ({} blobs uploaded, {} mounted, {} there)",
                    human_bytes(stats.bytes_sent),
                    stats.blobs_uploaded,
                    stats.blobs_mounted,
                    stats.blobs_present + stats.blobs_shared
                )),
                Event::ImageAlreadyPresent {
                    image,
                    relocated,
                    digest,
                } => out.line(&format!("{task}: {image} -> {relocated}: already present {digest}")),
                Event::ImageFailed {
                    image,
                    relocated,
                    error,
                } => out.line(&format!("{task}: {image} -> {relocated}: failed: {error}")),
                Event::ReferrerCopied {
                    image, kind, relocated, ..
                } => out.line(&format!("{task}: {image}: its {} -> {relocated}", kind.as_str())),
                // progress bars, named by the images as they resolve
                Event::ImageResolved { .. }
                | Event::BlobStarted { .. }
                | Event::BlobProgress { .. }
                | Event::BlobDone { .. } => out.event(event),
                _ => {}
            }
        }
        _ => {}
    }
}

/// Ends the run: the summary (a line, or the `--json` summary), every failure on standard
/// error, and the exit status (0 all done, 1 something failed, 2 bad input).
fn finished(out: &Output, report: Option<&SyncReport>, error: Option<&Error>, dry_run: bool) -> ExitCode {
    let code = match (error, report) {
        (Some(e), _) => e.exit_code(),
        (None, Some(r)) if r.succeeded() => 0,
        _ => 1,
    };
    let failures: Vec<output::Problem> = match (error, report) {
        (Some(e), _) => vec![output::Problem::new(e.to_string())],
        (None, Some(r)) => r
            .failures()
            .map(|(task, pair, message)| output::Problem {
                // a refused plan names its task already
                message: match message.starts_with(&format!("task '{task}'")) {
                    true => message.to_string(),
                    false => format!("task '{task}': {message}"),
                },
                image: pair.map(|p| p.source_reference.clone()),
                relocated: pair.map(|p| p.target_reference.clone()),
            })
            .collect(),
        _ => Vec::new(),
    };
    let message = match (error, code) {
        (Some(e), _) => Some(e.to_string()),
        (None, 0) => None,
        (None, _) => Some(format!("sync failed: {} problem(s)", failures.len())),
    };
    let mut summary = output::summary(
        "sync",
        code,
        "synced",
        message.clone(),
        &failures,
        out.elapsed_secs(),
        serde_json::json!({
            "tasks": report.map_or(0, |r| r.tasks.len()),
            "pairs": report.map_or(0, SyncReport::pair_count),
            "copied": report.map_or(0, SyncReport::copied),
            "already_present": report.map_or(0, SyncReport::already_present),
            "failed": report.map_or(0, |r| r.failures().filter(|(_, p, _)| p.is_some()).count()),
            "tasks_failed": report.map_or(0, |r| r.failures().filter(|(_, p, _)| p.is_none()).count()),
            "bytes_sent": report.map_or(0, |r| r.bytes_sent),
            "blobs_uploaded": report.map_or(0, |r| r.blobs_uploaded),
            "blobs_mounted": report.map_or(0, |r| r.blobs_mounted),
        }),
    );
    if dry_run && code == 0 {
        summary["outcome"] = "dry_run".into();
    }
    out.json(&summary);
    if let Some(r) = report.filter(|_| out.mode() == Mode::Human && !dry_run) {
        let seconds = out.elapsed_secs();
        out.line(&format!(
            "synced {} task(s): {} pair(s), {} copied, {} already present, {} failed; {} blob(s) sent, {} mounted; {} in {seconds:.1} s",
            r.tasks.len(),
            r.pair_count(),
            r.copied(),
            r.already_present(),
            r.failures().filter(|(_, p, _)| p.is_some()).count(),
            r.blobs_uploaded,
            r.blobs_mounted,
            human_bytes(r.bytes_sent),
        ));
    }
    if code != 0 {
        for f in failures.iter().filter(|_| error.is_none()) {
            let pair = match (&f.image, &f.relocated) {
                (Some(s), Some(t)) => format!("{s} -> {t}: "),
                _ => String::new(),
            };
            terminal::error(&format!("{pair}{}", f.message));
        }
        if let Some(m) = &message {
            terminal::error(m);
        }
    }
    ExitCode::from(code)
}
