//! Part of the binary: shell completion scripts (clap_complete) and the manual page
//! (clap_mangen), both generated from the command line's own definition so they never drift
//! from it.

use std::io::{self, Write};

use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

/// The name the scripts complete and the page is filed under.
const BIN: &str = "cnab-relocate";

/// Writes the completion script for `shell`.
pub fn completions(shell: Shell, mut command: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, BIN, &mut script);
    let mut script = String::from_utf8(script).expect("completion scripts are UTF-8");
    if shell == Shell::Bash {
        // clap_complete 4.6 spells a hyphenated name one way where it tracks the subcommand
        // typed and another in the arms that complete it, so no subcommand option would ever
        // complete (clap-rs/clap#6421): the arms are given the tracked spelling
        let tracked = BIN.replace('-', "__");
        let armed = BIN.replace('-', "__subcmd__");
        script = script.replace(&format!("{armed}__subcmd__"), &format!("{tracked}__subcmd__"));
    }
    out.write_all(script.as_bytes())
}

/// Writes the manual page (section 1): the relocation's synopsis and options, then every
/// subcommand with its own synopsis and options, exit status, environment, files and
/// examples.
pub fn man(command: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let mut command = command.bin_name(BIN);
    command.build();
    let page = Man::new(command.clone()).manual("User Commands");
    let mut roff = Vec::new();
    page.render_title(&mut roff)?;
    page.render_name_section(&mut roff)?;
    page.render_synopsis_section(&mut roff)?;
    page.render_description_section(&mut roff)?;
    page.render_options_section(&mut roff)?;
    let mut text = String::from_utf8(roff).expect("roff is UTF-8");

    text.push_str(".SH COMMANDS\n");
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("{BIN} {}", sub.get_name());
        let sub_page = Man::new(sub.clone().bin_name(&name));
        let mut part = Vec::new();
        Roff::new().control("SS", [name.as_str()]).to_writer(&mut part)?;
        sub_page.render_description_section(&mut part)?;
        part.extend_from_slice(b".PP\n");
        sub_page.render_synopsis_section(&mut part)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            sub_page.render_options_section(&mut part)?;
        }
        // one section per subcommand: its own headings would split the page
        let part = String::from_utf8(part).expect("roff is UTF-8");
        text.extend(
            part.lines()
                .filter(|l| !l.starts_with(".SH "))
                .map(|l| format!("{l}\n")),
        );
    }

    let mut tail = Vec::new();
    extra_sections().to_writer(&mut tail)?;
    page.render_version_section(&mut tail)?;
    text.push_str(&String::from_utf8(tail).expect("roff is UTF-8"));
    out.write_all(without_repeated_preambles(&text).as_bytes())
}

/// The sections `--help` shows as prose after the options.
fn extra_sections() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "every image relocated and verified; mapping written"),
        (
            "1",
            "relocation (or export) failed; no mapping written (an existing one is left untouched), no export archive left",
        ),
        (
            "2",
            "usage or input error (bad flags, unreadable or invalid bundle, invalid prefix, two images claiming one tag with different content); nothing was pushed",
        ),
        ("130, 143", "interrupted by SIGINT or SIGTERM; no mapping written"),
    ] {
        r.control("TP", []).text([bold(code)]).text([roman(meaning)]);
    }

    r.control("SH", ["ENVIRONMENT"]);
    for (var, meaning) in [
        (
            "REGISTRY_AUTH_FILE",
            "credentials file in containers-auth.json form, as --authfile; then no other file is read",
        ),
        (
            "XDG_RUNTIME_DIR, XDG_CONFIG_HOME",
            "where podman and skopeo login write auth.json (see FILES)",
        ),
        ("DOCKER_CONFIG", "the folder of Docker's config.json"),
        (
            "CNAB_RELOCATE_CERTS_D",
            "colon-separated folders of per-registry certificates (HOST:PORT/*.crt) instead of the usual certs.d folders; empty for none",
        ),
        (
            "NO_COLOR",
            "when set, no colour even on a terminal; output to a pipe or file is never coloured",
        ),
        ("RUST_LOG", "overrides the log filter -q and -v choose"),
    ] {
        r.control("TP", []).text([bold(var)]).text([roman(meaning)]);
    }

    r.control("SH", ["FILES"]);
    r.text([roman(
        "Credentials, the first source with an answer wins (skopeo's order): --dest-creds and --src-creds; \
         else --authfile (or REGISTRY_AUTH_FILE) alone; else",
    )]);
    for file in [
        "$XDG_RUNTIME_DIR/containers/auth.json",
        "~/.config/containers/auth.json",
        "$DOCKER_CONFIG/config.json or ~/.docker/config.json",
    ] {
        r.control("IP", ["\\(bu", "2"]).text([italic(file)]);
    }
    r.control("PP", []).text([roman(
        "Per-registry certificates: the first of ~/.config/containers/certs.d, /etc/containers/certs.d and \
         /etc/docker/certs.d holding a folder HOST:PORT, whose *.crt files are trusted for that registry.",
    )]);

    r.control("SH", ["EXAMPLES"]);
    for (what, how) in [
        (
            "Relocate a thin bundle (images are pulled from their registries):",
            "cnab-relocate forge.json -p registry.internal.acme.com/smith -m relmap.json",
        ),
        (
            "Relocate a thick bundle (images are read only from the archive):",
            "cnab-relocate sort.tgz -p registry.gold.gwb.dia/griphook -m relmap.json",
        ),
        (
            "Show where the images would go, contacting no registry:",
            "cnab-relocate forge.json -p registry.internal.acme.com/smith --dry-run",
        ),
        (
            "Pack a thin bundle and its images into a thick bundle (air gap, step one):",
            "cnab-relocate export forge.json -o forge.tgz",
        ),
        (
            "In CI, with the registry password in a secret variable:",
            "printf %s \"$REGISTRY_PASSWORD\" | cnab-relocate forge.json -p registry.internal.acme.com/smith -m relmap.json --dest-creds ci-bot --password-stdin",
        ),
        (
            "Install bash completions for the current user:",
            "cnab-relocate completions bash > ~/.local/share/bash-completion/completions/cnab-relocate",
        ),
    ] {
        r.control("PP", []).text([roman(what)]);
        r.control("RS", ["4"]).control("nf", []).text([bold(how)]).control("fi", []).control("RE", []);
    }

    r.control("SH", ["SEE ALSO"]);
    r.text([roman("skopeo-copy(1), containers-auth.json(5), containers-certs.d(5)")]);
    r
}

/// The page with roff's apostrophe preamble once, at its start (each rendered part brings
/// its own).
fn without_repeated_preambles(text: &str) -> String {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    match text.split_once(PREAMBLE) {
        Some((before, rest)) => format!("{before}{PREAMBLE}{}", rest.replace(PREAMBLE, "")),
        None => text.to_string(),
    }
}
