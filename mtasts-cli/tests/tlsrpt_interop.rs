//! Interoperation with sys4's real TLSRPT collector, `tlsrpt-collectd` from tlsrpt-reporter
//! 0.6.0 (PyPI; `scripts/install-deps` puts it into `target/tlsrpt-reporter-venv`), started
//! by the test in a temporary directory with a configuration file of its own:
//!
//! (a) sessions mtasts emits (`tlsrpt.emit_socket`, through `Reporter::open`, the domains'
//!     TLSRPT records from a DNS server on loopback) are accepted and counted by it, read
//!     back from its SQLite file;
//! (b) the datagram vectors fed to it and to `mtasts tlsrpt collect` give the same counts
//!     per (day, domain, policy) and the same failure rows, except the departure written
//!     down here: `escapes.json` (a receiving-mx-hostname that is no host name) is refused
//!     by mtasts and counted by tlsrpt-collectd.
//!
//! Without the venv (no `scripts/install-deps` run) the tests print SKIPPED and pass;
//! `make test` always runs `deps` first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtasts_core::{
    AppliedPolicy, Config, DEFAULT_RETENTION, Domain, Policy, ReportStore, Reporter, ResultType,
    Session, SessionFailure, SqliteReportStore, TlsRptSettings, UtcDay,
};
use mtasts_testworld::{DnsServer, Zone, ZoneRecord};
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mtasts-core/testdata/tlsrpt/datagrams"
);

fn venv() -> Option<PathBuf> {
    let dir = std::env::var_os("MTASTS_TLSRPT_REPORTER_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tlsrpt-reporter-venv"),
        PathBuf::from,
    );
    if dir.join("bin/tlsrpt-collectd").exists() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: no tlsrpt-collectd in {} (scripts/install-deps installs tlsrpt-reporter \
             0.6.0 there)",
            dir.display()
        );
        None
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtasts-interop-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// A running tlsrpt-collectd, killed when dropped.
struct Collectd {
    child: Child,
    socket: PathBuf,
    db: PathBuf,
    log: PathBuf,
}

impl Collectd {
    fn start(venv: &Path, dir: &Path) -> Collectd {
        let (socket, db, log) = (
            dir.join("collectd.sock"),
            dir.join("collectd.sqlite"),
            dir.join("collectd.log"),
        );
        let cfg = dir.join("collectd.cfg");
        // Every datagram committed at once (else after 5 s idle); a dump path so that an
        // invalid datagram does not end it (0.6.0 exits otherwise).
        std::fs::write(
            &cfg,
            format!(
                "[tlsrpt_collectd]\nstorage = sqlite://{}\nsocketname = {}\nlogfilename = {}\n\
                 log_level = info\nmax_uncommited_datagrams = 1\n\
                 dump_path_for_invalid_datagram = {}\n",
                db.display(),
                socket.display(),
                log.display(),
                dir.join("invalid-datagram").display()
            ),
        )
        .unwrap();
        let mut command = Command::new(venv.join("bin/tlsrpt-collectd"));
        command.arg("--config_file").arg(&cfg);
        // Its options also come from TLSRPT_COLLECTD_* variables: none of the caller's.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("TLSRPT_") {
                command.env_remove(k);
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut c = Collectd {
            child,
            socket,
            db,
            log,
        };
        // Up once it has set its database up twice: at start, and again after the rollover
        // it performs at once (the first file renamed to `….yesterday`, a new one made). A
        // reader that opens the file in between can meet the rename (tlsrpt-collectd then
        // fails with "disk I/O error"), so the tests wait for its log to say so.
        let up = wait_until(Duration::from_secs(30), || {
            c.socket.exists()
                && c.log_text()
                    .split_once("Old database moved to")
                    .is_some_and(|(_, after)| after.contains("setup finished"))
        });
        assert!(
            up && c.child.try_wait().unwrap().is_none(),
            "{}",
            c.log_text()
        );
        c
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its counts: (day, domain, policy key) → (total, failed), and failure rows (day,
    /// domain, policy key, failure key) → count. The policy key leaves `policy-domain` out
    /// (mtasts keeps the report domain only), so rows differing in it are added up.
    fn counts(&self) -> (Totals, Failures) {
        // Read-write (nothing is written): a read-only connection cannot roll back a journal
        // the collector has open, and waits out its commits.
        let con = rusqlite::Connection::open(&self.db).unwrap();
        con.busy_timeout(Duration::from_secs(10)).unwrap();
        let mut totals = Totals::new();
        let mut failures = Failures::new();
        // The collector creates its tables once it runs: until then it has counted nothing.
        let tables: i64 = con
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
                 AND name IN ('finalresults', 'failures')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if tables < 2 {
            return (totals, failures);
        }
        let mut stmt = con
            .prepare("SELECT day, domain, policy, cntrtotal, cntrfailure FROM finalresults")
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (day, domain, policy, total, failed) = row.unwrap();
            let e = totals
                .entry((day, domain, policy_key(&policy)))
                .or_default();
            e.0 += u64::try_from(total).unwrap();
            e.1 += u64::try_from(failed).unwrap();
        }
        let mut stmt = con
            .prepare("SELECT day, domain, policy, reason, cntr FROM failures")
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (day, domain, policy, reason, n) = row.unwrap();
            let reason: Value = serde_json::from_str(&reason).unwrap();
            let code = reason["c"].as_u64().unwrap();
            let name = mtasts_core::FailureCode::from_code(code)
                .unwrap()
                .result_type_name()
                .to_string();
            let field = |k: &str| reason[k].as_str().unwrap_or("").to_string();
            let key = [
                name,
                field("s"),
                field("n"),
                field("h"),
                field("r"),
                field("f"),
                field("a"),
            ];
            *failures
                .entry((day, domain, policy_key(&policy), key))
                .or_default() += u64::try_from(n).unwrap();
        }
        (totals, failures)
    }

