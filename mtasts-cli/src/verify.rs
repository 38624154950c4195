//! `mtasts verify-cert`: the certificate check of a chain in a file, for MX host `--mx`. The
//! check is `mtasts-core`'s (`CertVerifier`), and so is its JSON view (`CertCheckView`).
//!
//! # `mtasts verify-cert --json`
//!
//! `{"mx", "at" (RFC 3339), "result" ("pass" or "fail"), "result_type", "reason_code",
//! "detail"}`. Exit status: 0 pass, 1 fail, 2 usage (unreadable file, no certificate in it,
//! bad `--mx` or `--at`).

use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;
use mtasts_core::{CertCheck, CertCheckView, CertVerifier, parse_time};

use crate::output;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, NetOptions, config};

/// Arguments of `mtasts verify-cert`.
#[derive(Args, Debug)]
pub struct VerifyCertArgs {
    /// The MX host name the certificate must be valid for.
    #[arg(long, value_name = "HOST")]
    mx: String,
    /// Check validity at this time (RFC 3339, e.g. 2030-01-01T00:00:00Z, or Unix seconds)
    /// instead of now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The chain, leaf first: PEM (CERTIFICATE blocks) or concatenated DER; `-` for stdin.
    #[arg(value_name = "CHAIN")]
    chain: PathBuf,
}

/// `mtasts verify-cert --mx HOST [--at TIME] CHAIN`.
pub fn verify_cert(net: &NetOptions, args: &VerifyCertArgs) -> u8 {
    let setup = || -> Result<_, String> {
        let roots = config(net)?.trust_roots;
        let verifier = CertVerifier::new(&roots).map_err(|e| e.to_string())?;
        let at = match &args.at {
            Some(t) => parse_time(t).map_err(|e| format!("--at: {e}"))?,
            None => SystemTime::now(),
        };
        let mut input = Vec::new();
        if args.chain.as_os_str() == "-" {
            io::stdin()
                .read_to_end(&mut input)
                .map_err(|e| format!("reading stdin: {e}"))?;
        } else {
            input = fs::read(&args.chain).map_err(|e| format!("{}: {e}", args.chain.display()))?;
        }
        let check = verifier
            .check_encoded(&input, &args.mx, at)
            .map_err(|e| e.to_string())?;
        Ok((check, at))
    };
    let (check, at) = match setup() {
        Ok(done) => done,
        Err(e) => {
            eprintln!("mtasts: {e}");
            return EXIT_USAGE;
        }
    };
    let failure = check.failure();
    let report = CertCheckView::new(&check, &args.mx, at);
    let written = output::to_stdout(|out| {
        if args.json {
            return output::json(out, &report);
        }
        match failure {
            None => writeln!(out, "pass: the chain is valid for {}", args.mx),
            Some(f) => writeln!(out, "fail: {f}"),
        }
    });
    match (written, check) {
        (true, CertCheck::Valid) => EXIT_OK,
        _ => EXIT_FAILURE,
    }
}
