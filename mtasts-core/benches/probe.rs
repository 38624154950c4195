//! The STARTTLS probe against a loopback MX (test-world SMTP server with a test-CA
//! certificate): banner, EHLO, STARTTLS, TLS handshake, certificate check, QUIT.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mtasts_core::{CertVerifier, ProbeOptions, ProbeOutcome, probe_addrs};
use mtasts_testworld::{CertSpec, SmtpBehaviour, SmtpServer, TestCa};

fn probe_loopback(c: &mut Criterion) {
    let ca = TestCa::new().unwrap();
    let identity = ca.issue(&CertSpec::dns(["mail.example.com"])).unwrap();
    let server = SmtpServer::start(SmtpBehaviour::Starttls(identity)).unwrap();
    let verifier = CertVerifier::from_der_roots(std::slice::from_ref(ca.der())).unwrap();
    let mut options = ProbeOptions::default();
    options.timeout = Duration::from_secs(5);
    let run = || probe_addrs("mail.example.com", &[server.addr()], &verifier, &options).unwrap();
    assert_eq!(run().outcome, ProbeOutcome::Pass);
    let mut group = c.benchmark_group("probe");
    group.sample_size(20);
    group.bench_function("probe_loopback", |b| b.iter(run));
    group.finish();
}

criterion_group!(benches, probe_loopback);
criterion_main!(benches);
