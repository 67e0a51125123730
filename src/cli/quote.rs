//! Safe human-readable output: names, hosts, tags and paths come from the repository (which
//! may be hostile) or from the source file system, and printing them raw would let an escape
//! sequence in a file name drive the user's terminal. They are escaped the way GNU `ls -b`
//! (`--quoting-style=escape`) does: a backslash becomes `\\`, the usual control characters
//! `\a \b \t \n \v \f \r`, any other control character (C0, DEL, C1) and every byte that is not
//! valid UTF-8 a three-digit octal escape such as `\033`. Printable text, spaces included, is
//! left as it is. `--json` output and `ls -0` stay exact instead.

/// `bytes` escaped for a terminal.
pub fn bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text_into(chunk.valid(), &mut out);
        for b in chunk.invalid() {
            octal(*b, &mut out);
        }
    }
    out
}

/// `s` escaped for a terminal.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    text_into(s, &mut out);
    out
}

/// A path escaped for a terminal.
pub fn path(p: &std::path::Path) -> String {
    bytes(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
}

fn text_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    octal(b, out);
                }
            }
            c => out.push(c),
        }
    }
}

fn octal(b: u8, out: &mut String) {
    out.push_str(&format!("\\{b:03o}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_invalid_utf8_are_escaped() {
        assert_eq!(text("plain name.txt"), "plain name.txt");
        assert_eq!(text("été"), "été");
        assert_eq!(text("a\nb"), "a\\nb");
        assert_eq!(text("\x1b]0;pwned\x07"), "\\033]0;pwned\\a");
        assert_eq!(text("back\\slash"), "back\\\\slash");
        assert_eq!(text("del\x7f"), "del\\177");
        assert_eq!(text("c1\u{9b}31m"), "c1\\302\\23331m");
        assert_eq!(bytes(b"bad\xff\xfe"), "bad\\377\\376");
        assert_eq!(bytes(b"\xe9t\xe9"), "\\351t\\351");
    }
}
