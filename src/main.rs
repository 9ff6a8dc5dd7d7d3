//! The `cnab-relocate` command line: argument parsing, output and exit codes. The work is in
//! the library.

mod creds;
mod output;
mod shell;
mod sync_command;
mod terminal;
mod usage;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use cnab_relocate::bundle::BundleFormat;
use cnab_relocate::engine::CopyOptions;
use cnab_relocate::mapping::RepositoryPrefix;
use cnab_relocate::registry::{CredentialOptions, RegistryOptions, RetryPolicy};
use cnab_relocate::{CopyReport, Error, Event, Export, PlannedRelocation, RelocateOptions, Relocation};
use creds::Creds;
use output::{human_bytes, Mode, Output};

const AFTER_HELP: &str = "\
Examples:
  Relocate a thin bundle (images are pulled from their registries):
    cnab-relocate forge.json -p registry.internal.acme.com/smith -m relmap.json
  Relocate a thick bundle (images are read only from the archive):
    cnab-relocate sort.tgz -p registry.gold.gwb.dia/griphook -m relmap.json
  Show where the images would go, without contacting any registry:
    cnab-relocate forge.json -p registry.internal.acme.com/smith --dry-run
  Map single references:
    cnab-relocate map -p registry.internal.acme.com/smith ubuntu:22.04 istio/proxyv2
  Pack a thin bundle and its images into a thick bundle (air-gap step one):
    cnab-relocate export forge.json -o forge.tgz

Each image goes to PREFIX/<original path, '/' replaced by '-'>-<md5 of the original name>,
keeping its tag and digest: with -p example.com/user, technosophos/helloworld:0.1.0 becomes
example.com/user/technosophos-helloworld-6731e0d41b7fd5a24e14c853af93bd81:0.1.0.

