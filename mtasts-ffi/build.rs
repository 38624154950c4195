//! Gives the shared library its soname, `libmtasts.so.<major>`, so programs linked against it
//! keep loading the ABI-compatible library after `make install` of a newer release.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmtasts.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
