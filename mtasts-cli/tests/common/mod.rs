//! What the command's test files share.
// Each test binary compiles this module and uses part of it.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use mtasts_testworld::World;

/// `mtasts` pointed at `world` (its DNS, CA and HTTPS port), short deadlines, a memory cache.
pub fn mtasts(world: &World) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.arg("--nameserver")
        .arg(world.dns_addr().to_string())
        .arg("--trust-roots")
        .arg(world.ca_pem_path())
        .arg("--policy-port")
        .arg(world.https_port().to_string())
        .args(["--timeout", "3", "--dns-timeout", "2", "--cache", "memory"]);
    cmd
}

/// Runs `cmd` with `stdin` as its standard input (empty when `None`) and collects its output.
pub fn run_with_stdin(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mtasts");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for mtasts")
}