Registry credentials, first found wins (skopeo's order): --dest-creds / --src-creds; else the
--authfile (or $REGISTRY_AUTH_FILE) alone; else $XDG_RUNTIME_DIR/containers/auth.json,
~/.config/containers/auth.json (podman/skopeo login), then Docker's config.json
($DOCKER_CONFIG or ~/.docker/config.json, docker login).

Exit status: 0 success, 1 relocation failed (no mapping written), 2 usage or input error.";

/// Copy the images of a CNAB bundle into your registry, keeping every digest, and write the
/// relocation mapping (original image → relocated image) that CNAB runtimes read.
#[derive(Debug, Parser)]
#[command(
    name = "cnab-relocate",
    version,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    relocate: RelocateArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the relocated reference of each REFERENCE, one per line, as the relocation
    /// mapping would hold it. Contacts nothing.
    Map {
        /// Repository prefix the images go under, e.g. registry.internal.acme.com/smith.
        #[arg(short = 'p', long, value_name = "PREFIX")]
        repository_prefix: String,
        /// Image references as written in a bundle, e.g. ubuntu:22.04.
        #[arg(value_name = "REFERENCE", required = true)]
        references: Vec<String>,
        /// Place images by these rules first (dregsy's from/to; first match wins).
        #[arg(long, value_name = "RULES.yaml")]
        mapping_rules: Option<PathBuf>,
    },
    /// Pull every image of a thin bundle into a thick bundle (a gzipped tar of bundle.json and
    /// an OCI image layout, metadata first) that relocation, duffle and skopeo read.
    Export(ExportArgs),
    /// Mirror registries as a dregsy configuration says (SYNC.md): every task once, in file
    /// order; digests kept, blobs mounted across repositories and sent once.
    Sync(sync_command::SyncArgs),
    /// Print a completion script for SHELL (see the README for where to put it), e.g.
    /// `cnab-relocate completions bash > ~/.local/share/bash-completion/completions/cnab-relocate`.
    Completions {
        /// The shell the script is for.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g.
    /// `cnab-relocate man > ~/.local/share/man/man1/cnab-relocate.1`.
    Man,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// The thin bundle (bundle.json).
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,

    /// The thick bundle to write (name it .tgz for duffle).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: PathBuf,

    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    registry: RegistryArgs,

    #[command(flatten)]
    creds: SourceCredsArgs,

    /// Copy only the images: leave behind what refers to them (cosign signatures,
    /// attestations and SBOMs; OCI 1.1 referrers), which otherwise travel with them.
    #[arg(long)]
    no_referrers: bool,

    /// How many manifests are read at once (blobs stream into the archive one by one).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,

    #[command(flatten)]
    say: OutputArgs,
}

#[derive(Debug, Args)]
struct RelocateArgs {
    /// The bundle: a thin bundle.json (images pulled from their registries) or a thick bundle
    /// (a gzipped tar with the images inside; recognised by content, not by name).
    #[arg(value_name = "BUNDLE", required = true)]
    bundle: Option<PathBuf>,

    /// Repository prefix the images go under: a registry host with an optional path,
    /// e.g. registry.internal.acme.com/smith. Without a host, Docker Hub is meant.
    #[arg(short = 'p', long, value_name = "PREFIX", required = true)]
    repository_prefix: Option<String>,

    /// Where to write the relocation mapping (JSON: original image → relocated image).
    /// Written only when every image was copied and verified.
    #[arg(short = 'm', long, value_name = "FILE", required_unless_present = "dry_run")]
    relocation_mapping: Option<PathBuf>,

    /// Also write a copy of bundle.json naming each image by its relocated reference, with its
    /// digest as contentDigest (canonical JSON, as CNAB signs it); written only on success.
    #[arg(long, value_name = "FILE")]
    output_bundle: Option<PathBuf>,

    /// Place images by these rules first (dregsy's from/to; first match wins; duffle's
    /// mapping for the rest). Checked before any registry is contacted.
    #[arg(long, value_name = "RULES.yaml")]
    mapping_rules: Option<PathBuf>,

    /// Parse, validate and map only: contact no registry, write no file, print the mapping
    /// JSON on standard output.
    #[arg(long)]
    dry_run: bool,

    /// Accepted for scripts written for `duffle relocate`; has no effect (BUNDLE is always a
    /// file, thin or thick by its content).
    #[arg(short = 'f', long)]
    bundle_is_file: bool,

    /// Credentials for the target registry, instead of any credential file. Without
    /// :PASSWORD, see --password-stdin.
    #[arg(long, value_name = "USER[:PASSWORD]", value_parser = creds::parse)]
    dest_creds: Option<Creds>,

    #[command(flatten)]
    registry: RegistryArgs,

    #[command(flatten)]
    creds: SourceCredsArgs,

    #[command(flatten)]
    transfers: TransferArgs,

    #[command(flatten)]
    say: OutputArgs,
}

/// What travels and how many transfers run at once (relocation and sync).
#[derive(Debug, Args)]
struct TransferArgs {
    /// Copy only the images: leave behind what refers to them (cosign signatures,
    /// attestations and SBOMs; OCI 1.1 referrers), which otherwise travel with them.
    #[arg(long)]
    no_referrers: bool,

    /// How many blob transfers run at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
}

#[derive(Debug, Args)]
struct OutputArgs {
    /// Machine-readable output on standard output, for every outcome (input errors too): one
    /// JSON object per line, events then a final summary with the outcome and every error.
    #[arg(long)]
    json: bool,

    /// Print nothing on success, only errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,

    /// More output (-v: one line per registry request, with method, host:port, path, status
    /// and duration; -vv: its headers too, credentials and tokens redacted).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

impl OutputArgs {
    fn mode(&self) -> Mode {
        match (self.json, self.quiet) {
            (true, _) => Mode::Json,
            (false, true) => Mode::Quiet,
            _ => Mode::Human,
        }
    }
}

#[derive(Debug, Args)]
struct RegistryArgs {
    /// Extra PEM file of CA certificates to trust (besides the system's); repeatable.
    #[arg(long, value_name = "FILE")]
    ca_cert_path: Vec<PathBuf>,

    /// Accept any TLS certificate, and plain HTTP (unsafe: for tests and lab registries).
    #[arg(long)]
    skip_tls_verify: bool,

    /// Allow plain HTTP for this registry (HOST or HOST:PORT) when it does not speak HTTPS;
    /// repeatable. Loopback hosts (localhost, 127.0.0.0/8, ::1) are treated so anyway, as
    /// Docker does.
    #[arg(long, value_name = "HOST[:PORT]")]
    insecure_registry: Vec<String>,

    /// Seconds a request may make no progress (no connection, no byte received) before it
    /// fails and is tried again. A slow transfer that keeps moving is never cut.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,

    /// How many times a request that may heal (connection lost, 408, 429, 5xx) is tried
    /// again; the default rides out an outage of half a minute.
    #[arg(long, value_name = "N", default_value_t = 9, value_parser = clap::value_parser!(u32).range(0..=100))]
    retry_times: u32,

    /// Registry credentials in containers-auth.json form (as podman, skopeo and buildah write
    /// them); when given, no other credential file is read.
    #[arg(long, value_name = "FILE", env = "REGISTRY_AUTH_FILE")]
    authfile: Option<PathBuf>,
}

/// Credentials given on the command line for the registries images are read from
/// (relocation and export; sync takes them from each location's `auth`).
#[derive(Debug, Args)]
struct SourceCredsArgs {
    /// Credentials for the registries images are read from (a thin bundle's; one registry),
    /// instead of any credential file. Without :PASSWORD, see --password-stdin.
    #[arg(long, value_name = "USER[:PASSWORD]", value_parser = creds::parse)]
    src_creds: Option<Creds>,

    /// Read the password of --dest-creds or --src-creds USER (the one without a password)
    /// from standard input, up to its end, a trailing newline dropped.
    #[arg(long)]
    password_stdin: bool,
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let reads_stdin = match &cli.command {
        Some(Command::Export(args)) => cnab_relocate::bundle::is_stdin(&args.bundle),
        Some(_) => false,
        None => cli
            .relocate
            .bundle
            .as_deref()
            .is_some_and(cnab_relocate::bundle::is_stdin),
    };
    if reads_stdin {
        clean_up_spool_on_signal();
    }
    let code = match cli.command {
        Some(Command::Map {
            repository_prefix,
            references,
            mapping_rules,
        }) => run_map(&repository_prefix, &references, mapping_rules.as_deref()),
        Some(Command::Export(args)) => run_export(args),
        Some(Command::Sync(args)) => sync_command::run_sync(args),
        Some(Command::Completions { shell }) => {
            let mut out = std::io::stdout().lock();
            written(
                shell::completions(shell, <Cli as clap::CommandFactory>::command(), &mut out)
                    .and_then(|()| out.flush()),
            )
        }
        Some(Command::Man) => {
            let mut out = std::io::stdout().lock();
            written(shell::man(<Cli as clap::CommandFactory>::command(), &mut out).and_then(|()| out.flush()))
        }
        None => run_relocate(cli.relocate),
    };
    // threads of the run may still hold the spooled copy of standard input
    cnab_relocate::bundle::remove_spooled_input();
    code
}

/// While BUNDLE `-` is read and checked (before the run listens for signals itself), a
/// signal removes the spooled copy of standard input and ends the process as the signal
/// would; once the run listens, it stops the run instead.
fn clean_up_spool_on_signal() {
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        let signal = runtime.block_on(signalled(false));
        if !RUN_LISTENS.load(std::sync::atomic::Ordering::SeqCst) {
            cnab_relocate::bundle::remove_spooled_input();
            std::process::exit(128 + signal);
        }
    });
}

