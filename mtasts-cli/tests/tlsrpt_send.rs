//! `mtasts tlsrpt list`, `show` and `send` through the binary, against the test world's DNS
//! and an HTTPS report receiver on loopback, with a SQLite store in a temporary directory:
//! `show` prints exactly what `send` POSTs (gunzipped), `list` tells the states, a missing
//! setting is named, `summarize` reads what was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use mtasts_core::{
    AppliedPolicy, DEFAULT_RETENTION, Domain, MAX_REPORT_SIZE, Policy, ReportStore, Session,
    SqliteReportStore, UtcDay, gunzip,
};
use mtasts_testworld::{CertSpec, HttpResponse, World, ZoneRecord};

const ENFORCE: &str = "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n";
const RECEIVER: &str = "reports.receiver.test";
const PATH: &str = "/tlsrpt";

fn mtasts(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("MTASTS_CACHE")
        .output()
        .unwrap()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtasts-cli-send-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn show_prints_what_send_posts_and_list_tells_the_state() {
    let world = World::start().unwrap();
    let identity = world.ca().issue(&CertSpec::dns([RECEIVER])).unwrap();
    world.https().set_identity(RECEIVER, &identity).unwrap();
    world
        .https()
        .set_response(RECEIVER, PATH, HttpResponse::new(200));
    world
        .zone()
        .set_records(RECEIVER, vec![ZoneRecord::a(Ipv4Addr::LOCALHOST)]);
    let uri = format!("https://{RECEIVER}:{}{PATH}", world.https_port());
    world.zone().set_records(
        "_smtp._tls.example.com",
        vec![ZoneRecord::txt1(&format!("v=TLSRPTv1; rua={uri}"))],
    );
    let dir = temp_dir();
    let db = dir.join("cache.db");
    // Yesterday's sessions (the CLI runs on the system clock; `--now` skips the spread).
    let yesterday = UtcDay::of(SystemTime::now() - Duration::from_secs(86_400));
    let today = UtcDay::today();
    {
        let store = SqliteReportStore::open(&db, DEFAULT_RETENTION).unwrap();
        let policy = AppliedPolicy::sts(
            &Domain::new("example.com").unwrap(),
            &Policy::parse(ENFORCE).unwrap(),
        )
        .unwrap();
        for _ in 0..5 {
            store
                .record(&Session::success(yesterday, policy.clone()))
                .unwrap();
        }
        store.record(&Session::success(today, policy)).unwrap();
    }
    let config = dir.join("mtasts.conf");
    let base = format!(
        "cache = {}\nnameserver = {}\ntrust_roots = {}\nfetch_timeout = 5\n",
        db.display(),
        world.dns_addr(),
        world.ca_pem_path().display()
    );
    // Without the sending keys, every command says what to set.
    std::fs::write(&config, &base).unwrap();
    let out = mtasts(&config, &["tlsrpt", "send"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tlsrpt.organization_name, tlsrpt.contact_info, tlsrpt.submitter"),
        "{err}"
    );
    std::fs::write(
        &config,
        format!(
            "{base}tlsrpt.organization_name = Sender Example\n\
             tlsrpt.contact_info = mailto:postmaster@sender.example\n\
             tlsrpt.submitter = mail.sender.example\n"
        ),
    )
    .unwrap();
    let day = yesterday.to_string();
    let show = mtasts(&config, &["tlsrpt", "show", &day, "example.com"]);
    assert_eq!(show.status.code(), Some(0), "{show:?}");
    let shown = String::from_utf8(show.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        json["policies"][0]["summary"]["total-successful-session-count"],
        5
    );
    // list: yesterday scheduled or due, today open.
    let list = mtasts(&config, &["tlsrpt", "list", "--json"]);
    let view: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let states: Vec<(&str, &str)> = view["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["day"].as_str().unwrap(), d["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states.len(), 2);
    assert!(matches!(states[0].1, "scheduled" | "due"), "{states:?}");
    assert_eq!(states[1], (today.to_string().as_str(), "open"));
    // Dry run: nothing sent.
    let dry = mtasts(&config, &["tlsrpt", "send", "--now", "--dry-run"]);
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains(&format!("would send to {uri}")),
        "{dry:?}"
    );
    assert_eq!(world.https().requests(RECEIVER), 0);
    // Sent.
    let sent = mtasts(&config, &["tlsrpt", "send", "--now"]);
    assert_eq!(sent.status.code(), Some(0), "{sent:?}");
    assert!(
        String::from_utf8_lossy(&sent.stdout)
            .contains(&format!("{day} example.com: delivered to {uri}"))
    );
    let posts: Vec<Vec<u8>> = world
        .https()
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.body)
        .collect();
    assert_eq!(posts.len(), 1);
    let posted = gunzip(&posts[0], MAX_REPORT_SIZE).unwrap();
    assert_eq!(
        shown,
        format!("{}\n", String::from_utf8(posted).unwrap()),
        "show = POST"
    );
    // summarize reads what send produced.
    let file = dir.join("posted.json.gz");
    std::fs::write(&file, &posts[0]).unwrap();
    let summary = mtasts(&config, &["tlsrpt", "summarize", file.to_str().unwrap()]);
    assert_eq!(summary.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&summary.stdout).contains("Sender Example"));
    // Delivered, listed so, not sent again.
    let list = String::from_utf8(mtasts(&config, &["tlsrpt", "list"]).stdout).unwrap();
    assert!(
        list.lines()
            .any(|l| l.starts_with(&day) && l.contains("delivered")),
        "{list}"
    );
    mtasts(&config, &["tlsrpt", "send", "--now"]);
    assert_eq!(world.https().requests(RECEIVER), 1);
    let _ = std::fs::remove_dir_all(dir);
}
