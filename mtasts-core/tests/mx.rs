//! MX decisions under a policy `mx: mail.example.com`, `mx: *.example.net` (scenarios S-50…S-64)
//! through the three layers an MTA uses: the verdict API (`Verdict`, `MxPlan`), the certificate
//! check of a chain it already has (`CertVerifier`), and the STARTTLS probe against loopback
//! SMTP servers of the test world (`probe`, `probe_addrs`). Plus the probe's handling of hostile
//! servers, each ending within its deadline, and the shared vectors of `testdata/verdicts.json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtasts_core::{
    CertCheck, CertVerifier, CertificateDer, Delivery, Domain, Error, FailureReason, HickoryDns,
    MxFailure, MxPlan, MxRecord, Policy, ProbeOptions, ProbeOutcome, ProbeReport, ResultType,
    TrustRoots, Verdict, parse_chain, probe, probe_addrs,
};
use mtasts_testworld::{
    CertSpec, DnsServer, Identity, SmtpBehaviour, SmtpServer, TestCa, Zone, ZoneRecord,
};
use serde::Deserialize;

// ------------------------------------------------------------------------------- fixtures

fn policy(mode: &str) -> Policy {
    Policy::parse(&format!(
        "version: STSv1\nmode: {mode}\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n"
    ))
    .unwrap()
}

/// A trusted CA, an untrusted one, and a verifier trusting only the first.
struct Pki {
    ca: TestCa,
    untrusted: TestCa,
    verifier: CertVerifier,
}

impl Pki {
    fn new() -> Pki {
        let ca = TestCa::new().unwrap();
        let untrusted = TestCa::with_name("mtasts untrusted CA").unwrap();
        let verifier = CertVerifier::from_der_roots(std::slice::from_ref(ca.der())).unwrap();
        Pki {
            ca,
            untrusted,
            verifier,
        }
    }

    fn issue(&self, spec: CertSpec) -> Identity {
        self.ca.issue(&spec).unwrap()
    }

    fn check(&self, identity: &Identity, host: &str) -> CertCheck {
        self.verifier
            .check(identity.chain_der(), host, SystemTime::now())
            .unwrap()
    }

    /// Probes `host` at a loopback SMTP server presenting `identity`, SNI and certificate
    /// checked against `host`.
    fn probe(&self, identity: &Identity, host: &str) -> (ProbeReport, SmtpServer) {
        let server = SmtpServer::start(SmtpBehaviour::Starttls(identity.clone())).unwrap();
        let report = self.probe_server(&server, host, Duration::from_secs(10));
        (report, server)
    }

    fn probe_server(&self, server: &SmtpServer, host: &str, timeout: Duration) -> ProbeReport {
        probe_addrs(host, &[server.addr()], &self.verifier, &options(timeout)).unwrap()
    }
}

fn options(timeout: Duration) -> ProbeOptions {
    let mut options = ProbeOptions::default();
    options.timeout = timeout;
    options
}

fn code(failure: Option<&MxFailure>) -> Option<&'static str> {
    failure.map(MxFailure::reason_code)
}

