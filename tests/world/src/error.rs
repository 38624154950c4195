//! The one error type of the test world.

use std::fmt;
use std::io;

/// Anything that can go wrong while building or starting the test world.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Certificate generation failed (rcgen).
    Cert(rcgen::Error),
    /// A TLS configuration could not be built (rustls).
    Tls(rustls::Error),
    /// A socket, thread or file operation failed.
    Io(io::Error),
    /// A world description file is not valid JSON or does not match the schema.
    Json(serde_json::Error),
    /// A description is well-formed but unusable (the text says why).
    Spec(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cert(e) => write!(f, "test certificate generation failed: {e}"),
            Error::Tls(e) => write!(f, "TLS configuration failed: {e}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Json(e) => write!(f, "world description: {e}"),
            Error::Spec(s) => write!(f, "world description: {s}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Cert(e) => Some(e),
            Error::Tls(e) => Some(e),
            Error::Io(e) => Some(e),
            Error::Json(e) => Some(e),
            Error::Spec(_) => None,
        }
    }
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Cert(e)
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e)
    }
}
