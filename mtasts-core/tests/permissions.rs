//! The SQLite cache's file and directory permissions (issue 10 item 8): created 0750/0640
//! whatever the umask, never through a symbolic link, and refused where others could tamper
//! with it. One test, run in a forked child, because the umask is per process.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use mtasts_core::{Domain, Entry, SqliteStore, Store};
use support::{t0, temp_dir};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The error opening `path` gives, as text.
fn refused(path: &Path) -> String {
    let e = SqliteStore::open(path).expect_err("must be refused");
    assert_eq!(e.kind(), "cache", "{e}");
    e.to_string()
}

fn scenarios() {
    let base = temp_dir("perms");

    // Under umask 0 (as Exim runs): directories 0750, the file and its WAL files 0640.
    let path = base.join("new/sub/cache.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .put(Entry::new(Domain::new("example.com").unwrap(), t0()))
        .unwrap();
    assert_eq!(mode(&base.join("new")), 0o750);
    assert_eq!(mode(&base.join("new/sub")), 0o750);
    assert_eq!(mode(&path), 0o640);
    for suffix in ["-wal", "-shm"] {
        let side = base.join(format!("new/sub/cache.db{suffix}"));
        assert!(side.exists(), "{suffix}");
        assert_eq!(mode(&side) & 0o037, 0, "{suffix}: {:o}", mode(&side));
    }
    drop(store);

    // A hostile directory: writable by others, not sticky.
    let hostile = base.join("hostile");
    std::fs::create_dir(&hostile).unwrap();
    chmod(&hostile, 0o777);
    let why = refused(&hostile.join("cache.db"));
    assert!(why.contains("writable by group or others"), "{why}");
    assert!(!hostile.join("cache.db").exists(), "nothing created there");
    // Group-writable is refused as well; sticky and world-writable (like /tmp) is accepted.
    chmod(&hostile, 0o770);
    refused(&hostile.join("cache.db"));
    chmod(&hostile, 0o1777);
    SqliteStore::open(hostile.join("cache.db")).unwrap();

    // A file writable by others is refused; one readable by others is tightened.
    let dir = base.join("files");
    std::fs::create_dir(&dir).unwrap(); // 0777 under umask 0: refused until tightened
    assert!(refused(&dir.join("cache.db")).contains("writable by group or others"));
    chmod(&dir, 0o750);
    let file = dir.join("cache.db");
    drop(SqliteStore::open(&file).unwrap());
    chmod(&file, 0o666);
    assert!(refused(&file).contains("writable by group or others"));
    chmod(&file, 0o644);
    drop(SqliteStore::open(&file).unwrap());
    assert_eq!(mode(&file), 0o640);

    // A symbolic link in place of the file (or of its WAL) is never followed.
    let target = dir.join("elsewhere.db");
    drop(SqliteStore::open(&target).unwrap());
    let link = dir.join("link.db");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(refused(&link).contains("symbolic link"));
    let wal_link = dir.join("cache.db-wal");
    let _ = std::fs::remove_file(&wal_link);
    std::os::unix::fs::symlink(&target, &wal_link).unwrap();
    assert!(refused(&file).contains("symbolic link"));
    std::fs::remove_file(&wal_link).unwrap();

    // Owned by another user (as root, the test can make such files).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let nobody = 65534;
        let owned = dir.join("owned.db");
        drop(SqliteStore::open(&owned).unwrap());
        std::os::unix::fs::chown(&owned, Some(nobody), None).unwrap();
        let why = refused(&owned);
        assert!(why.contains("belongs to uid 65534"), "{why}");
        let foreign_dir = base.join("foreign");
        std::fs::create_dir(&foreign_dir).unwrap();
        chmod(&foreign_dir, 0o755);
        std::os::unix::fs::chown(&foreign_dir, Some(nobody), None).unwrap();
        let why = refused(&foreign_dir.join("cache.db"));
        assert!(why.contains("belongs to uid 65534"), "{why}");
        assert_eq!(std::fs::metadata(&foreign_dir).unwrap().uid(), nobody);
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn cache_files_are_private_and_tamper_proof_under_umask_0() {
    // SAFETY: the child sets its umask, runs the scenarios and `_exit`s; it never returns into
    // the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(|| {
            // SAFETY: umask has no preconditions.
            unsafe { libc::umask(0) };
            scenarios();
        })
        .is_ok();
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let status = support::wait_child(pid, Duration::from_secs(60));
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the scenarios failed in the child (status {status}); its panic message is above"
    );
}
