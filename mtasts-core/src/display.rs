//! Text from the network made safe to show on a terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character written as an escape (`\x1b` → `\u{1b}`), so that
/// text a remote server chose (a policy file, a redirect target) cannot move the cursor,
/// retitle the window or hide lines when printed to a terminal. Escaped: C0 controls but
/// tab, DEL, C1 controls, and the Unicode bidirectional overrides and isolates. A backslash
/// is left alone; the result is for people, not to be parsed back.
///
/// ```rust
/// use mtasts_core::escape_controls;
/// assert_eq!(escape_controls("mode: enforce"), "mode: enforce");
/// assert_eq!(escape_controls("a\u{1b}[2Jb\r"), "a\\u{1b}[2Jb\\u{d}");
/// ```
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        for (input, want) in [
            ("plain: text\twith tab", "plain: text\twith tab"),
            ("\u{1b}]0;owned\u{7}", "\\u{1b}]0;owned\\u{7}"),
            ("cr\rlf\n", "cr\\u{d}lf\\u{a}"),
            ("del\u{7f} c1\u{9b}", "del\\u{7f} c1\\u{9b}"),
            ("bidi \u{202e}txt", "bidi \\u{202e}txt"),
            ("ünïcödé", "ünïcödé"),
        ] {
            assert_eq!(escape_controls(input), want, "{input:?}");
        }
        assert!(matches!(escape_controls("ok"), Cow::Borrowed(_)));
    }
}
