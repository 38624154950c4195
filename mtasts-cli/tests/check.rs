//! `mtasts check` against test-world domains whose MX hosts are loopback SMTP servers (one
//! good, several broken: S-56…S-60, TLS 1.0 only, outside the policy), and `mtasts verify-cert`
//! exit statuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mtasts_testworld::{
    CertSpec, DomainSpec, HttpResponse, SmtpBehaviour, SmtpServer, World, ZoneRecord,
};
use serde_json::Value;

/// The MX hosts of `check.test`, their behaviour, and what `mtasts check` must say.
const CASES: &[(&str, &str)] = &[
    ("good.mx.check.test", "pass"),
    ("expired.mx.check.test", "certificate-expired"),
    ("untrusted.mx.check.test", "certificate-not-trusted"),
    ("wrongname.mx.check.test", "certificate-host-mismatch"),
    ("cnonly.mx.check.test", "certificate-no-san"),
    ("nostarttls.mx.check.test", "starttls-not-offered"),
    ("tls10.mx.check.test", "tls-version-unsupported"),
    ("elsewhere.example.org", "mx-mismatch"),
];

const POLICY: &str =
    "version: STSv1\nmode: enforce\nmx: *.mx.check.test\nmx: mx.good.test\nmax_age: 86400\n";

struct Setup {
    world: World,
    servers: Vec<SmtpServer>,
}

impl Setup {
    fn new() -> Setup {
        let world = World::start().unwrap();
        let ca = world.ca();
        let issue = |names: &[&str]| ca.issue(&CertSpec::dns(names.iter().copied())).unwrap();
        let behaviours = vec![
            SmtpBehaviour::Starttls(issue(&["good.mx.check.test", "mx.good.test"])),
            SmtpBehaviour::Starttls(
                ca.issue(&CertSpec::dns(["expired.mx.check.test"]).expired())
                    .unwrap(),
            ),
            SmtpBehaviour::Starttls(
                world
                    .untrusted_ca()
                    .issue(&CertSpec::dns(["untrusted.mx.check.test"]))
                    .unwrap(),
            ),
            SmtpBehaviour::Starttls(issue(&["other.example.com"])),
            SmtpBehaviour::Starttls(
                ca.issue(&CertSpec::cn_only("cnonly.mx.check.test"))
                    .unwrap(),
            ),
            SmtpBehaviour::NoStarttls,
            SmtpBehaviour::Tls10Only,
            SmtpBehaviour::Starttls(issue(&["elsewhere.example.org"])),
        ];
        let servers = SmtpServer::start_group(behaviours).expect("127.0.1.x loopback addresses");
        let zone = world.zone();
        for (i, ((host, _), server)) in CASES.iter().zip(&servers).enumerate() {
            let std::net::IpAddr::V4(ip) = server.ip() else {
                unreachable!()
            };
            zone.add_record(host, ZoneRecord::a(ip));
            let preference = u16::try_from(10 * (i + 1)).unwrap();
            zone.add_record("check.test", ZoneRecord::mx(preference, host));
        }
        let good_ip = match servers[0].ip() {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => unreachable!(),
        };
        // check.test: one good MX and every broken case.
        world
            .add_policy_domain(&DomainSpec::new("check.test"))
            .unwrap();
        world.set_policy_response("check.test", HttpResponse::policy(POLICY));
        // good.test: one good MX.
        world
            .add_policy_domain(&DomainSpec::new("good.test"))
            .unwrap();
        world.set_policy_response("good.test", HttpResponse::policy(POLICY));
        zone.add_record("good.test", ZoneRecord::mx(10, "mx.good.test"));
        zone.add_record("mx.good.test", ZoneRecord::a(good_ip));
        // defer.test: enforce, its only MX has an expired certificate.
        world
            .add_policy_domain(&DomainSpec::new("defer.test"))
            .unwrap();
        world.set_policy_response("defer.test", HttpResponse::policy(POLICY));
        zone.add_record("defer.test", ZoneRecord::mx(10, "expired.mx.check.test"));
        // plain.test: no MTA-STS at all, a good MX.
        zone.add_record("plain.test", ZoneRecord::mx(10, "mx.good.test"));
        Setup { world, servers }
    }

    fn port(&self) -> String {
        self.servers[0].port().to_string()
    }

    fn mtasts(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mtasts"))
            .arg("--nameserver")
            .arg(self.world.dns_addr().to_string())
            .arg("--trust-roots")
            .arg(self.world.ca_pem_path())
            .arg("--policy-port")
            .arg(self.world.https_port().to_string())
            .args([
                "--cache",
                "memory",
                "--timeout",
                "5",
                "--dns-timeout",
                "2",
                "-q",
            ])
            .args(args)
            .output()
            .expect("run mtasts")
    }

    fn check(&self, domain: &str, json: bool) -> (Output, String) {
        let port = self.port();
        let mut args = vec!["check", domain, "--port", &port, "--probe-timeout", "3"];
        if json {
            args.push("--json");
        }
        let out = self.mtasts(&args);
        let stdout = String::from_utf8(out.stdout.clone()).unwrap();
        (out, stdout)
    }
}

