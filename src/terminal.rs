//! Part of the binary: text from bundles and servers reaches the terminal only with its
//! control characters escaped, so no ESC, CR or BEL from outside can move the cursor, recolour
//! the screen or hide a line.

use std::borrow::Cow;
use std::io::{self, Write};

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