fn failure_of(report: &ProbeReport) -> &MxFailure {
    match &report.outcome {
        ProbeOutcome::Fail(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The probe passed, over TLS 1.2+, with SNI = the normalised MX name, and saw the chain.
fn assert_probe_pass(report: &ProbeReport, server: &SmtpServer, identity: &Identity, sni: &str) {
    assert_eq!(report.outcome, ProbeOutcome::Pass, "{report:#?}");
    assert!(report.starttls_offered);
    assert!(
        matches!(report.tls_version.as_deref(), Some("TLSv1.2" | "TLSv1.3")),
        "{:?}",
        report.tls_version
    );
    assert!(report.cipher_suite.is_some());
    assert_eq!(report.chain, identity.chain_der());
    assert_eq!(server.sni_names(), [sni], "R-CERT-1: SNI = MX host name");
    assert_eq!(report.address, Some(server.addr()));
    assert_eq!(
        report.banner.len(),
        2,
        "multi-line banner read: {:?}",
        report.banner
    );
    assert!(report.timings.handshake.is_some());
    // QUIT was sent inside TLS (after STARTTLS) before the probe ended.
    let commands = server.commands();
    assert_eq!(commands.first().map(String::as_str), Some("EHLO localhost"));
    assert!(commands.iter().any(|c| c == "STARTTLS"));
}

// ------------------------------------------------------------------- S-50 … S-64, by row

/// S-50: enforce, `mail.example.com`, valid certificate: deliver; TLS required and verified
/// against `mail.example.com`.
#[test]
fn s50_enforce_matching_mx_valid_certificate_delivers() {
    let enforce = policy("enforce");
    let verdict = Verdict::for_mx(Some(&enforce), "mail.example.com");
    let Verdict::RequireTls { mx_host } = &verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(mx_host.as_str(), "mail.example.com");
    assert!(verdict.requires_tls());

    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mail.example.com"]));
    assert_eq!(pki.check(&id, "mail.example.com"), CertCheck::Valid);
    assert_eq!(
        verdict.decide(pki.check(&id, "mail.example.com").into_failure()),
        Delivery::Deliver { report: None }
    );

    // The probe, with the MX address from DNS (A record -> 127.0.0.1) and a port override.
    let server = SmtpServer::start(SmtpBehaviour::Starttls(id.clone())).unwrap();
    let zone = Zone::new();
    zone.add_record("mail.example.com", ZoneRecord::a(Ipv4Addr::LOCALHOST));
    let dns_server = DnsServer::start(zone).unwrap();
    let dns = HickoryDns::with_nameservers(&[dns_server.addr()], Duration::from_secs(2)).unwrap();
    let mut opts = options(Duration::from_secs(10));
    opts.port = server.port();
    let report = probe("mail.example.com", &dns, &pki.verifier, &opts).unwrap();
    assert_probe_pass(&report, &server, &id, "mail.example.com");
    assert!(report.timings.resolved.is_some());
    assert_eq!(
        verdict.decide(report.outcome.failure().cloned()),
        Delivery::Deliver { report: None }
    );
}

/// S-51: `MAIL.Example.COM.`: case and trailing dot ignored, for the pattern, the certificate
/// and SNI.
#[test]
fn s51_case_and_trailing_dot_are_ignored() {
    let enforce = policy("enforce");
    let verdict = Verdict::for_mx(Some(&enforce), "MAIL.Example.COM.");
    assert_eq!(
        verdict,
        Verdict::RequireTls {
            mx_host: Domain::new("mail.example.com").unwrap()
        }
    );
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mail.example.com"]));
    assert!(pki.check(&id, "MAIL.Example.COM.").is_valid());
    let (report, server) = pki.probe(&id, "MAIL.Example.COM.");
    assert_probe_pass(&report, &server, &id, "mail.example.com");
    assert_eq!(report.mx_host.as_str(), "mail.example.com");
    assert!(
        verdict
            .decide(report.outcome.failure().cloned())
            .is_deliver()
    );
}

/// S-52: `mx1.example.net` under `*.example.net`, valid certificate: deliver.
#[test]
fn s52_wildcard_pattern_matching_mx_delivers() {
    let verdict = Verdict::for_mx(Some(&policy("enforce")), "mx1.example.net");
    assert!(verdict.requires_tls());
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mx1.example.net"]));
    assert!(pki.check(&id, "mx1.example.net").is_valid());
    let (report, server) = pki.probe(&id, "mx1.example.net");
    assert_probe_pass(&report, &server, &id, "mx1.example.net");
    assert!(verdict.decide(None).is_deliver());
}

/// S-53: `a.mx1.example.net`: two labels under the wildcard: do not use this MX;
/// `validation-failure` (mx-mismatch); try the next.
#[test]
fn s53_two_labels_under_wildcard_is_a_mismatch_and_the_next_mx_is_tried() {
    let enforce = policy("enforce");
    let verdict = Verdict::for_mx(Some(&enforce), "a.mx1.example.net");
    let failure = verdict.failure().unwrap();
    assert_eq!(failure.result_type(), ResultType::ValidationFailure);
    assert_eq!(failure.reason_code(), "mx-mismatch");
    assert!(!verdict.may_use());
    assert!(matches!(verdict.decide(None), Delivery::TryNext { .. }));

    let mx = [
        MxRecord {
            preference: 10,
            exchange: "a.mx1.example.net".into(),
        },
        MxRecord {
            preference: 20,
            exchange: "mail.example.com".into(),
        },
    ];
    let plan = MxPlan::new(Some(&enforce), &Domain::new("example.com").unwrap(), &mx);
    assert_eq!(plan.skipped[0].host, "a.mx1.example.net");
    assert_eq!(plan.skipped[0].failure.reason_code(), "mx-mismatch");
    assert_eq!(
        plan.usable[0].host, "mail.example.com",
        "the next MX is tried"
    );
    assert!(!plan.defer);
}

/// S-54: `example.net` is not matched by `*.example.net`.
#[test]
fn s54_wildcard_base_is_a_mismatch() {
    let verdict = Verdict::for_mx(Some(&policy("enforce")), "example.net");
    assert_eq!(code(verdict.failure()), Some("mx-mismatch"));
    assert!(!verdict.may_use());
}

/// S-55: `evil.com`: mismatch; an MX list of only such hosts defers, never bounces.
#[test]
fn s55_unrelated_host_is_a_mismatch_and_all_mismatching_defers() {
    let enforce = policy("enforce");
    let verdict = Verdict::for_mx(Some(&enforce), "evil.com");
    assert_eq!(code(verdict.failure()), Some("mx-mismatch"));
    let mx = [
        MxRecord {
            preference: 10,
            exchange: "evil.com".into(),
        },
        MxRecord {
            preference: 20,
            exchange: "example.net".into(),
        },
    ];
    let plan = MxPlan::new(Some(&enforce), &Domain::new("example.com").unwrap(), &mx);
    assert!(plan.usable.is_empty());
    assert!(plan.defer, "R-APPLY-1: defer (4xx), never bounce");
}

/// S-56: no STARTTLS offered: do not deliver; `starttls-not-supported`.
#[test]
fn s56_no_starttls_is_starttls_not_supported() {
    let verdict = Verdict::for_mx(Some(&policy("enforce")), "mail.example.com");
    // An MTA doing its own SMTP reports what it saw:
    let seen = MxFailure::new(FailureReason::StarttlsNotOffered, "no STARTTLS in EHLO");
    let delivery = verdict.decide(Some(seen));
    assert!(!delivery.is_deliver());
    assert_eq!(
        delivery.failure().unwrap().result_type(),
        ResultType::StarttlsNotSupported
    );

    let pki = Pki::new();
    let server = SmtpServer::start(SmtpBehaviour::NoStarttls).unwrap();
    let report = pki.probe_server(&server, "mail.example.com", Duration::from_secs(10));
    assert!(!report.starttls_offered);
    let failure = failure_of(&report);
    assert_eq!(failure.result_type(), ResultType::StarttlsNotSupported);
    assert_eq!(failure.reason_code(), "starttls-not-offered");
    assert!(report.chain.is_empty());
    assert_eq!(server.tls_handshakes(), 0);
    assert_eq!(
        server.commands(),
        ["EHLO localhost", "QUIT"],
        "no STARTTLS attempted"
    );
    let delivery = verdict.decide(report.outcome.failure().cloned());
    assert_eq!(
        delivery,
        Delivery::TryNext {
            failure: failure.clone()
        }
    );
}

/// S-57: expired certificate: do not deliver; `certificate-expired`.
#[test]
fn s57_expired_certificate() {
    let verdict = Verdict::for_mx(Some(&policy("enforce")), "mail.example.com");
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mail.example.com"]).expired());
    let check = pki.check(&id, "mail.example.com");
    let failure = check.failure().unwrap();
    assert_eq!(failure.result_type(), ResultType::CertificateExpired);
    assert_eq!(failure.reason_code(), "certificate-expired");
    assert!(failure.detail().contains("2001-01-01"), "{failure}");
    assert!(!verdict.decide(check.into_failure()).is_deliver());

    let (report, _server) = pki.probe(&id, "mail.example.com");
    assert_eq!(code(report.outcome.failure()), Some("certificate-expired"));
    assert_eq!(report.chain, id.chain_der(), "the chain is shown");
    let delivery = verdict.decide(report.outcome.failure().cloned());
    assert_eq!(
        delivery.failure().unwrap().result_type(),
        ResultType::CertificateExpired
    );
    assert!(!delivery.is_deliver());
}

/// S-58: a certificate from an untrusted CA: do not deliver; `certificate-not-trusted`.
#[test]
fn s58_untrusted_ca() {
    let verdict = Verdict::for_mx(Some(&policy("enforce")), "mail.example.com");
    let pki = Pki::new();
    let id = pki
        .untrusted
        .issue(&CertSpec::dns(["mail.example.com"]))
        .unwrap();
    let check = pki.check(&id, "mail.example.com");
    assert_eq!(
        check.failure().unwrap().result_type(),
        ResultType::CertificateNotTrusted
    );
    assert_eq!(code(check.failure()), Some("certificate-not-trusted"));
    assert!(!verdict.decide(check.into_failure()).is_deliver());

    let (report, _server) = pki.probe(&id, "mail.example.com");
    assert_eq!(
        code(report.outcome.failure()),
        Some("certificate-not-trusted")
    );
    assert!(
        !verdict
            .decide(report.outcome.failure().cloned())
            .is_deliver()
    );
}

/// S-59: valid for `other.example.com` only: do not deliver; `certificate-host-mismatch`.
#[test]
fn s59_certificate_for_another_name() {
    let verdict = Verdict::for_mx(Some(&policy("enforce")), "mail.example.com");
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["other.example.com"]));
    let check = pki.check(&id, "mail.example.com");
    let failure = check.failure().unwrap();
    assert_eq!(failure.result_type(), ResultType::CertificateHostMismatch);
    assert_eq!(failure.reason_code(), "certificate-host-mismatch");
    assert!(failure.detail().contains("other.example.com"), "{failure}");
    assert!(!verdict.decide(check.into_failure()).is_deliver());

    let (report, server) = pki.probe(&id, "mail.example.com");
    assert_eq!(
        code(report.outcome.failure()),
        Some("certificate-host-mismatch")
    );
    assert_eq!(server.sni_names(), ["mail.example.com"]);
    assert!(
        !verdict
            .decide(report.outcome.failure().cloned())
            .is_deliver()
    );
}

/// S-60: the name only in the subject CN, no SAN: do not deliver; `certificate-host-mismatch`
/// (R-CERT-3: no CN fallback).
#[test]
fn s60_cn_only_certificate_is_a_host_mismatch() {
    let verdict = Verdict::for_mx(Some(&policy("enforce")), "mail.example.com");
    let pki = Pki::new();
    let id = pki.issue(CertSpec::cn_only("mail.example.com"));
    let check = pki.check(&id, "mail.example.com");
    let failure = check.failure().unwrap();
    assert_eq!(failure.result_type(), ResultType::CertificateHostMismatch);
    assert_eq!(failure.reason_code(), "certificate-no-san");
    assert!(!verdict.decide(check.into_failure()).is_deliver());

    let (report, _server) = pki.probe(&id, "mail.example.com");
    assert_eq!(
        report.outcome.failure().unwrap().result_type(),
        ResultType::CertificateHostMismatch
    );
    assert!(
        !verdict
            .decide(report.outcome.failure().cloned())
            .is_deliver()
    );
}

/// S-61: `mx1.example.net` with a wildcard certificate `*.example.net`: deliver.
#[test]
fn s61_wildcard_certificate_delivers() {
    let verdict = Verdict::for_mx(Some(&policy("enforce")), "mx1.example.net");
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["*.example.net"]));
    assert!(pki.check(&id, "mx1.example.net").is_valid());
    // RFC 6125 §6.4.3: the wildcard covers exactly one label.
    assert_eq!(
        code(pki.check(&id, "a.mx1.example.net").failure()),
        Some("certificate-host-mismatch")
    );
    assert_eq!(
        code(pki.check(&id, "example.net").failure()),
        Some("certificate-host-mismatch")
    );
    let (report, server) = pki.probe(&id, "mx1.example.net");
    assert_probe_pass(&report, &server, &id, "mx1.example.net");
    assert!(
        verdict
            .decide(report.outcome.failure().cloned())
            .is_deliver()
    );
}

