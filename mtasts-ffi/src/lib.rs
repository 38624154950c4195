//! # mtasts-ffi
//!
//! The C ABI of mtasts: `libmtasts.so` / `libmtasts.a` and `include/mtasts.h` (generated from
//! this crate by cbindgen). Every exported function is a thin layer over one `mtasts-core`
//! call, with the same shape:
//!
//! - names `mtasts_<type>_<verb>`; the subject handle first, then inputs, then outputs named
//!   `*_out`; every byte buffer followed by its length;
//! - the body runs inside one boundary that catches panics (`MTASTS_PANIC`) and checks every
//!   pointer (NULL → `MTASTS_NULL_PARAMETER`, bad UTF-8 → `MTASTS_INVALID_PARAMETER`, a handle
//!   of the wrong type → `MTASTS_INVALID_HANDLE`);
//! - `MTASTS_OK` (0) on success; otherwise a code grouped by family and a message for
//!   `mtasts_last_error()` (thread-local, snprintf semantics); outputs are written only on
//!   success;
//! - `_new`-style calls hand ownership to the caller, `_free(NULL)` is a no-op, `const`
//!   handles are borrowed and thread-safe, views returned by getters live as long as the
//!   handle they come from.
//!
//! The Rust items are public for the crate's own tests; Rust programs use `mtasts-core`.
#![allow(unsafe_code)]
// C names for C types, as they appear in the header.
#![allow(non_camel_case_types)]
// Every exported function documents its pointer requirements in C terms (ownership, NULL);
// a Rust `# Safety` section would repeat them in the header.
#![allow(clippy::missing_safety_doc)]
#![deny(missing_docs)]

mod boundary;
pub mod certs;
pub mod config;
pub mod diagnosis;
pub mod error;
pub mod logging;
pub mod probe;
pub mod report;
pub mod resolution;
pub mod resolver;
pub mod verdict;

pub use certs::*;
pub use config::*;
pub use diagnosis::*;
pub use error::*;
pub use logging::*;
pub use probe::*;
pub use report::*;
pub use resolution::*;
pub use resolver::*;
pub use verdict::*;

use std::ffi::c_char;

/// The major version of the library this header belongs to (semantic versioning).
pub const MTASTS_VERSION_MAJOR: u32 = 0;
/// The minor version of the library this header belongs to.
pub const MTASTS_VERSION_MINOR: u32 = 1;
/// The patch version of the library this header belongs to.
pub const MTASTS_VERSION_PATCH: u32 = 0;

/// The version of the library actually loaded, e.g. `"0.1.0"` (compare with the
/// `MTASTS_VERSION_*` macros of the header the program was compiled with).
///
/// Returns a NUL-terminated string valid for the life of the process; never free it.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn mtasts_version() -> *const c_char {
    // The core and this crate share the workspace version.
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header's version macros follow Cargo's version.
    #[test]
    fn version_macros_match_cargo() {
        assert_eq!(
            MTASTS_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            MTASTS_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            MTASTS_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
        // SAFETY: a static NUL-terminated string.
        let loaded = unsafe { std::ffi::CStr::from_ptr(mtasts_version()) };
        assert_eq!(loaded.to_str().unwrap(), mtasts_core::VERSION);
    }
}
