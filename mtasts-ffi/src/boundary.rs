//! The boundary between C and Rust: every exported function runs its body through
//! [`ffi_boundary!`], which catches panics and turns failures into result codes, and takes its
//! parameters through the checks here (NULL, UTF-8, handle type).
//!
//! Handles are boxed Rust values tagged with a per-type magic number in their first four
//! bytes. The tag tells a handle of the expected type from another type's handle (or a freed
//! one, on a best-effort basis), and an *owned* handle (from a `_new`-style call, which the
//! caller frees) from a *borrowed* one (a view inside another handle, which must never be
//! freed): `_free` refuses borrowed handles instead of corrupting the heap.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

pub(crate) use crate::error::run_quiet;
use crate::error::{Failure, mtasts_result, set_last_error};

/// Marks a handle as borrowed (a view inside another handle): never to be freed.
const BORROWED: u32 = 0x8000_0000;

/// The first bytes of every handle: its magic number, then the value. `repr(C)` puts the magic
/// at offset 0, and each handle type asserts that it starts with its `Tagged` (see
/// [`handle!`]), so the magic of any handle can be read through a pointer of any handle type.
#[repr(C)]
pub(crate) struct Tagged<T> {
    magic: u32,
    value: T,
}

impl<T> Tagged<T> {
    pub(crate) fn new(magic: u32, value: T) -> Tagged<T> {
        Tagged { magic, value }
    }

    pub(crate) fn value(&self) -> &T {
        &self.value
    }
}

/// An opaque handle type of the C API.
pub(crate) trait Handle: Sized + 'static {
    /// What the handle holds.
    type Inner;
    /// The magic number of owned handles of this type (never with [`BORROWED`] set).
    const MAGIC: u32;
    /// The C type name, for error messages.
    const NAME: &'static str;
    /// Wraps a tagged value.
    fn from_tagged(tagged: Tagged<Self::Inner>) -> Self;
    /// The tagged value.
    fn tagged(&self) -> &Tagged<Self::Inner>;

    /// A handle the caller will own (and free).
    fn owned(inner: Self::Inner) -> Self {
        Self::from_tagged(Tagged::new(Self::MAGIC, inner))
    }

    /// A handle that lives inside another handle (a view; never freed on its own).
    fn borrowed(inner: Self::Inner) -> Self {
        Self::from_tagged(Tagged::new(Self::MAGIC | BORROWED, inner))
    }

    /// The value.
    fn inner(&self) -> &Self::Inner {
        self.tagged().value()
    }
}

/// Declares an opaque handle type: `handle!(mtasts_x, Inner, 0x4d54_0001)`. The struct itself
/// (with its doc comment, copied into the header as an opaque `typedef struct`) is written
/// next to it.
macro_rules! handle {
    ($ty:ident, $inner:ty, $magic:expr) => {
        impl $crate::boundary::Handle for $ty {
            type Inner = $inner;
            const MAGIC: u32 = $magic;
            const NAME: &'static str = stringify!($ty);
            fn from_tagged(tagged: $crate::boundary::Tagged<$inner>) -> Self {
                $ty(tagged)
            }
            fn tagged(&self) -> &$crate::boundary::Tagged<$inner> {
                &self.0
            }
        }
        // The magic must be the first bytes of the handle (see `Tagged`).
        const _: () = assert!(std::mem::offset_of!($ty, 0) == 0);
    };
}
pub(crate) use handle;

/// Runs the body of an exported function: `Ok(())` → `MTASTS_OK`; `Err(failure)` → its code,
/// its message kept as this thread's last error; a panic → `MTASTS_PANIC`, its message kept the
/// same way. Nothing unwinds into C.
macro_rules! ffi_boundary {
    ($body:block) => {
        $crate::boundary::run(
            move || -> ::std::result::Result<(), $crate::error::Failure> { $body },
        )
    };
}
pub(crate) use ffi_boundary;