/// S-62: `a.mx1.example.net`: mismatch; the policy pattern decides before the certificate
/// (even one that would be valid for it).
#[test]
fn s62_pattern_decides_before_the_certificate() {
    let verdict = Verdict::for_mx(Some(&policy("enforce")), "a.mx1.example.net");
    assert_eq!(code(verdict.failure()), Some("mx-mismatch"));
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["a.mx1.example.net"]));
    let check = pki.check(&id, "a.mx1.example.net");
    assert!(check.is_valid(), "the certificate alone would pass");
    let delivery = verdict.decide(check.into_failure());
    assert_eq!(code(delivery.failure()), Some("mx-mismatch"));
    assert!(!delivery.is_deliver());
    // Even a probe that passes does not change that.
    let (report, _server) = pki.probe(&id, "a.mx1.example.net");
    assert_eq!(report.outcome, ProbeOutcome::Pass);
    assert!(
        !verdict
            .decide(report.outcome.failure().cloned())
            .is_deliver()
    );
}

/// S-63: testing, `evil.com`, untrusted certificate: deliver; the failure is recorded for
/// TLS-RPT.
#[test]
fn s63_testing_delivers_and_records_the_failure() {
    let testing = policy("testing");
    let verdict = Verdict::for_mx(Some(&testing), "evil.com");
    let Verdict::Testing { would_fail } = &verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(code(would_fail.as_ref()), Some("mx-mismatch"));
    assert!(verdict.may_use() && !verdict.requires_tls() && verdict.reports_failures());

    let pki = Pki::new();
    let id = pki.untrusted.issue(&CertSpec::dns(["evil.com"])).unwrap();
    let check = pki.check(&id, "evil.com");
    assert_eq!(code(check.failure()), Some("certificate-not-trusted"));
    let delivery = verdict.decide(check.into_failure());
    assert!(delivery.is_deliver());
    assert_eq!(code(delivery.failure()), Some("mx-mismatch"), "recorded");

    let (report, _server) = pki.probe(&id, "evil.com");
    assert_eq!(
        code(report.outcome.failure()),
        Some("certificate-not-trusted")
    );
    let delivery = verdict.decide(report.outcome.failure().cloned());
    assert!(delivery.is_deliver());
    assert!(delivery.failure().is_some(), "failure recorded for TLS-RPT");

    // Testing with a matching MX records the certificate failure itself.
    let matching = Verdict::for_mx(Some(&testing), "mail.example.com");
    let (report, _server) = pki.probe(&id, "mail.example.com");
    let delivery = matching.decide(report.outcome.failure().cloned());
    assert!(delivery.is_deliver());
    assert_eq!(
        delivery.failure().unwrap().result_type(),
        ResultType::CertificateNotTrusted
    );
}

