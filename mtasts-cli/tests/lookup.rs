//! `mtasts lookup` against the hermetic test world: every scenario domain of world.json
//! (S-01…S-25) must print the outcome its `expect` block states, as JSON and as a table, with
//! the documented exit status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use mtasts_testworld::{ExpectedMode, Source, World, WorldSpec};
use serde_json::Value;

fn mtasts(world: &World, args: &[&str]) -> Output {
    common::mtasts(world)
        .arg("-q")
        .args(args)
        .output()
        .expect("run mtasts")
}

#[test]
fn lookup_json_matches_every_scenario_of_the_world() {
    let spec = WorldSpec::bundled().unwrap();
    let world = World::from_spec(&spec).unwrap();
    let domains: Vec<_> = spec.domains.iter().filter(|d| d.expect.is_some()).collect();
    assert!(domains.len() >= 25, "world.json covers S-01..S-25");
    let mut args = vec!["lookup", "--json"];
    args.extend(domains.iter().map(|d| d.lookup_name()));
    let out = mtasts(&world, &args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let reports: Vec<Value> = serde_json::from_str(&stdout).expect("JSON array");
    assert_eq!(reports.len(), domains.len());
    // Some scenarios are failures (S-08, S-10, ...): exit status 1.
    assert_eq!(out.status.code(), Some(1), "{stdout}");

    for (domain, report) in domains.iter().zip(&reports) {
        let id = domain.scenario.as_deref().unwrap_or(&domain.name);
        let expect = domain.expect.as_ref().unwrap();
        assert_eq!(
            report["domain"],
            domain.name.as_str(),
            "{id}: normalised domain"
        );
        let mode = expect.policy.map(|m| match m {
            ExpectedMode::Enforce => "enforce",
            ExpectedMode::Testing => "testing",
            ExpectedMode::None => "none",
        });
        assert_eq!(report["policy"]["mode"].as_str(), mode, "{id}: {report}");
        assert_eq!(
            report["mode"],
            mode.unwrap_or("none"),
            "{id}: mode in effect"
        );
        let source = match expect.source {
            Source::None => "none",
            Source::Fetched => "fetched",
            Source::Unavailable => "unavailable",
        };
        assert_eq!(report["source"], source, "{id}: {report}");
        assert_eq!(
            report["failure"]["result_type"].as_str(),
            expect.result_type.as_deref(),
            "{id}: {report}"
        );
        if expect.dns_temporary {
            assert_eq!(report["failure"]["kind"], "dns-temporary", "{id}: {report}");
        }
        if let Some(policy_id) = &expect.policy_id {
            assert_eq!(report["policy"]["id"], policy_id.as_str(), "{id}");
        }
        if let Some(text) = &expect.raw_contains {
            let raw = report["policy"]["text"].as_str().unwrap_or_default();
            assert!(raw.contains(text.as_str()), "{id}: {raw:?}");
        }
        if let Some(n) = expect.https_requests {
            assert_eq!(
                world.policy_requests(&domain.name),
                n,
                "{id}: HTTPS requests"
            );
        }
    }
}

#[test]
fn lookup_table_and_exit_status() {
    let spec = WorldSpec::bundled().unwrap();
    let world = World::from_spec(&spec).unwrap();
    let name = |id: &str| spec.scenario(id).next().unwrap().name.clone();
    let (s01, s02, s10) = (name("S-01"), name("S-02"), name("S-10"));

    // A policy and a domain without one: exit 0, one table row each.
    let out = mtasts(&world, &["lookup", &s01, &s02]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("DOMAIN"), "{table}");
    let row = |d: &str| lines.iter().find(|l| l.starts_with(d)).copied().unwrap();
    let words: Vec<&str> = row(&s01).split_whitespace().collect();
    assert_eq!(
        words,
        [
            s01.as_str(),
            "enforce",
            "fetched",
            "20240101T000000",
            "86400",
            "mail.example.com,*.example.net"
        ]
    );
    let words: Vec<&str> = row(&s02).split_whitespace().collect();
    assert_eq!(words, [s02.as_str(), "none", "none", "-", "-", "-"]);

    // A fetch failure: exit 1 and the failure with its result type under the row.
    let out = mtasts(&world, &["lookup", &s10]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("failure: sts-policy-fetch-error: fetching https://mta-sts."),
        "{table}"
    );

    // An invalid domain is a usage error: exit 2, reported, the other domains still looked up.
    let out = mtasts(&world, &["lookup", "--json", "192.0.2.1", &s01]);
    assert_eq!(out.status.code(), Some(2));
    let reports: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports[0]["failure"]["kind"], "invalid-domain");
    assert_eq!(reports[1]["mode"], "enforce");

    // Bad arguments and unusable configuration: exit 2 with a message on stderr.
    let out = mtasts(&world, &["lookup"]);
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args([
            "--trust-roots",
            "/nonexistent/roots.pem",
            "--cache",
            "memory",
            "lookup",
            &s01,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/roots.pem"), "{stderr}");
}

mod golden;

/// Issue 11: `mtasts lookup --json` over every domain of the test world, pinned.
#[test]
fn lookup_json_is_the_golden_view() {
    let spec = WorldSpec::bundled().unwrap();
    let world = World::from_spec(&spec).unwrap();
    let mut args = vec!["lookup", "--json"];
    args.extend(spec.domains.iter().map(|d| d.lookup_name()));
    let out = mtasts(&world, &args);
    let mut value: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    golden::normalise(&mut value, &[world.https_port(), world.dns_addr().port()]);
    golden::check("lookup.json", &value);
}

/// Issue 11: `--config FILE` is read by the core's settings parser; options override it; a
/// typo is an error naming the file and the line (exit 2), never ignored.
#[test]
fn config_files_are_read_and_typos_refused() {
    let spec = WorldSpec::bundled().unwrap();
    let world = World::from_spec(&spec).unwrap();
    let dir = std::env::temp_dir().join(format!("mtasts-cli-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.conf");
    std::fs::write(
        &good,
        format!(
            "# the test world\nnameserver = {}\ntrust_roots = {}\npolicy_port = {}\ncache = memory\n",
            world.dns_addr(),
            world.ca_pem_path().display(),
            world.https_port()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mtasts"))
            .args(args)
            .env_remove("MTASTS_CACHE")
            .output()
            .unwrap()
    };
    let out = run(&[
        "--config",
        good.to_str().unwrap(),
        "lookup",
        "--json",
        "s01.mtasts.test",
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["source"], "fetched", "{json}");
    // An option overrides the file: no policy host listens on port 9.
    let out = run(&[
        "--config",
        good.to_str().unwrap(),
        "--policy-port",
        "9",
        "lookup",
        "--json",
        "s01.mtasts.test",
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["source"], "unavailable", "{json}");
    let typo = dir.join("typo.conf");
    std::fs::write(&typo, "cache = memory\nfetch_timout = 10\n").unwrap();
    let out = run(&[
        "--config",
        typo.to_str().unwrap(),
        "lookup",
        "s01.mtasts.test",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("typo.conf:2: unknown setting \"fetch_timout\""),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
