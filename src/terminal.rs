//! Part of the binary: text from bundles and servers reaches the terminal only with its
//! control characters escaped, so no ESC, CR or BEL from outside can move the cursor, recolour
//! the screen or hide a line.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

/// `text` with every control character but newline and tab written as `\u{..}`.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if is_unsafe(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Whether what goes to a stream that `is_terminal` may be coloured: never into a pipe or a
/// file, never with `NO_COLOR` set (to anything but the empty string) or on a dumb terminal.
pub fn colours(is_terminal: bool) -> bool {
    is_terminal
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// `label` (such as `error:`) in `sgr`'s colour when standard error may be coloured.
fn label(label: &str, sgr: &str) -> String {
    if colours(io::stderr().is_terminal()) {
        format!("\x1b[{sgr}m{label}\x1b[0m")
    } else {
        label.to_string()
    }
}

/// Prints `error: MESSAGE` on standard error, the message escaped, the label red on a terminal.
pub fn error(message: &str) {
    eprintln!("{} {}", label("error:", "1;31"), escape_controls(message));
}

/// Prints a `warning: …` or `note: …` line on standard error, its label coloured on a terminal.
pub fn warning(line: &str) {
    let line = escape_controls(line);
    match line.split_once(": ") {
        Some((word @ ("warning" | "note"), rest)) => {
            let sgr = if word == "warning" { "1;33" } else { "1;36" };
            eprintln!("{} {rest}", self::label(&format!("{word}:"), sgr));
        }
        _ => eprintln!("{line}"),
    }
}

fn is_unsafe(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// Standard error with control characters escaped: where the logs go.
pub struct EscapedStderr;

impl Write for EscapedStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().lock().write_all(escape_controls(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_drive_a_terminal() {
        assert_eq!(escape_controls("plain\nlines\tand tabs"), "plain\nlines\tand tabs");
        assert_eq!(escape_controls("a\x1b[31mred\x07\rb"), "a\\u{1b}[31mred\\u{7}\\u{d}b");
    }
}