/// S-64: mode none (or no policy), anything: deliver; nothing recorded.
#[test]
fn s64_none_delivers_and_records_nothing() {
    let none = policy("none");
    let pki = Pki::new();
    let id = pki.untrusted.issue(&CertSpec::dns(["other.org"])).unwrap();
    for p in [Some(&none), None] {
        for host in ["evil.com", "mail.example.com", "", "a.mx1.example.net"] {
            let verdict = Verdict::for_mx(p, host);
            assert_eq!(verdict, Verdict::NoRequirement);
            assert!(!verdict.requires_tls() && !verdict.reports_failures());
            let check = pki.check(&id, "evil.com");
            assert_eq!(
                verdict.decide(check.into_failure()),
                Delivery::Deliver { report: None }
            );
        }
    }
    let (report, _server) = pki.probe(&id, "evil.com");
    assert!(report.outcome.failure().is_some());
    assert_eq!(
        Verdict::for_mx(Some(&none), "evil.com").decide(report.outcome.failure().cloned()),
        Delivery::Deliver { report: None }
    );
    let plan = MxPlan::new(Some(&none), &Domain::new("example.com").unwrap(), &[]);
    assert!(plan.skipped.is_empty() && !plan.defer);
}

// ------------------------------------------------------------------- shared vectors

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictVectors {
    #[allow(dead_code)]
    description: String,
    policy_mx: Vec<String>,
    cases: Vec<VerdictCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictCase {
    scenario: String,
    rule: String,
    mode: Option<String>,
    mx_host: String,
    tls_failure: Option<String>,
    verdict: String,
    mx_host_normalized: Option<String>,
    verdict_failure: Option<String>,
    delivery: String,
    report: Option<String>,
    report_result_type: Option<String>,
}

/// `testdata/verdicts.json`, shared with the C and Python tests.
#[test]
fn verdict_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/verdicts.json");
    let v: VerdictVectors = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(v.cases.len() >= 20);
    let mut scenarios: Vec<&str> = v.cases.iter().map(|c| c.scenario.as_str()).collect();
    scenarios.dedup();
    for n in 50..=64 {
        assert!(
            scenarios.contains(&format!("S-{n}").as_str()),
            "S-{n} has a vector"
        );
    }
    for (i, case) in v.cases.iter().enumerate() {
        let what = format!(
            "cases[{i}] {} {} {:?}",
            case.scenario, case.rule, case.mx_host
        );
        let policy = case.mode.as_ref().map(|mode| {
            let mx: String = v.policy_mx.iter().map(|p| format!("mx: {p}\n")).collect();
            Policy::parse(&format!(
                "version: STSv1\nmode: {mode}\n{mx}max_age: 86400\n"
            ))
            .unwrap()
        });
        let verdict = Verdict::for_mx(policy.as_ref(), &case.mx_host);
        assert_eq!(verdict.as_str(), case.verdict, "{what}");
        let normalized = match &verdict {
            Verdict::RequireTls { mx_host } => Some(mx_host.as_str()),
            _ => None,
        };
        assert_eq!(normalized, case.mx_host_normalized.as_deref(), "{what}");
        assert_eq!(
            code(verdict.failure()),
            case.verdict_failure.as_deref(),
            "{what}"
        );
        let tls = case.tls_failure.as_deref().map(|c| {
            let reason = FailureReason::from_code(c).unwrap_or_else(|| panic!("{what}: {c}"));
            MxFailure::new(reason, "vector")
        });
        let delivery = verdict.decide(tls);
        let got = if delivery.is_deliver() {
            "deliver"
        } else {
            "try-next"
        };
        assert_eq!(got, case.delivery, "{what}");
        assert_eq!(code(delivery.failure()), case.report.as_deref(), "{what}");
        assert_eq!(
            delivery.failure().map(|f| f.result_type().as_str()),
            case.report_result_type.as_deref(),
            "{what}"
        );
    }
}