fn has_problem(report: &Value, mx: Option<&str>, code: &str) -> bool {
    report["problems"].as_array().unwrap().iter().any(|p| {
        p["code"] == code && p["mx"].as_str() == mx && !p["fix"].as_str().unwrap().is_empty()
    })
}

#[test]
fn check_names_each_problem_of_a_broken_domain() {
    let setup = Setup::new();
    let (out, stdout) = setup.check("check.test", true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(report["ok"], false);
    assert_eq!(report["domain"], "check.test");
    assert_eq!(report["txt"]["records"][0], "v=STSv1; id=20240101T000000;");
    assert_eq!(report["policy"]["mode"], "enforce");
    assert_eq!(report["policy"]["source"], "fetched");
    assert_eq!(report["policy"]["text"], POLICY);
    assert_eq!(report["mx_lookup"]["implicit"], false);
    assert_eq!(report["defer"], false, "the good MX still works");

    let mx = report["mx"].as_array().unwrap();
    assert_eq!(mx.len(), CASES.len());
    for ((host, want), entry) in CASES.iter().zip(mx) {
        assert_eq!(entry["host"], *host);
        let probe = &entry["probe"];
        match *want {
            "pass" => {
                assert_eq!(probe["outcome"], "pass", "{entry}");
                assert_eq!(entry["delivery"], "deliver", "{entry}");
                assert_eq!(entry["verdict"], "require-tls");
                assert_eq!(entry["matches_policy"], true);
                let cert = &entry["certificate"];
                assert!(
                    cert["sans"]
                        .as_array()
                        .unwrap()
                        .contains(&Value::from("DNS:good.mx.check.test")),
                    "{cert}"
                );
                assert!(cert["subject"].as_str().unwrap().contains("CN="), "{cert}");
                assert!(
                    cert["issuer"]
                        .as_str()
                        .unwrap()
                        .contains("mtasts test root CA")
                );
                assert!(
                    cert["not_after"]
                        .as_str()
                        .unwrap()
                        .starts_with("2099-12-31")
                );
                assert!(probe["tls_version"].as_str().unwrap().starts_with("TLSv1."));
                assert!(probe["timings_ms"]["total"].as_f64().unwrap() > 0.0);
                assert!(!has_problem(&report, Some(host), "mx-unreachable"));
            }
            "mx-mismatch" => {
                assert_eq!(entry["verdict"], "skip", "{entry}");
                assert_eq!(entry["delivery"], "skip");
                assert_eq!(entry["matches_policy"], false);
                assert!(has_problem(&report, Some(host), "mx-mismatch"), "{host}");
            }
            code => {
                assert_eq!(probe["outcome"], "fail", "{entry}");
                assert_eq!(probe["reason_code"], code, "{entry}");
                assert_eq!(entry["delivery"], "try-next", "{entry}");
                assert!(has_problem(&report, Some(host), code), "{host}: {code}");
            }
        }
    }
    // Certificates are shown even when they fail.
    assert!(
        mx[1]["certificate"]["not_after"]
            .as_str()
            .unwrap()
            .starts_with("2001-01-01")
    );
    assert_eq!(mx[4]["certificate"]["sans"].as_array().unwrap().len(), 0);
    assert_eq!(mx[4]["probe"]["result_type"], "certificate-host-mismatch");
    assert_eq!(mx[5]["probe"]["starttls_offered"], false);

    // The table names the same problems, with fixes.
    let (out, table) = setup.check("check.test", false);
    assert_eq!(out.status.code(), Some(1));
    for (host, want) in CASES.iter().skip(1) {
        assert!(
            table.contains(&format!("{host}: {want}")),
            "{host} {want}:\n{table}"
        );
    }
    assert!(table.contains("fix: renew the MX's certificate"), "{table}");
    assert!(table.contains("PREF"), "{table}");
    assert!(table.contains("subject:"), "{table}");
}

#[test]
fn check_of_a_good_domain_finds_nothing() {
    let setup = Setup::new();
    let (out, stdout) = setup.check("good.test", true);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(report["mx"][0]["delivery"], "deliver");
    let (out, table) = setup.check("good.test", false);
    assert_eq!(out.status.code(), Some(0));
    assert!(table.contains("No problems found."), "{table}");
}

#[test]
fn check_reports_deferral_and_missing_policies() {
    let setup = Setup::new();
    let (out, stdout) = setup.check("defer.test", true);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["defer"], true);
    assert!(has_problem(&report, None, "no-usable-mx"), "{report}");
    assert!(has_problem(
        &report,
        Some("expired.mx.check.test"),
        "certificate-expired"
    ));

    // No MTA-STS at all: a warning, not an error.
    let (out, stdout) = setup.check("plain.test", true);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["policy"].is_null());
    assert!(has_problem(&report, None, "no-policy"));
    assert_eq!(report["mx"][0]["verdict"], "no-requirement");

    // --no-probe: patterns only.
    let out = setup.mtasts(&["check", "check.test", "--no-probe", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "the mx-mismatch remains");
    assert!(report["mx"][0]["probe"].is_null());
    assert_eq!(report["mx"][0]["delivery"], "unknown");
}