/// Whether the run listens for signals itself (then it stops cleanly on one).
static RUN_LISTENS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The command line, or the exit code of a usage error already reported. A mistyped
/// subcommand and a second BUNDLE are said plainly (clap would speak of conflicts). With
/// `--json` the error is also the summary line on standard output.
fn parse() -> Result<Cli, ExitCode> {
    use clap::error::ErrorKind;
    use clap::CommandFactory;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = Cli::try_parse_from(&args);
    let relocating = match &parsed {
        Ok(cli) => cli.command.is_none(),
        Err(e) => !matches!(
            e.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ),
    };
    let words = args.get(1..).unwrap_or_default();
    let json_summary = |message: &str| {
        if wants_json(words) {
            let (command, done) = match words.first().and_then(|w| w.to_str()) {
                Some("export") => ("export", "exported"),
                Some("sync") => ("sync", "synced"),
                _ => ("relocate", "relocated"),
            };
            output::print_json(&output::summary(
                command,
                2,
                done,
                Some(message.to_string()),
                &[output::Problem::new(message)],
                0.0,
                serde_json::json!({}),
            ));
        }
    };
    if relocating {
        let command = Cli::command();
        if let Some(mistake) = usage::mistake(&command, words) {
            json_summary(&mistake.to_string());
            terminal::error(&mistake.to_string());
            eprintln!(
                "\n{}\n\nFor more information, try '--help'.",
                command.clone().render_usage()
            );
            return Err(ExitCode::from(2));
        }
    }
    parsed.map_err(|e| {
        let code = u8::try_from(e.exit_code()).unwrap_or(2);
        if code != 0 {
            // clap's first paragraph, on one line, without its "error: "
            let rendered = e.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = message.join(" ");
            json_summary(message.strip_prefix("error: ").unwrap_or(&message));
        }
        let _ = e.print();
        ExitCode::from(code)
    })
}

