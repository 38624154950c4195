//! Shared helpers of the mtasts-ffi tests: C strings, the last error, and a fixture with a
//! resolver pointed at the hermetic test world.
#![allow(unsafe_code, dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use mtasts::*;
use mtasts_testworld::{World, WorldSpec};

/// A C string.
pub fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// A NUL-terminated string that is not UTF-8.
pub const BAD_UTF8: &[u8] = b"bad\xff\xfeutf8\0";

/// [`BAD_UTF8`] as a parameter.
pub fn bad() -> *const c_char {
    BAD_UTF8.as_ptr().cast()
}

/// This thread's last error message.
pub fn last_error() -> String {
    let mut needed = 0usize;
    // SAFETY: asks for the length only.
    let rc = unsafe { mtasts_last_error(ptr::null_mut(), 0, &mut needed) };
    assert_eq!(rc, mtasts_result::MTASTS_OK);
    let mut buf = vec![0u8; needed + 1];
    // SAFETY: `buf` has `needed + 1` bytes.
    let rc = unsafe { mtasts_last_error(buf.as_mut_ptr().cast(), buf.len(), &mut needed) };
    assert_eq!(rc, mtasts_result::MTASTS_OK);
    CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts a call returned `want`, and that a failure left a message mentioning `mention`.
#[track_caller]
pub fn expect(rc: mtasts_result, want: mtasts_result, mention: &str) {
    let message = last_error();
    assert_eq!(rc, want, "last error: {message}");
    if want != mtasts_result::MTASTS_OK {
        assert!(
            message.contains(mention),
            "{want:?}: message {message:?} should mention {mention:?}"
        );
    }
}

/// Asserts success.
#[track_caller]
pub fn ok(rc: mtasts_result) {
    expect(rc, mtasts_result::MTASTS_OK, "");
}

/// A string view returned by the library.
pub fn text(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: the library returns NUL-terminated strings.
        Some(unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned())
    }
}

/// The test world with every scenario domain, and a resolver pointed at it.
pub struct Fixture {
    pub world: World,
    pub config: *mut mtasts_config,
    pub resolver: *mut mtasts_resolver,
}

impl Fixture {
    pub fn new() -> Fixture {
        let world = World::from_spec(&WorldSpec::bundled().unwrap()).unwrap();
        let mut config = ptr::null_mut();
        let mut resolver = ptr::null_mut();
        // SAFETY: valid pointers and C strings throughout.
        unsafe {
            ok(mtasts_config_new(&mut config));
            ok(mtasts_config_add_nameserver(
                config,
                c(&world.dns_addr().to_string()).as_ptr(),
            ));
            let roots = c(world.ca_pem_path().to_str().unwrap());
            ok(mtasts_config_set_trust_roots(config, roots.as_ptr()));
            ok(mtasts_config_set_policy_port(config, world.https_port()));
            ok(mtasts_config_set_fetch_timeout_ms(config, 3000));
            ok(mtasts_config_set_dns_timeout_ms(config, 2000));
            ok(mtasts_resolver_new(config, &mut resolver));
        }
        Fixture {
            world,
            config,
            resolver,
        }
    }

    /// Resolves `domain`; the caller frees the resolution.
    pub fn resolve(&self, domain: &str) -> *mut mtasts_resolution {
        let mut resolution = ptr::null_mut();
        // SAFETY: valid pointers.
        ok(unsafe { mtasts_resolver_resolve(self.resolver, c(domain).as_ptr(), &mut resolution) });
        assert!(!resolution.is_null());
        resolution
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // SAFETY: owned handles, freed once.
        unsafe {
            mtasts_resolver_free(self.resolver);
            mtasts_config_free(self.config);
        }
    }
}