/// The function behind [`ffi_boundary!`].
pub(crate) fn run(body: impl FnOnce() -> Result<(), Failure>) -> mtasts_result {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return mtasts_result::MTASTS_OK,
        Ok(Err(failure)) => failure,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            Failure::new(
                mtasts_result::MTASTS_PANIC,
                format!("internal error (a bug in mtasts): {what}"),
            )
        }
    };
    set_last_error(&failure.message);
    failure.code
}

fn null(name: &str) -> Failure {
    Failure::new(
        mtasts_result::MTASTS_NULL_PARAMETER,
        format!("parameter `{name}` is NULL"),
    )
}

/// Reads the magic number of a non-NULL handle pointer.
///
/// # Safety
/// `ptr` points to a live handle of any type of this crate.
unsafe fn magic_of<H>(ptr: *const H) -> u32 {
    // SAFETY: every handle starts with its u32 magic (asserted by `handle!`) and is at least
    // 4-byte aligned (a box of a struct holding a u32).
    unsafe { ptr.cast::<u32>().read() }
}

/// The value behind a borrowed handle parameter: NULL → `MTASTS_NULL_PARAMETER`, another
/// type's (or a freed) handle → `MTASTS_INVALID_HANDLE`.
///
/// # Safety
/// `ptr` is NULL or points to a live handle of this crate, valid for `'a`.
pub(crate) unsafe fn arg_handle<'a, H: Handle>(
    ptr: *const H,
    name: &str,
) -> Result<&'a H::Inner, Failure> {
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-NULL, and the caller promises a live handle.
    let magic = unsafe { magic_of(ptr) };
    if magic & !BORROWED != H::MAGIC {
        return Err(Failure::new(
            mtasts_result::MTASTS_INVALID_HANDLE,
            format!("parameter `{name}` is not a live {} handle", H::NAME),
        ));
    }
    // SAFETY: the magic says it is an `H`.
    Ok(unsafe { &*ptr }.inner())
}

/// Frees an owned handle; NULL is a no-op. A handle of another type, a borrowed one or a freed
/// one is left alone (with a warning logged): freeing it would corrupt the heap.
///
/// # Safety
/// `ptr` is NULL or points to a live handle of this crate that no other thread is using.
pub(crate) unsafe fn free_handle<H: Handle>(ptr: *mut H) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: non-NULL live handle (caller's promise).
    let magic = unsafe { magic_of(ptr) };
    if magic != H::MAGIC {
        let what = if magic == H::MAGIC | BORROWED {
            "a borrowed view owned by another handle"
        } else {
            "not a live handle of this type"
        };
        log::error!(
            "{}_free: ignored a pointer that is {what} (a bug in the caller)",
            H::NAME
        );
        return;
    }
    run_quiet((), || {
        // SAFETY: an owned handle was made by `Box::into_raw` in `Out::write_handle`. The magic
        // is cleared first so a later use of the dangling pointer is more likely caught.
        unsafe {
            ptr.cast::<u32>().write(0);
            drop(Box::from_raw(ptr));
        }
    });
}

/// A NUL-terminated UTF-8 string parameter: NULL → `MTASTS_NULL_PARAMETER`, not UTF-8 →
/// `MTASTS_INVALID_PARAMETER`.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn arg_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-NULL, NUL-terminated (caller's promise).
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| {
        Failure::new(
            mtasts_result::MTASTS_INVALID_PARAMETER,
            format!("parameter `{name}` is not UTF-8: {e}"),
        )
    })
}

/// Like [`arg_str`], but NULL is allowed and gives `None`.
///
/// # Safety
/// As for [`arg_str`].
pub(crate) unsafe fn arg_opt_str<'a>(
    ptr: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded.
        unsafe { arg_str(ptr, name) }.map(Some)
    }
}