/// Whether `--json` is among the options of a command line that could not be parsed.
fn wants_json(words: &[std::ffi::OsString]) -> bool {
    words.iter().take_while(|w| *w != "--").any(|w| w == "--json")
}

pub(crate) fn init_logging(quiet: bool, verbose: u8) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "cnab_relocate=info",
        (false, _) => "cnab_relocate=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // never coloured: the messages carry text from servers, written escaped
        .with_writer(|| terminal::EscapedStderr)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .init();
}

/// The warning for a prefix without a registry host: it means Docker Hub, as in duffle.
fn hub_warning(prefix: &RepositoryPrefix) -> Option<String> {
    (!prefix.names_registry()).then(|| {
        format!(
            "warning: the prefix {prefix} names no registry host, so it means {} (Docker Hub), as in duffle; \
             begin it with a host (e.g. registry.example.com/{prefix}) to use another registry",
            prefix.normalized()
        )
    })
}

fn run_map(prefix: &str, references: &[String], rules: Option<&Path>) -> ExitCode {
    if let Some(warning) = prefix.parse().ok().as_ref().and_then(hub_warning) {
        terminal::warning(&warning);
    }
    let rules = match rules.map(cnab_relocate::sync::config::read_mapping_rules).transpose() {
        Ok(rules) => rules,
        Err(message) => {
            terminal::error(&message);
            return ExitCode::from(2);
        }
    };
    match cnab_relocate::map_references_with(prefix, references, rules.as_ref()) {
        Ok(mapped) => {
            let mut out = std::io::stdout().lock();
            for m in mapped {
                if writeln!(out, "{m}").is_err() {
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                terminal::error(&e.to_string());
            }
            ExitCode::from(2)
        }
    }
}

fn run_relocate(args: RelocateArgs) -> ExitCode {
    init_logging(args.say.quiet, args.say.verbose);
    let bundle = args.bundle.clone().expect("clap requires BUNDLE");
    let out = Output::new(args.say.mode());
    if let Some(message) = stdin_twice(&bundle, args.creds.password_stdin) {
        return relocation_failed(&out, 0, &Error::Usage(message.to_string()));
    }
    let destination = args
        .repository_prefix
        .as_deref()
        .and_then(|p| p.parse::<RepositoryPrefix>().ok())
        .map(|p| p.registry());
    let given = creds::Given {
        authfile: args.registry.authfile.as_ref(),
        src: args.creds.src_creds.as_ref(),
        dest: args.dest_creds.as_ref(),
        destination,
        password_stdin: args.creds.password_stdin,
    };
    let credentials = match creds::options(given, std::io::stdin().lock()) {
        Ok(c) => c,
        Err(message) => return relocation_failed(&out, 0, &Error::Usage(message)),
    };
    let mut relocation = Relocation::new(&bundle)
        .prefix(
            args.repository_prefix
                .clone()
                .expect("clap requires --repository-prefix"),
        )
        .options(options(
            &args.registry,
            args.transfers.concurrency,
            !args.transfers.no_referrers,
            credentials,
        ))
        .on_event({
            let out = out.clone();
            move |e: &Event| out.event(e)
        });
    if let Some(path) = &args.relocation_mapping {
        relocation = relocation.mapping_file(path);
    }
    if let Some(path) = &args.mapping_rules {
        relocation = relocation.mapping_rules(path);
    }
    if let Some(path) = args.output_bundle.as_ref().filter(|_| !args.dry_run) {
        relocation = relocation.output_bundle(path);
    }
    // a dry run checks every entry of a thick bundle; a copy reads a metadata-first one once
    relocation = relocation.read_archive_once(!args.dry_run);
    let planned = match relocation.plan() {
        Ok(p) => p,
        Err(e) => return relocation_failed(&out, 0, &e),
    };
    let images = planned.plan().images.len();
    let mut warnings: Vec<String> = hub_warning(&planned.plan().prefix).into_iter().collect();
    if args.creds.src_creds.is_some() {
        let checked = match planned.format() {
            BundleFormat::Thick => Ok(Some(
                "--src-creds is not used: a thick bundle's images are read from the archive".to_string(),
            )),
            BundleFormat::Thin => creds::check_sources(
                Some(&planned.plan().prefix.registry()),
                planned.plan().images.iter().map(|i| i.original.domain()),
            ),
        };
        match checked {
            Ok(warning) => warnings.extend(warning.map(|w| format!("warning: {w}"))),
            Err(message) => return relocation_failed(&out, images, &Error::Usage(message)),
        }
    }
    for warning in &warnings {
        out.warn(warning);
    }
    if args.dry_run {
        if !args.transfers.no_referrers {
            out.warn(
                "note: a dry run contacts no registry, so it cannot list the signatures, attestations \
                 and SBOMs that would travel with the images",
            );
        }
        return dry_run(&out, &planned);
    }
    let mapping_path = args.relocation_mapping.expect("clap requires --relocation-mapping");
    // said once the run is under way: an input error found first is all there is to read
    out.later(&format!(
        "relocating {} image(s) of {} to {}",
        images,
        bundle.display(),
        planned.plan().prefix
    ));
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(planned.run_until(interrupted()));
    out.finish();
    // tasks still running (an archive reader draining its pass) do not hold the exit up
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(report) => {
            out.commit();
            out.json(&relocation_summary(
                &out,
                images,
                Some(&report),
                None,
                Some(&mapping_path),
            ));
            out.line(&summary_line(&report, out.elapsed_secs(), &mapping_path));
            ExitCode::SUCCESS
        }
        Err(e) => relocation_failed(&out, images, &e),
    }
}

