//! What the command's test files share.

use std::process::Command;

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