// ------------------------------------------------------------------- certificate input

#[test]
fn chains_are_read_as_pem_der_or_a_list() {
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mail.example.com"]).via_intermediate());
    assert_eq!(id.chain_der().len(), 2);
    let now = SystemTime::now();
    let v = &pki.verifier;
    // PEM bundle, leaf first, with a key block in between that is ignored.
    let pem = format!(
        "{}{}{}",
        id.chain_pem_parts()[0],
        id.key_pem(),
        id.chain_pem_parts()[1]
    );
    assert!(
        v.check_encoded(pem.as_bytes(), "mail.example.com", now)
            .unwrap()
            .is_valid()
    );
    // Concatenated DER.
    let der: Vec<u8> = id.chain_der().iter().flat_map(|c| c.to_vec()).collect();
    assert_eq!(parse_chain(&der).unwrap(), id.chain_der());
    assert!(
        v.check_encoded(&der, "mail.example.com", now)
            .unwrap()
            .is_valid()
    );
    // A list of DER certificates; the intermediate missing: not trusted.
    assert_eq!(
        code(
            v.check(&id.chain_der()[..1], "mail.example.com", now)
                .unwrap()
                .failure()
        ),
        Some("certificate-not-trusted")
    );
    // Intermediates after the leaf in any order, the root tolerated.
    let mut with_root = id.chain_der().to_vec();
    with_root.push(pki.ca.der().clone());
    assert!(
        v.check(&with_root, "mail.example.com", now)
            .unwrap()
            .is_valid()
    );
}