    fn sessions(&self) -> u64 {
        self.counts().0.values().map(|v| v.0).sum()
    }
}

impl Drop for Collectd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (policy-type, policy-string, mx-host).
type PolicyKey = (String, Vec<String>, Vec<String>);
type Totals = BTreeMap<(String, String, PolicyKey), (u64, u64)>;
/// result-type, sending-mta-ip, receiving-mx-hostname, receiving-mx-helo, receiving-ip,
/// failure-reason-code, additional-information ("" when absent).
type Failures = BTreeMap<(String, String, PolicyKey, [String; 7]), u64>;

fn policy_key(policy_json: &str) -> PolicyKey {
    let p: Value = serde_json::from_str(policy_json).unwrap();
    let t = match p["policy-type"].as_u64().unwrap() {
        1 => "tlsa",
        2 => "sts",
        9 => "no-policy-found",
        other => panic!("policy-type {other}"),
    };
    let strings = |k: &str| -> Vec<String> {
        p[k].as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    (t.to_string(), strings("policy-string"), strings("mx-host"))
}

/// The same counts from mtasts's report store, for `domains` on `day`.
fn store_counts(store: &dyn ReportStore, day: UtcDay) -> (Totals, Failures) {
    let (mut totals, mut failures) = (Totals::new(), Failures::new());
    for pending in store.pending().unwrap() {
        assert_eq!(pending.day, day);
        let report = store.day_report(day, &pending.domain).unwrap().unwrap();
        for p in report.policies {
            let key = (
                p.policy.policy_type.as_str().to_string(),
                p.policy.policy_string.clone(),
                p.policy.mx_host.clone(),
            );
            let (d, dom) = (day.to_string(), pending.domain.to_string());
            let e = totals
                .entry((d.clone(), dom.clone(), key.clone()))
                .or_default();
            e.0 += p.total_successful + p.total_failure;
            e.1 += p.total_failure;
            for f in p.failure_details {
                let o = |v: Option<String>| v.unwrap_or_default();
                let fk = [
                    f.result_type,
                    o(f.sending_mta_ip),
                    o(f.receiving_mx_hostname),
                    o(f.receiving_mx_helo),
                    o(f.receiving_ip),
                    o(f.failure_reason_code),
                    o(f.additional_information),
                ];
                *failures
                    .entry((d.clone(), dom.clone(), key.clone(), fk))
                    .or_default() += f.failed_session_count;
            }
        }
    }
    (totals, failures)
}

fn print(side: &str, totals: &Totals, failures: &Failures) {
    eprintln!(
        "{side}: {} sessions ({} failed) in {} (day, domain, policy) rows, {} failure rows",
        totals.values().map(|v| v.0).sum::<u64>(),
        totals.values().map(|v| v.1).sum::<u64>(),
        totals.len(),
        failures.len()
    );
    for ((day, domain, (t, _, _)), (total, failed)) in totals {
        eprintln!("  {day} {domain:22} {t:16} total {total} failed {failed}");
    }
}

#[test]
fn a_sessions_mtasts_emits_are_counted_by_tlsrpt_collectd() {
    let Some(venv) = venv() else { return };
    let dir = temp_dir("emit");
    let collectd = Collectd::start(&venv, &dir);

    let zone = Zone::new();
    let record = "v=TLSRPTv1; rua=mailto:tlsrpt@example.net";
    zone.add_record("_smtp._tls.example.net", ZoneRecord::txt1(record));
    zone.add_record(
        "_smtp._tls.dane.example",
        ZoneRecord::txt1("v=TLSRPTv1;rua=https://reports.dane.example/v1"),
    );
    let dns = DnsServer::start(zone).unwrap();
    let mut config = Config::default();
    config.set("nameserver", &dns.addr().to_string()).unwrap();
    config.set("cache", "memory").unwrap();
    let mut settings = TlsRptSettings::default();
    settings
        .set("tlsrpt.emit_socket", &collectd.socket.display().to_string())
        .unwrap();
    let reporter = Reporter::open(&config, &settings).unwrap();

    let day = UtcDay::today();
    let net = Domain::new("example.net").unwrap();
    let policy = Policy::parse(
        "version: STSv1\nmode: testing\nmx: mail.example.net\nmx: *.backup.example.net\nmax_age: 86400\n",
    )
    .unwrap();
    let sts = AppliedPolicy::sts(&net, &policy).unwrap();
    let starttls = SessionFailure::new(ResultType::StarttlsNotSupported)
        .sending_mta_ip("192.0.2.1")
        .unwrap()
        .receiving_mx_hostname("mail.example.net")
        .unwrap()
        .receiving_mx_helo("mail.example.net")
        .unwrap()
        .receiving_ip("198.51.100.25")
        .unwrap();
    let tlsa = AppliedPolicy::tlsa("dane.example", vec!["3 1 1 ABCDEF0123".into()]).unwrap();
    let dane = SessionFailure::new(ResultType::TlsaInvalid)
        .receiving_mx_hostname("mx.dane.example")
        .unwrap()
        .failure_reason_code("all-TLSA-records-unusable")
        .unwrap();
    let sessions = vec![
        Session::success(day, sts.clone()),
        Session::success(day, sts.clone()),
        Session::failure(day, sts, [starttls]).unwrap(),
        Session::success(day, AppliedPolicy::no_policy_found("example.net").unwrap()),
        Session::failure(day, tlsa, [dane]).unwrap(),
        // No TLSRPT record: nothing is sent (R-RPT-10).
        Session::success(
            day,
            AppliedPolicy::no_policy_found("quiet.example").unwrap(),
        ),
    ];
    for s in &sessions {
        reporter.record(s).unwrap();
    }
    let counted = wait_until(Duration::from_secs(30), || collectd.sessions() == 5);
    let (totals, failures) = collectd.counts();
    print(
        "tlsrpt-collectd, from mtasts's datagrams",
        &totals,
        &failures,
    );
    assert!(counted, "{}", collectd.log_text());
    // What it counted is what mtasts's own store counts for the same sessions.
    let memory = Arc::new(mtasts_core::MemoryReportStore::new(DEFAULT_RETENTION).unwrap());
    for s in &sessions[..5] {
        memory.record(s).unwrap();
    }
    let (want_totals, want_failures) = store_counts(memory.as_ref(), day);
    assert_eq!(totals, want_totals);
    assert_eq!(failures, want_failures);
    let log = collectd.log_text();
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn b_the_same_datagrams_give_the_same_counts_in_both_collectors() {
    let Some(venv) = venv() else { return };
    let dir = temp_dir("same");
    let collectd = Collectd::start(&venv, &dir);

    let cache = dir.join("mtasts.db");
    let socket = dir.join("mtasts.sock");
    let mtasts = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(["--config", "/dev/null", "--cache"])
        .arg(&cache)
        .args(["tlsrpt", "collect", "--socket"])
        .arg(&socket)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(30), || socket.exists()));

    let mut names: Vec<String> = std::fs::read_dir(VECTORS)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let out = UnixDatagram::unbound().unwrap();
    for name in &names {
        let bytes = std::fs::read(Path::new(VECTORS).join(name)).unwrap();
        out.send_to(&bytes, &collectd.socket).unwrap();
        out.send_to(&bytes, &socket).unwrap();
    }
    // tlsrpt-collectd: 10 sessions (escapes.json included); mtasts: 9.
    assert!(
        wait_until(Duration::from_secs(30), || collectd.sessions() == 10),
        "{}",
        collectd.log_text()
    );
    let day = UtcDay::today();
    let store = SqliteReportStore::open(&cache, DEFAULT_RETENTION).unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        store_counts(&store, day)
            .0
            .values()
            .map(|v| v.0)
            .sum::<u64>()
            == 9
    }));
    // SIGTERM: the command stops and says what it did.
    assert_eq!(unsafe_free_kill(mtasts.id(), "TERM"), 0);
    let output = mtasts.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("refused a datagram"))
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("stopped: received 9, recorded 8 (9 sessions), refused 1 (invalid-session 1), lost 0 sessions"),
        "{stderr}"
    );

    let (mut theirs, mut their_failures) = collectd.counts();
    let (ours, our_failures) = store_counts(&store, day);
    print("tlsrpt-collectd", &theirs, &their_failures);
    print("mtasts tlsrpt collect", &ours, &our_failures);
    // The one departure: escapes.json, counted by tlsrpt-collectd under bücher.example
    // (it lower-cases d and keeps it as sent), refused by mtasts (its receiving-mx-hostname
    // "müx/ü" is no host name, so no valid report could carry it).
    let escapes = |k: &String| k == "bücher.example";
    let before = theirs.len();
    theirs.retain(|(_, d, _), _| !escapes(d));
    their_failures.retain(|(_, d, _, _), _| !escapes(d));
    assert_eq!(before - theirs.len(), 1);
    assert_eq!(ours, theirs, "per (day, domain, policy): the same counts");
    assert_eq!(our_failures, their_failures, "the same failure rows");
}

/// `kill -SIG pid` through the kill command (the test needs no unsafe code for it).
fn unsafe_free_kill(pid: u32, signal: &str) -> i32 {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}