/// The last line of a relocation: images, blobs sent / mounted / present, bytes, time, rate.
fn summary_line(report: &CopyReport, seconds: f64, mapping_path: &Path) -> String {
    let ok: Vec<_> = report.images.iter().filter_map(|i| i.outcome.as_ref().ok()).collect();
    let present = ok.iter().filter(|c| c.already_present).count();
    let blobs_present: usize = ok.iter().map(|c| c.stats.blobs_present).sum();
    let rate = report.bytes_sent as f64 / seconds.max(0.001);
    format!(
        "relocated {} image(s) ({} copied, {present} already there): {} blob(s) sent, {} mounted, {blobs_present} present; \
         {} in {seconds:.1} s ({}/s); mapping written to {}",
        report.images.len(),
        ok.len() - present,
        report.blobs_uploaded,
        report.blobs_mounted,
        human_bytes(report.bytes_sent),
        human_bytes(rate as u64),
        mapping_path.display()
    )
}

/// Ends a relocation that failed: the error on standard error (with `--json`, the summary
/// too). Lines held back are shown only when the run got under way (not for exit 2).
fn relocation_failed(out: &Output, images: usize, e: &Error) -> ExitCode {
    if e.exit_code() != 2 {
        out.commit();
    }
    let report = match e {
        Error::Relocation(r) => Some(r),
        _ => None,
    };
    out.json(&relocation_summary(out, images, report, Some(e), None));
    fail(e)
}

/// The async runtime a command runs on; exit 1 (said) when it cannot start.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            terminal::error(&format!("cannot start the async runtime: {e}"));
            ExitCode::from(1)
        })
}

/// The number of the first SIGINT or SIGTERM the process receives.
async fn interrupted() -> i32 {
    signalled(true).await
}

/// The first SIGINT (2) or SIGTERM (15); `stops_the_run` once listening.
async fn signalled(stops_the_run: bool) -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    if stops_the_run {
        RUN_LISTENS.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    tokio::select! {
        _ = int.recv() => 2,
        _ = term.recv() => 15,
    }
}

