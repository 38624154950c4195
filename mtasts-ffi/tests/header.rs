//! The committed header `include/mtasts.h` is what cbindgen generates from this crate with
//! `cbindgen.toml`. Fails on any difference; `MTASTS_UPDATE_HEADER=1` (what `make header`
//! sets) rewrites the file instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn generate() -> String {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("config");
    // lib.rs declares the modules; cbindgen follows them.
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"));
    let bindings = builder.generate().expect("cbindgen");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("UTF-8 header")
}

#[test]
fn committed_header_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/mtasts.h");
    let fresh = generate();
    if std::env::var_os("MTASTS_UPDATE_HEADER").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write include/mtasts.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let line = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()))
            + 1;
        panic!(
            "include/mtasts.h differs from the cbindgen output (first difference at line {line}); \
             run `make header` and commit the result"
        );
    }
}