#[test]
fn malformed_input_is_an_error_and_malformed_certificates_a_failure() {
    let pki = Pki::new();
    let v = &pki.verifier;
    let now = SystemTime::now();
    for bad in [
        &b""[..],
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
    ] {
        match v.check_encoded(bad, "mail.example.com", now) {
            Err(e @ Error::InvalidChain { .. }) => {
                assert_eq!(e.kind(), "invalid-chain");
                assert_eq!(e.result_type(), None);
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(matches!(
        v.check(&[], "mail.example.com", now),
        Err(Error::InvalidChain { .. })
    ));
    let id = pki.issue(CertSpec::dns(["mail.example.com"]));
    assert!(matches!(
        v.check(id.chain_der(), "not a host", now),
        Err(Error::InvalidDomain { .. })
    ));
    // Well-framed DER that is not a certificate: a failure of the MX, not an input error.
    let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
    assert_eq!(
        code(v.check(&[junk], "mail.example.com", now).unwrap().failure()),
        Some("certificate-malformed")
    );
}

#[test]
fn validity_is_checked_at_the_time_given() {
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mail.example.com"]));
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    let v = &pki.verifier;
    assert!(
        v.check(id.chain_der(), "mail.example.com", at(1_700_000_000))
            .unwrap()
            .is_valid()
    );
    // 2100-01-01: past the test CA's 2099-12-31.
    let late = v
        .check(id.chain_der(), "mail.example.com", at(4_102_444_800))
        .unwrap();
    assert_eq!(code(late.failure()), Some("certificate-expired"));
    // 1990: before notBefore.
    let early = v
        .check(id.chain_der(), "mail.example.com", at(631_152_000))
        .unwrap();
    assert_eq!(code(early.failure()), Some("certificate-not-yet-valid"));
    assert_eq!(
        early.failure().unwrap().result_type(),
        ResultType::CertificateExpired
    );
    let not_yet = pki.issue(CertSpec::dns(["mail.example.com"]).not_yet_valid());
    assert_eq!(
        code(
            v.check(not_yet.chain_der(), "mail.example.com", SystemTime::now())
                .unwrap()
                .failure()
        ),
        Some("certificate-not-yet-valid")
    );
}

#[test]
fn other_trust_roots() {
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mail.example.com"]));
    // The bundled Mozilla roots do not include the test CA.
    let bundled = CertVerifier::new(&TrustRoots::Bundled).unwrap();
    assert_eq!(
        code(
            bundled
                .check(id.chain_der(), "mail.example.com", SystemTime::now())
                .unwrap()
                .failure()
        ),
        Some("certificate-not-trusted")
    );
    // A PEM file of roots, as `--trust-roots FILE` gives.
    let from_pem = CertVerifier::from_pem_roots(pki.ca.pem().as_bytes()).unwrap();
    assert!(
        from_pem
            .check(id.chain_der(), "mail.example.com", SystemTime::now())
            .unwrap()
            .is_valid()
    );
    assert!(matches!(
        CertVerifier::from_pem_roots(b"nothing"),
        Err(Error::Config { .. })
    ));
    assert!(CertVerifier::from_der_roots(&[]).is_err());
}

// ------------------------------------------------------------------- the probe

/// Hostile and broken servers: each probe ends within its deadline with the right outcome.
#[test]
fn probe_handles_hostile_servers_within_the_deadline() {
    let pki = Pki::new();
    let deadline = Duration::from_millis(1500);
    let slack = Duration::from_millis(1000);
    let cases: Vec<(SmtpBehaviour, &str, &str)> = vec![
        (SmtpBehaviour::NoBanner, "incomplete", "deadline"),
        (SmtpBehaviour::EndlessLine, "incomplete", "longer than 4096"),
        (
            SmtpBehaviour::EndlessReply,
            "incomplete",
            "more than 100 lines",
        ),
        (SmtpBehaviour::Garbage, "incomplete", "not an SMTP reply"),
        (
            SmtpBehaviour::RejectSession,
            "incomplete",
            "refused the session",
        ),
        (SmtpBehaviour::RefuseStarttls, "fail", "starttls-refused"),
        (SmtpBehaviour::Tls10Only, "fail", "tls-version-unsupported"),
        (
            SmtpBehaviour::StallAfterStarttls,
            "fail",
            "tls-handshake-failed",
        ),
    ];
    for (behaviour, outcome, want) in cases {
        let name = format!("{behaviour:?}");
        let server = SmtpServer::start(behaviour).unwrap();
        let started = Instant::now();
        let report = pki.probe_server(&server, "mail.example.com", deadline);
        let took = started.elapsed();
        assert!(took < deadline + slack, "{name}: took {took:?}");
        assert!(report.timings.total <= took);
        assert_eq!(report.outcome.as_str(), outcome, "{name}: {report:#?}");
        match &report.outcome {
            ProbeOutcome::Incomplete { reason } => {
                assert!(reason.contains(want), "{name}: {reason}")
            }
            ProbeOutcome::Fail(f) => assert_eq!(f.reason_code(), want, "{name}: {f}"),
            other => panic!("{name}: {other:?}"),
        }
        eprintln!("{name}: {} after {took:?}", report.outcome);
    }
}

/// CVE-2011-0411: bytes the server (or an attacker on the path) sends after the `220` reply
/// to STARTTLS must never be taken into the TLS session: the probe stops and fails.
#[test]
fn probe_refuses_bytes_injected_after_the_starttls_reply() {
    let pki = Pki::new();
    let server = SmtpServer::start(SmtpBehaviour::InjectAfterStarttls).unwrap();
    let report = pki.probe_server(&server, "mail.example.com", Duration::from_secs(5));
    assert!(report.starttls_offered);
    assert!(
        report.tls_version.is_none(),
        "no TLS session was started: {report:#?}"
    );
    let f = failure_of(&report);
    assert_eq!(f.reason_code(), "tls-handshake-failed", "{f}");
    assert!(
        f.detail().contains("after its 220 reply to STARTTLS"),
        "{f}"
    );
    assert_eq!(server.tls_handshakes(), 0);
}

#[test]
fn probe_starttls_refused_is_starttls_not_supported() {
    let pki = Pki::new();
    let server = SmtpServer::start(SmtpBehaviour::RefuseStarttls).unwrap();
    let report = pki.probe_server(&server, "mail.example.com", Duration::from_secs(5));
    assert!(report.starttls_offered);
    let f = failure_of(&report);
    assert_eq!(f.result_type(), ResultType::StarttlsNotSupported);
    assert!(f.detail().contains("454"), "{f}");
}

#[test]
fn probe_tls10_only_is_a_validation_failure_naming_the_version() {
    let pki = Pki::new();
    let server = SmtpServer::start(SmtpBehaviour::Tls10Only).unwrap();
    let report = pki.probe_server(&server, "mail.example.com", Duration::from_secs(5));
    let f = failure_of(&report);
    assert_eq!(f.result_type(), ResultType::ValidationFailure);
    assert!(f.detail().contains("1.2"), "{f}");
    assert!(report.tls_version.is_none());
}

#[test]
fn probe_tries_addresses_in_order() {
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mail.example.com"]));
    let server = SmtpServer::start(SmtpBehaviour::Starttls(id.clone())).unwrap();
    // A port where nothing listens: bound, then released.
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let report = probe_addrs(
        "mail.example.com",
        &[closed, server.addr()],
        &pki.verifier,
        &options(Duration::from_secs(5)),
    )
    .unwrap();
    assert_eq!(report.outcome, ProbeOutcome::Pass);
    assert_eq!(report.address, Some(server.addr()));
    assert_eq!(report.connect_errors.len(), 1);
    assert!(report.connect_errors[0].starts_with(&closed.to_string()));

    let nothing = probe_addrs(
        "mail.example.com",
        &[closed],
        &pki.verifier,
        &options(Duration::from_secs(5)),
    )
    .unwrap();
    assert_eq!(nothing.outcome.as_str(), "incomplete");
}

#[test]
fn probe_over_ipv6() {
    let Ok(listener) = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    drop(listener);
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mail.example.com"]));
    let server = SmtpServer::start_at(
        SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0),
        SmtpBehaviour::Starttls(id.clone()),
    )
    .unwrap();
    // AAAA record -> ::1 through the DNS server.
    let zone = Zone::new();
    zone.add_record("mail.example.com", ZoneRecord::aaaa(Ipv6Addr::LOCALHOST));
    let dns_server = DnsServer::start(zone).unwrap();
    let dns = HickoryDns::with_nameservers(&[dns_server.addr()], Duration::from_secs(2)).unwrap();
    let mut opts = options(Duration::from_secs(5));
    opts.port = server.port();
    let report = probe("mail.example.com", &dns, &pki.verifier, &opts).unwrap();
    assert_probe_pass(&report, &server, &id, "mail.example.com");
    assert!(report.address.unwrap().is_ipv6());
}

#[test]
fn probe_without_address_or_with_bad_input() {
    let pki = Pki::new();
    let zone = Zone::new();
    let dns_server = DnsServer::start(zone).unwrap();
    let dns = HickoryDns::with_nameservers(&[dns_server.addr()], Duration::from_secs(2)).unwrap();
    let report = probe(
        "nowhere.example.com",
        &dns,
        &pki.verifier,
        &options(Duration::from_secs(5)),
    )
    .unwrap();
    assert_eq!(report.outcome.as_str(), "incomplete", "{report:?}");
    assert!(matches!(
        probe(
            "not a host",
            &dns,
            &pki.verifier,
            &options(Duration::from_secs(5))
        ),
        Err(Error::InvalidDomain { .. })
    ));
    let mut bad = options(Duration::from_secs(5));
    bad.ehlo_name = "x\r\nRCPT TO:<a@b>".into();
    assert!(matches!(
        probe_addrs("mail.example.com", &[], &pki.verifier, &bad),
        Err(Error::Config { .. })
    ));
}

#[test]
fn probe_checks_certificates_at_the_time_given() {
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mail.example.com"]).via_intermediate());
    let server = SmtpServer::start(SmtpBehaviour::Starttls(id.clone())).unwrap();
    let mut opts = options(Duration::from_secs(5));
    assert_eq!(
        probe_addrs("mail.example.com", &[server.addr()], &pki.verifier, &opts)
            .unwrap()
            .outcome,
        ProbeOutcome::Pass,
        "chain via an intermediate"
    );
    opts.at = Some(UNIX_EPOCH + Duration::from_secs(4_102_444_800));
    let report = probe_addrs("mail.example.com", &[server.addr()], &pki.verifier, &opts).unwrap();
    assert_eq!(code(report.outcome.failure()), Some("certificate-expired"));
    assert_eq!(report.chain.len(), 2);
}

/// Twenty probes in a row against one loopback MX.
#[test]
fn repeated_probes_all_pass_with_consistent_timings() {
    // The probe's speed is measured by the `probe_loopback` benchmark; here, its behaviour:
    // every one of 20 probes passes, and each phase's timestamp lies within the total.
    let pki = Pki::new();
    let id = pki.issue(CertSpec::dns(["mail.example.com"]));
    let server = SmtpServer::start(SmtpBehaviour::Starttls(id)).unwrap();
    for _ in 0..20 {
        let report = pki.probe_server(&server, "mail.example.com", Duration::from_secs(5));
        assert_eq!(report.outcome, ProbeOutcome::Pass);
        let t = &report.timings;
        let phases = [t.connected, t.banner, t.starttls, t.handshake];
        assert!(phases.iter().all(Option::is_some), "{t:?}");
        assert!(
            phases.windows(2).all(|w| w[0] <= w[1]),
            "phases in order: {t:?}"
        );
        assert!(phases.iter().flatten().all(|p| *p <= t.total), "{t:?}");
    }
    assert_eq!(server.tls_handshakes(), 20);
}
