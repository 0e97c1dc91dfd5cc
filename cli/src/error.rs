//! The CLI's one error type: a message printed as a single line on stderr, exit status 1.

use std::fmt;

/// A user-facing error: one line, no backtrace.
#[derive(Debug)]
pub struct CliError(String);

/// Result of a CLI step.
pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> CliError {
        CliError(e.to_string())
    }
}

/// Reads a file, naming it in the error.
pub fn read_file(path: &str) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| CliError(format!("cannot read {path}: {}", io_reason(&e))))
}

/// Reads a UTF-8 text file, naming it in the error.
pub fn read_text(path: &str) -> CliResult<String> {
    let bytes = read_file(path)?;
    String::from_utf8(bytes).map_err(|_| CliError(format!("{path} is not UTF-8 text")))
}

/// A short reason for an I/O error, without the Rust `(os error N)` suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "is a directory".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}