pub(crate) fn options(
    registry: &RegistryArgs,
    concurrency: u16,
    referrers: bool,
    credentials: CredentialOptions,
) -> RelocateOptions {
    let retry = RetryPolicy {
        max_attempts: registry.retry_times + 1,
        ..Default::default()
    };
    RelocateOptions {
        registry: RegistryOptions {
            ca_cert_paths: registry.ca_cert_path.clone(),
            skip_tls_verify: registry.skip_tls_verify,
            insecure_registries: registry.insecure_registry.clone(),
            timeout: Some(std::time::Duration::from_secs(registry.timeout)),
            retry: retry.clone(),
            credentials,
            certs_dirs: certs_dirs(),
        },
        copy: CopyOptions {
            concurrency: usize::from(concurrency),
            retry,
            referrers,
            ..CopyOptions::default()
        },
    }
}

/// `CNAB_RELOCATE_CERTS_D`: the per-registry certificate folders, `:`-separated, instead of
/// skopeo's (empty: none); for tests and unusual set-ups.
fn certs_dirs() -> Option<Vec<PathBuf>> {
    std::env::var_os("CNAB_RELOCATE_CERTS_D").map(|dirs| {
        std::env::split_paths(&dirs)
            .filter(|d| !d.as_os_str().is_empty())
            .collect()
    })
}

