//! Credentials given on the command line: `--dest-creds`/`--src-creds USER[:PASSWORD]`,
//! `--password-stdin`, `--authfile` (or `REGISTRY_AUTH_FILE`). Passwords never reach `Debug`
//! or any message.

use std::io::Read;
use std::path::PathBuf;

use cnab_relocate::registry::{CredentialOptions, Login};

/// Longest password read from standard input.
const MAX_PASSWORD: u64 = 64 * 1024;

/// `USER[:PASSWORD]` from the command line; `Debug` shows no password.
#[derive(Clone)]
pub struct Creds {
    username: String,
    password: Option<String>,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Creds({}, <redacted>)", self.username)
    }
}

/// skopeo's `USER[:PASSWORD]`: split at the first colon (a password may hold colons). Never
/// fails: clap would repeat the value, password and all, in its error; an empty user name is
/// refused by [`options`] instead.
pub fn parse(value: &str) -> Result<Creds, std::convert::Infallible> {
    let (username, password) = match value.split_once(':') {
        Some((u, p)) => (u, Some(p.to_string())),
        None => (value, None),
    };
    Ok(Creds {
        username: username.to_string(),
        password,
    })
}

/// The credential flags of one command.
pub struct Given<'a> {
    pub authfile: Option<&'a PathBuf>,
    pub src: Option<&'a Creds>,
    pub dest: Option<&'a Creds>,
    /// The target registry, as references name it (none for export).
    pub destination: Option<String>,
    pub password_stdin: bool,
}

/// The library's credential options from the flags, reading the missing password from
/// `stdin` when `--password-stdin` asks for it (as `docker login --password-stdin` does: all
/// of it, one trailing newline dropped). A usage error is said in words.
pub fn options(given: Given<'_>, stdin: impl Read) -> Result<CredentialOptions, String> {
    if let Some(path) = given.authfile {
        // as skopeo and podman: a named auth file that cannot be read is an error, not anonymity
        std::fs::File::open(path).map_err(|e| format!("cannot read the auth file {}: {e}", path.display()))?;
    }
    for (flag, creds) in [("--src-creds", given.src), ("--dest-creds", given.dest)] {
        if creds.is_some_and(|c| c.username.is_empty()) {
            return Err(format!("{flag} needs a user name: USER[:PASSWORD]"));
        }
    }
    let lacking: Vec<&str> = [("--src-creds", given.src), ("--dest-creds", given.dest)]
        .into_iter()
        .filter(|(_, c)| c.is_some_and(|c| c.password.is_none()))
        .map(|(flag, _)| flag)
        .collect();
    let from_stdin = match (given.password_stdin, lacking.as_slice()) {
        (false, []) => None,
        (false, [flag, ..]) => {
            return Err(format!(
                "{flag} names a user without a password: give USER:PASSWORD, or add --password-stdin and \
                 pipe the password in"
            ))
        }
        (true, []) => {
            return Err(
                "--password-stdin reads the password of --dest-creds USER or --src-creds USER; give one of them \
                 without a password"
                    .into(),
            )
        }
        (true, [_]) => Some(read_password(stdin)?),
        (true, _) => {
            return Err(
                "--password-stdin reads one password, but both --src-creds and --dest-creds lack one; give one \
                 of them as USER:PASSWORD"
                    .into(),
            )
        }
    };
    let login = |creds: Option<&Creds>| {
        creds.map(|c| Login {
            username: c.username.clone(),
            password: c.password.clone().or_else(|| from_stdin.clone()).unwrap_or_default(),
        })
    };
    Ok(CredentialOptions {
        auth_file: given.authfile.cloned(),
        destination: given.destination,
        destination_login: login(given.dest),
        sources: login(given.src),
        anonymous: false,
        explicit_origin: None,
    })
}

/// All of `stdin`, one trailing `\n` (and a `\r` before it) dropped.
fn read_password(stdin: impl Read) -> Result<String, String> {
    let mut bytes = Vec::new();
    stdin
        .take(MAX_PASSWORD + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("--password-stdin: cannot read standard input: {e}"))?;
    if bytes.len() as u64 > MAX_PASSWORD {
        return Err(format!(
            "--password-stdin: standard input holds more than {MAX_PASSWORD} bytes; is it the password?"
        ));
    }
    let mut password =
        String::from_utf8(bytes).map_err(|_| "--password-stdin: the password is not UTF-8 text".to_string())?;
    if password.ends_with('\n') {
        password.pop();
        if password.ends_with('\r') {
            password.pop();
        }
    }
    if password.is_empty() {
        return Err("--password-stdin: standard input is empty (is the secret set?)".into());
    }
    Ok(password)
}

