//! `mtasts-testworld [--world FILE]`: runs the test world for tests in other languages.
//!
//! Starts a [`World`] with every domain of FILE (default: the crate's `world.json`), prints one
//! JSON line `{"dns":"127.0.0.1:PORT","https_port":PORT,"ca_pem":"/tmp/….pem"}` on stdout, then
//! serves until stdin reaches EOF or SIGTERM/SIGINT/SIGHUP arrives, shuts down and deletes the
//! CA file. Exit status 0 after a clean shutdown, 2 for bad arguments, 1 if the world fails.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use mtasts_testworld::{World, WorldSpec};

const USAGE: &str = "usage: mtasts-testworld [--world FILE]\n\
    Serves the test world until stdin reaches EOF or SIGTERM; prints one JSON line first.";

fn main() -> ExitCode {
    let mut world_file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("world.json");
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--world") => match args.next() {
                Some(path) => world_file = PathBuf::from(path),
                None => return usage_error("--world needs a FILE"),
            },
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => return usage_error(&format!("unexpected argument {arg:?}")),
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("mtasts-testworld: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }

    let world = match WorldSpec::from_file(&world_file).and_then(|spec| World::from_spec(&spec)) {
        Ok(world) => world,
        Err(e) => {
            eprintln!("mtasts-testworld: {}: {e}", world_file.display());
            return ExitCode::FAILURE;
        }
    };
    let line = serde_json::json!({
        "dns": world.dns_addr().to_string(),
        "https_port": world.https_port(),
        "ca_pem": world.ca_pem_path().to_string_lossy(),
    });
    let mut stdout = io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    // Stdin is watched on its own thread: a blocking read cannot also wait for a signal. When
    // a signal ends the process first, this thread is simply abandoned at exit.
    let stdin_stop = Arc::clone(&stop);
    let _watcher = thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = io::stdin().lock();
            while let Ok(n) = stdin.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
            stdin_stop.store(true, Ordering::SeqCst);
        });

    while !stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(50));
    }
    drop(world);
    ExitCode::SUCCESS
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("mtasts-testworld: {message}\n{USAGE}");
    ExitCode::from(2)
}