fn run_export(args: ExportArgs) -> ExitCode {
    init_logging(args.say.quiet, args.say.verbose);
    let mode = args.say.mode();
    let out = Output::new(mode);
    let say = |line: String| {
        if mode == Mode::Human {
            eprintln!("{}", output::fit_to_stderr(&terminal::escape_controls(&line)));
        }
    };
    let failed = |e: &Error| {
        out.json(&output::summary(
            "export",
            e.exit_code(),
            "exported",
            Some(e.to_string()),
            &problems(e),
            out.elapsed_secs(),
            serde_json::json!({"output": args.output}),
        ));
        fail(e)
    };
    if let Some(message) = stdin_twice(&args.bundle, args.creds.password_stdin) {
        return failed(&Error::Usage(message.to_string()));
    }
    let given = creds::Given {
        authfile: args.registry.authfile.as_ref(),
        src: args.creds.src_creds.as_ref(),
        dest: None,
        destination: None,
        password_stdin: args.creds.password_stdin,
    };
    let credentials = match creds::options(given, std::io::stdin().lock()) {
        Ok(c) => c,
        Err(message) => return failed(&Error::Usage(message)),
    };
    let export = Export::new(&args.bundle, &args.output)
        .replace_existing(args.force)
        .options(options(
            &args.registry,
            args.concurrency,
            !args.no_referrers,
            credentials,
        ));
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let outcome = export.plan().and_then(|planned| {
        if args.creds.src_creds.is_some() {
            match creds::check_sources(None, planned.images().iter().map(|i| i.reference.domain())) {
                Ok(warning) => warning.into_iter().for_each(|w| out.warn(&format!("warning: {w}"))),
                Err(message) => return Err(Error::Usage(message)),
            }
        }
        for w in planned.duffle_warnings() {
            out.warn(&format!("warning: {w}"));
        }
        say(format!(
            "exporting {} image(s) of {} to {}",
            planned.images().len(),
            args.bundle.display(),
            args.output.display()
        ));
        runtime.block_on(planned.run_until(interrupted()))
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    let secs = out.elapsed_secs();
    match outcome {
        Ok(report) => {
            let images: Vec<serde_json::Value> = report
                .images
                .iter()
                .map(|i| serde_json::json!({"image": i.image, "ref_name": i.ref_name, "digest": i.digest.to_string()}))
                .collect();
            let referrers: Vec<serde_json::Value> = report
                .referrers
                .iter()
                .map(|r| serde_json::json!({"image": r.image, "kind": r.kind, "digest": r.digest.to_string(), "subject": r.subject.to_string()}))
                .collect();
            out.json(&output::summary(
                "export",
                0,
                "exported",
                None,
                &[],
                secs,
                serde_json::json!({"output": args.output, "images": images, "referrers": referrers,
                    "blobs": report.blobs, "bytes": report.bytes}),
            ));
            for i in &report.images {
                say(format!("  {} ({})", i.ref_name, i.digest));
            }
            for r in &report.referrers {
                say(format!(
                    "  {} of {}: {} ({})",
                    r.kind.as_str(),
                    r.image,
                    r.subject,
                    r.digest
                ));
            }
            say(format!(
                "exported {} image(s), {} blob(s), {} in {secs:.1} s to {}",
                report.images.len(),
                report.blobs,
                human_bytes(report.bytes),
                args.output.display()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e),
    }
}

/// Standard input can carry the bundle or a password, not both.
fn stdin_twice(bundle: &Path, password_stdin: bool) -> Option<&'static str> {
    (password_stdin && cnab_relocate::bundle::is_stdin(bundle)).then_some(
        "the bundle (-) and --password-stdin both read standard input; give the password with --dest-creds \
         USER:PASSWORD, an auth file, or the bundle as a file",
    )
}

/// Each problem of a failed command, for the summary's `errors`: one per image that failed,
/// else the error itself.
fn problems(e: &Error) -> Vec<output::Problem> {
    match e {
        Error::Relocation(report) => report
            .failures()
            .map(|f| output::Problem {
                message: f.outcome.as_ref().err().map(ToString::to_string).unwrap_or_default(),
                image: Some(f.image.clone()),
                relocated: Some(f.relocated.clone()),
            })
            .collect(),
        Error::ExportImages(failures) => failures
            .iter()
            .map(|(image, error)| output::Problem {
                message: error.to_string(),
                image: Some(image.clone()),
                relocated: None,
            })
            .collect(),
        Error::Bundle(cnab_relocate::bundle::BundleError::Several(all)) => {
            all.iter().map(|e| output::Problem::new(e.to_string())).collect()
        }
        _ => vec![output::Problem::new(e.to_string())],
    }
}

/// Exit 0 when what was printed reached standard output, 1 otherwise.
fn written(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            terminal::error(&format!("cannot write to standard output: {e}"));
            ExitCode::from(1)
        }
    }
}

fn fail(e: &Error) -> ExitCode {
    terminal::error(&e.to_string());
    ExitCode::from(e.exit_code())
}

/// Checks what can be checked offline and prints the mapping: exactly duffle's bytes when
/// piped, with a newline only for a person at a terminal; with `--json`, in the summary.
fn dry_run(out: &Output, planned: &PlannedRelocation) -> ExitCode {
    let images = planned.plan().images.len();
    if let Err(e) = planned.check_sources() {
        return relocation_failed(out, images, &e);
    }
    if out.is_json() {
        let mapping: serde_json::Value =
            serde_json::from_slice(&planned.mapping().to_json()).expect("the mapping is JSON");
        let mut summary = relocation_summary(out, images, None, None, None);
        summary["outcome"] = "dry_run".into();
        summary["mapping"] = mapping;
        out.json(&summary);
        return ExitCode::SUCCESS;
    }
    let mut stdout = std::io::stdout().lock();
    let mut json = planned.mapping().to_json();
    if stdout.is_terminal() {
        json.push(b'\n');
    }
    written(stdout.write_all(&json).and_then(|_| stdout.flush()))
}

/// The relocation's `--json` summary: the outcome, then what the run did.
fn relocation_summary(
    out: &Output,
    images: usize,
    report: Option<&CopyReport>,
    error: Option<&Error>,
    mapping_path: Option<&Path>,
) -> serde_json::Value {
    let ok = report
        .into_iter()
        .flat_map(|r| r.images.iter().filter_map(|i| i.outcome.as_ref().ok()));
    let copied = ok.clone().filter(|c| !c.already_present).count();
    let present = ok.clone().filter(|c| c.already_present).count();
    let blobs_present: usize = ok.clone().map(|c| c.stats.blobs_present).sum();
    let referrers_copied: usize = ok
        .map(|c| c.referrers.iter().filter(|x| !x.already_present).count())
        .sum();
    output::summary(
        "relocate",
        error.map_or(0, Error::exit_code),
        "relocated",
        error.map(ToString::to_string),
        &error.map(problems).unwrap_or_default(),
        out.elapsed_secs(),
        serde_json::json!({
            "images": images,
            "copied": copied,
            "already_present": present,
            "failed": report.map_or(0, |r| r.failures().count()),
            "bytes_sent": report.map_or(0, |r| r.bytes_sent),
            "blobs_uploaded": report.map_or(0, |r| r.blobs_uploaded),
            "blobs_mounted": report.map_or(0, |r| r.blobs_mounted),
            "blobs_present": blobs_present,
            "referrers_copied": referrers_copied,
            "relocation_mapping": mapping_path.map(|p| p.display().to_string()),
        }),
    )
}