/// With `--src-creds`, the registries images are read from must be one (besides the target,
/// which gets `--dest-creds` or the files): source credentials go to no other registry.
/// Returns a warning when they go nowhere.
pub fn check_sources<'a>(
    target: Option<&str>,
    sources: impl IntoIterator<Item = &'a str>,
) -> Result<Option<String>, String> {
    let same = |a: &str, b: &str| {
        let hub = |d: &str| matches!(d, "docker.io" | "index.docker.io" | "registry-1.docker.io");
        a.eq_ignore_ascii_case(b) || (hub(a) && hub(b))
    };
    let mut others: Vec<&str> = Vec::new();
    let mut target_is_a_source = false;
    for s in sources {
        if target.is_some_and(|t| same(t, s)) {
            target_is_a_source = true;
        } else if !others.iter().any(|o| same(o, s)) {
            others.push(s);
        }
    }
    match others.as_slice() {
        [_] => Ok(None),
        [] if target_is_a_source => Ok(Some(format!(
            "--src-creds is not used: the images are read from {}, the target registry, which gets --dest-creds \
             or the credential files",
            target.unwrap_or_default()
        ))),
        [] => Ok(Some("--src-creds is not used: no image is read from a registry".into())),
        many => Err(format!(
            "--src-creds would go to {} registries ({}); give each registry its credentials in an auth file \
             (--authfile) instead",
            many.len(),
            many.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given<'a>(src: Option<&'a Creds>, dest: Option<&'a Creds>, stdin: bool) -> Given<'a> {
        Given {
            authfile: None,
            src,
            dest,
            destination: Some("reg.example".into()),
            password_stdin: stdin,
        }
    }

    #[test]
    fn user_and_password_split_at_the_first_colon() {
        let c = parse("u:p:with:colons").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_deref()),
            ("u", Some("p:with:colons"))
        );
        assert_eq!(parse("u").unwrap().password, None);
        assert_eq!(parse("u:").unwrap().password.as_deref(), Some(""));
        let nameless = parse(":s3cret").unwrap();
        let e = options(given(None, Some(&nameless), false), &b""[..]).unwrap_err();
        assert!(
            e.contains("--dest-creds needs a user name") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(!format!("{:?}", parse("u:s3cret").unwrap()).contains("s3cret"));
    }

    #[test]
    fn password_stdin_fills_the_creds_that_lack_one() {
        let user = parse("u").unwrap();
        let full = parse("s:given").unwrap();
        for (input, want) in [
            (&b"pw\n"[..], "pw"),
            (b"pw\r\n", "pw"),
            (b"pw", "pw"),
            (b"pw\n\n", "pw\n"),
            (b" pw ", " pw "),
        ] {
            let o = options(given(Some(&full), Some(&user), true), input).unwrap();
            assert_eq!(o.destination_login.unwrap().password, want, "{input:?}");
            assert_eq!(o.sources.unwrap().password, "given");
        }
        let o = options(given(Some(&user), None, true), &b"src-pw\n"[..]).unwrap();
        assert_eq!(o.sources.unwrap().password, "src-pw");
    }

    #[test]
    fn password_stdin_misuse_is_said() {
        let user = parse("u").unwrap();
        let full = parse("u:p").unwrap();
        let err = |g| options(g, &b"pw\n"[..]).unwrap_err();
        assert!(err(given(None, Some(&user), false)).contains("--dest-creds names a user without a password"));
        assert!(err(given(None, Some(&full), true)).contains("give one of them without a password"));
        assert!(err(given(None, None, true)).contains("give one of them without a password"));
        assert!(err(given(Some(&user), Some(&user), true)).contains("both"));
        assert!(options(given(None, Some(&user), true), &b"\n"[..])
            .unwrap_err()
            .contains("empty"));
    }

    #[test]
    fn source_credentials_go_to_one_registry_only() {
        assert_eq!(check_sources(Some("t.example"), ["a.example", "a.example"]), Ok(None));
        assert_eq!(check_sources(Some("t.example"), ["t.example", "a.example"]), Ok(None));
        assert!(check_sources(Some("docker.io"), ["index.docker.io"]).unwrap().is_some());
        assert!(check_sources(None, []).unwrap().is_some());
        let e = check_sources(Some("t.example"), ["a.example", "docker.io", "a.example"]).unwrap_err();
        assert!(e.contains("2 registries (a.example, docker.io)"), "{e}");
    }
}
