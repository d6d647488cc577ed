//! Errors and warnings in a configuration file (the rate card, the keys file), each at its
//! line: printed as `FILE:LINE: message` by `rates check`, `serve` and the reloads. Line 0
//! means the file as a whole.

use std::fmt;

/// One error or warning, at a line of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Every error found in a file: the checkers report them all, not just the first.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct FileErrors(pub Vec<FileError>);

/// The 1-based line of a byte offset into `text` (a parser's span); past the end, the last line.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_display() {
        let text = "a = 1\nb = 2\n";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 6), 2);
        assert_eq!(line_of(text, 999), 3);
        let e = FileError {
            file: "keys.toml".into(),
            line: 2,
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "keys.toml:2: bad");
        assert_eq!(
            FileErrors(vec![e.clone(), e]).to_string(),
            "keys.toml:2: bad\nkeys.toml:2: bad"
        );
    }
}
