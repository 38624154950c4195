//! S-40 with real processes: a fresh `mtasts` process with a warm shared cache (SQLite file,
//! or Redis) answers within the recheck interval without any DNS query or HTTPS request.
//! Also `mtasts cache list|show|purge` and `mtasts refresh` on that cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mtasts_testworld::{DomainSpec, RedisServer, World};
use serde_json::Value;

const D: &str = "shared.mtasts.test";

fn mtasts(world: &World, cache: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .arg("--nameserver")
        .arg(world.dns_addr().to_string())
        .arg("--trust-roots")
        .arg(world.ca_pem_path())
        .arg("--policy-port")
        .arg(world.https_port().to_string())
        .args(["--cache", cache, "-q"])
        .args(args)
        .output()
        .expect("run mtasts")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("mtasts-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The first process fetches; a second, fresh process answers from the cache alone.
fn second_process_uses_the_cache(world: &World, cache: &str) {
    let first = mtasts(world, cache, &["lookup", "--json", D]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(json(&first)[0]["source"], "fetched");
    let (txt, https) = (world.txt_queries(D), world.policy_requests(D));
    assert_eq!(https, 1);

    let second = mtasts(world, cache, &["lookup", "--json", D]);
    assert_eq!(second.status.code(), Some(0));
    let report = json(&second);
    assert_eq!(report[0]["source"], "cache", "S-40: {report}");
    assert_eq!(report[0]["mode"], "enforce");
    assert_eq!(
        world.txt_queries(D),
        txt,
        "S-40: no DNS query in the second process"
    );
    assert_eq!(
        world.policy_requests(D),
        https,
        "S-40: no HTTPS request in the second process"
    );
}

#[test]
fn s40_fresh_process_with_a_warm_sqlite_cache_makes_no_network_request() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(D)).unwrap();
    let dir = TempDir::new("sqlite");
    let cache = dir.path().join("sub").join("cache.db");
    second_process_uses_the_cache(&world, cache.to_str().unwrap());
    assert!(
        cache.exists(),
        "the cache file (and its directory) was created"
    );
}

#[test]
fn s40_fresh_process_with_a_warm_redis_cache_makes_no_network_request() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(D)).unwrap();
    let redis = RedisServer::start().expect("redis-server (run scripts/install-deps)");
    second_process_uses_the_cache(&world, &redis.url());
}

#[test]
fn cache_list_show_refresh_and_purge() {
    let world = World::start().unwrap();
    world.add_policy_domain(&DomainSpec::new(D)).unwrap();
    world
        .add_policy_domain(&DomainSpec::new("other.mtasts.test"))
        .unwrap();
    let dir = TempDir::new("commands");
    let cache = dir.path().join("cache.db");
    let cache = cache.to_str().unwrap();
    let out = mtasts(&world, cache, &["lookup", D, "other.mtasts.test"]);
    assert_eq!(out.status.code(), Some(0));

    let list = json(&mtasts(&world, cache, &["cache", "list", "--json"]));
    let domains: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["domain"].as_str().unwrap())
        .collect();
    assert_eq!(domains, ["other.mtasts.test", D]);
    assert_eq!(list[1]["mode"], "enforce");
    assert_eq!(list[1]["id"], "20240101T000000");

    let table = mtasts(&world, cache, &["cache", "list"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("DOMAIN"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(D) && l.contains("enforce")),
        "{table}"
    );

    let show = json(&mtasts(&world, cache, &["cache", "show", "--json", D]));
    assert!(
        show["text"].as_str().unwrap().contains("mode: enforce"),
        "{show}"
    );
    let missing = mtasts(&world, cache, &["cache", "show", "nowhere.mtasts.test"]);
    assert_eq!(missing.status.code(), Some(1));

    // refresh --all fetches both policies again.
    let refresh = mtasts(&world, cache, &["refresh", "--all", "--json"]);
    assert_eq!(
        refresh.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&refresh.stderr)
    );
    let report = json(&refresh);
    assert_eq!(report["examined"], 2);
    assert_eq!(report["refreshed"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(world.policy_requests(D), 2);

    // A failing refresh: exit 1, the policy stays.
    world.set_policy_response(D, mtasts_testworld::HttpResponse::new(500));
    let refresh = mtasts(&world, cache, &["refresh", "--all"]);
    assert_eq!(refresh.status.code(), Some(1));
    let text = String::from_utf8(refresh.stdout).unwrap();
    assert!(text.contains("sts-policy-fetch-error"), "{text}");
    let show = json(&mtasts(&world, cache, &["cache", "show", "--json", D]));
    assert_eq!(show["mode"], "enforce");
    assert_eq!(show["failures"], 1);

    let purge = mtasts(&world, cache, &["cache", "purge", D]);
    assert!(
        String::from_utf8(purge.stdout)
            .unwrap()
            .starts_with("1 entries removed")
    );
    let purge = mtasts(&world, cache, &["cache", "purge"]);
    assert!(
        String::from_utf8(purge.stdout)
            .unwrap()
            .starts_with("1 entries removed")
    );
    let list = json(&mtasts(&world, cache, &["cache", "list", "--json"]));
    assert_eq!(list, Value::Array(vec![]));
}

/// Issue 10 item 12: `cache show` on a terminal escapes the control characters of a policy a
/// remote server chose; piped, the text is as served. The terminal is util-linux `script`'s.
#[test]
fn cache_show_escapes_control_characters_on_a_terminal() {
    let world = World::start().unwrap();
    let hostile = "hostile.mtasts.test";
    world.add_policy_domain(&DomainSpec::new(hostile)).unwrap();
    let body = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n\
                x-note: \u{1b}]0;owned\u{7}\u{1b}[2J\n";
    world.set_policy_response(hostile, mtasts_testworld::HttpResponse::policy(body));
    let dir = TempDir::new("escape");
    let cache = dir.0.join("cache.db");
    let cache = cache.to_str().unwrap();
    assert!(mtasts(&world, cache, &["lookup", hostile]).status.success());

    let piped = mtasts(&world, cache, &["cache", "show", hostile]);
    assert!(String::from_utf8_lossy(&piped.stdout).contains('\u{1b}'));

    let command = [
        env!("CARGO_BIN_EXE_mtasts").to_string(),
        "--cache".into(),
        cache.into(),
        "-q".into(),
        "cache".into(),
        "show".into(),
        hostile.into(),
    ]
    .join(" ");
    let tty = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux)");
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{shown}");
    assert!(
        shown.contains("x-note: \\u{1b}]0;owned\\u{7}\\u{1b}[2J"),
        "{shown}"
    );
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
}