/// A `(pointer, length)` byte buffer: NULL with a length above 0 → `MTASTS_NULL_PARAMETER`;
/// NULL with length 0 is the empty buffer.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes valid for `'a`.
pub(crate) unsafe fn arg_bytes<'a>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-NULL, `len` readable bytes (caller's promise).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A `(pointer, length)` array of `T`, with the same rules as [`arg_bytes`].
///
/// # Safety
/// `ptr` is NULL or points to `len` readable `T`s valid for `'a`.
pub(crate) unsafe fn arg_array<'a, T>(
    ptr: *const T,
    len: usize,
    name: &str,
) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-NULL, `len` readable elements (caller's promise).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An output parameter, checked for NULL before any work is done and written last, only on
/// success.
pub(crate) struct Out<T>(*mut T);

/// Checks an output parameter: NULL → `MTASTS_NULL_PARAMETER`.
pub(crate) fn arg_out<T>(ptr: *mut T, name: &str) -> Result<Out<T>, Failure> {
    if ptr.is_null() {
        Err(null(name))
    } else {
        Ok(Out(ptr))
    }
}

impl<T> Out<T> {
    /// Writes the output.
    ///
    /// # Safety
    /// The pointer given to [`arg_out`] is writable.
    pub(crate) unsafe fn write(self, value: T) {
        // SAFETY: non-NULL (checked), writable (caller's promise); `T` is a plain C value.
        unsafe { self.0.write(value) }
    }
}

impl<H: Handle> Out<*mut H> {
    /// Hands a new owned handle to the caller.
    ///
    /// # Safety
    /// As for [`Out::write`].
    pub(crate) unsafe fn write_handle(self, inner: H::Inner) {
        let handle = Box::into_raw(Box::new(H::owned(inner)));
        // SAFETY: forwarded.
        unsafe { self.write(handle) }
    }
}

/// An owned NUL-terminated string handed out as a view (`const char *`) that lives as long as
/// the handle holding it. Interior NUL bytes are kept (the length says where the text ends).
#[derive(Clone, Debug)]
pub(crate) struct CText(Box<[u8]>);

impl CText {
    pub(crate) fn new(text: &str) -> CText {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0);
        CText(bytes.into_boxed_slice())
    }

    /// The text, NUL-terminated.
    pub(crate) fn ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }

    /// The length in bytes, without the terminating NUL.
    pub(crate) fn len(&self) -> usize {
        self.0.len() - 1
    }
}

/// The pointer of an optional text: NULL for `None`.
pub(crate) fn opt_ptr(text: Option<&CText>) -> *const c_char {
    text.map_or(std::ptr::null(), CText::ptr)
}

/// NUL-terminated copies of a fixed list of the core's names (mode names, source names, ...)
/// for the static-string getters, made on first use and kept for the life of the process.
///
/// Lock-free after the first call (a `OnceLock`), so a child forked while another thread is
/// reading a name does not deadlock.
pub(crate) fn name_table(
    cell: &'static std::sync::OnceLock<Vec<std::ffi::CString>>,
    names: impl FnOnce() -> Vec<&'static str>,
) -> &'static [std::ffi::CString] {
    cell.get_or_init(|| {
        names()
            .into_iter()
            // The core's names are ASCII without NUL; an impossible NUL would empty the name.
            .map(|name| std::ffi::CString::new(name).unwrap_or_default())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No panic crosses the boundary: it becomes `MTASTS_PANIC` with its message kept.
    #[test]
    fn panics_are_caught() {
        let rc = run(|| panic!("boom {}", 42));
        assert_eq!(rc, mtasts_result::MTASTS_PANIC);
        let mut buf = [0 as c_char; 128];
        let mut needed = 0;
        // SAFETY: a valid buffer and output.
        let ok =
            unsafe { crate::error::mtasts_last_error(buf.as_mut_ptr(), buf.len(), &mut needed) };
        assert_eq!(ok, mtasts_result::MTASTS_OK);
        // SAFETY: NUL-terminated by mtasts_last_error.
        let message = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert_eq!(message, "internal error (a bug in mtasts): boom 42");
        assert_eq!(run_quiet(7, || panic!("quiet")), 7);
    }

    #[test]
    fn texts_keep_their_length() {
        let text = CText::new("a\0b");
        assert_eq!(text.len(), 3);
        // SAFETY: NUL-terminated.
        assert_eq!(unsafe { CStr::from_ptr(text.ptr()) }.to_bytes(), b"a");
    }
}