#[test]
fn check_usage_errors() {
    let setup = Setup::new();
    for args in [
        &["check", "not a domain!"][..],
        &["check", "check.test", "--probe-timeout", "0"],
        &["check", "check.test", "--ehlo-name", "a b"],
        &["check"],
    ] {
        let out = setup.mtasts(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

// ------------------------------------------------------------------------- verify-cert

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mtasts-cli-check-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, data).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn verify(ca: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtasts"));
    cmd.arg("--trust-roots")
        .arg(ca)
        .args(["--cache", "memory", "-q", "verify-cert"])
        .args(args);
    common::run_with_stdin(&mut cmd, stdin)
}

#[test]
fn verify_cert_exit_statuses() {
    let world = World::start().unwrap();
    let ca = world.ca_pem_path();
    let dir = TempDir::new("verify");
    let good = world
        .ca()
        .issue(&CertSpec::dns(["mail.example.com"]).via_intermediate())
        .unwrap();
    let expired = world
        .ca()
        .issue(&CertSpec::dns(["mail.example.com"]).expired())
        .unwrap();
    let good_pem = dir.file("good.pem", good.chain_pem().as_bytes());
    let good_der = dir.file(
        "good.der",
        &good
            .chain_der()
            .iter()
            .flat_map(|c| c.to_vec())
            .collect::<Vec<u8>>(),
    );
    let expired_pem = dir.file("expired.pem", expired.chain_pem().as_bytes());
    let garbage = dir.file("garbage.pem", b"hello\n");
    let s = |p: &Path| p.to_str().unwrap().to_owned();

    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["--mx".into(), "mail.example.com".into(), s(&good_pem)],
            0,
            "pass",
        ),
        (
            vec!["--mx".into(), "MAIL.example.com.".into(), s(&good_der)],
            0,
            "pass",
        ),
        (
            vec!["--mx".into(), "other.example.com".into(), s(&good_pem)],
            1,
            "certificate-host-mismatch",
        ),
        (
            vec!["--mx".into(), "mail.example.com".into(), s(&expired_pem)],
            1,
            "certificate-expired",
        ),
        (
            vec![
                "--mx".into(),
                "mail.example.com".into(),
                "--at".into(),
                "2100-01-01T00:00:00Z".into(),
                s(&good_pem),
            ],
            1,
            "certificate-expired",
        ),
        (
            vec![
                "--mx".into(),
                "mail.example.com".into(),
                "--at".into(),
                "978000000".into(),
                s(&expired_pem),
            ],
            0,
            "pass",
        ),
        (
            vec!["--mx".into(), "mail.example.com".into(), s(&garbage)],
            2,
            "",
        ),
        (
            vec![
                "--mx".into(),
                "mail.example.com".into(),
                s(&dir.0.join("missing.pem")),
            ],
            2,
            "",
        ),
        (
            vec![
                "--mx".into(),
                "mail.example.com".into(),
                "--at".into(),
                "yesterday".into(),
                s(&good_pem),
            ],
            2,
            "",
        ),
        (
            vec!["--mx".into(), "not a host".into(), s(&good_pem)],
            2,
            "",
        ),
        (vec![s(&good_pem)], 2, ""),
    ];
    for (args, code, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = verify(ca, &args, None);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stdout}");
        assert!(stdout.contains(want), "{args:?}: {stdout}");
    }

    // Untrusted: the default roots of this test are the world CA only.
    let untrusted = world
        .untrusted_ca()
        .issue(&CertSpec::dns(["mail.example.com"]))
        .unwrap();
    let out = verify(
        ca,
        &["--mx", "mail.example.com", "--json", "-"],
        Some(untrusted.chain_pem().as_bytes()),
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["result"], "fail");
    assert_eq!(report["result_type"], "certificate-not-trusted");
    assert_eq!(report["reason_code"], "certificate-not-trusted");

    let out = verify(
        ca,
        &["--mx", "mail.example.com", "--json", "-"],
        Some(good.chain_pem().as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["result"], "pass");
    assert!(report["result_type"].is_null());
}

mod golden;

/// Issue 11: `mtasts check --json` for a broken, a good, a deferring and a plain domain,
/// pinned.
#[test]
fn check_json_is_the_golden_view() {
    let setup = Setup::new();
    let mut all = Vec::new();
    for domain in [
        "check.test",
        "good.test",
        "defer.test",
        "plain.test",
        "nowhere.test",
    ] {
        let (_, stdout) = setup.check(domain, true);
        all.push(
            serde_json::from_str::<Value>(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}")),
        );
    }
    let mut value = Value::Array(all);
    let ports = [
        setup.world.https_port(),
        setup.world.dns_addr().port(),
        setup.servers[0].port(),
    ];
    golden::normalise(&mut value, &ports);
    golden::check("check.json", &value);
}
