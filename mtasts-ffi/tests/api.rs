//! The C API's success paths against the hermetic test world, called from Rust exactly as C
//! calls them: resolutions (S-01, S-02, S-08, S-10, S-22, S-25, S-30), MX verdicts (S-50 to
//! S-55, S-62 to S-64), MX plans, certificate checks (S-57 to S-60), the STARTTLS probe, cache
//! refresh, threads.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::c_char;
use std::ptr::{null, null_mut};

use common::{Fixture, c, ok, text};
use mtasts::mtasts_result::*;
use mtasts::*;
use mtasts_testworld::{CertSpec, SmtpBehaviour, SmtpServer};

/// Everything a resolution says, read through the getters.
#[derive(Debug, Default)]
struct Seen {
    domain: String,
    source: String,
    mode: String,
    has_policy: bool,
    id: Option<String>,
    max_age: Option<u32>,
    mx: Vec<String>,
    text: Option<String>,
    times: Option<(i64, i64)>,
    failure: Option<(mtasts_result, Option<String>, String, bool)>,
    notice: Option<String>,
}

fn read(resolution: *const mtasts_resolution) -> Seen {
    let mut seen = Seen::default();
    // SAFETY: a live resolution and valid output pointers.
    unsafe {
        let mut s: *const c_char = null();
        ok(mtasts_resolution_domain(resolution, &mut s));
        seen.domain = text(s).unwrap();
        let mut source = mtasts_source::MTASTS_SOURCE_NONE;
        ok(mtasts_resolution_source(resolution, &mut source));
        seen.source = text(mtasts_source_str(source as u32)).unwrap();
        let mut mode = mtasts_mode::MTASTS_MODE_NONE;
        ok(mtasts_resolution_mode(resolution, &mut mode));
        seen.mode = text(mtasts_mode_str(mode as u32)).unwrap();
        ok(mtasts_resolution_has_policy(
            resolution,
            &mut seen.has_policy,
        ));
        if seen.has_policy {
            ok(mtasts_resolution_policy_id(resolution, &mut s));
            seen.id = text(s);
            let mut max_age = 0;
            ok(mtasts_resolution_max_age(resolution, &mut max_age));
            seen.max_age = Some(max_age);
            let mut count = 0;
            ok(mtasts_resolution_mx_count(resolution, &mut count));
            for i in 0..count {
                ok(mtasts_resolution_mx_get(resolution, i, &mut s));
                seen.mx.push(text(s).unwrap());
            }
            let mut len = 0;
            ok(mtasts_resolution_policy_text(resolution, &mut s, &mut len));
            let body = text(s).unwrap();
            assert_eq!(body.len(), len);
            seen.text = Some(body);
            // The core's JSON view: the same object `mtasts lookup --json` prints.
            ok(mtasts_resolution_json(resolution, &mut s, &mut len));
            let json: serde_json::Value = serde_json::from_str(&text(s).unwrap()).unwrap();
            assert_eq!(json["policy"]["text"].as_str(), seen.text.as_deref());
            assert_eq!(
                json["policy"]["max_age"].as_u64(),
                seen.max_age.map(u64::from)
            );
            let (mut fetched, mut expires) = (0, 0);
            ok(mtasts_resolution_fetched_at(resolution, &mut fetched));
            ok(mtasts_resolution_expires_at(resolution, &mut expires));
            seen.times = Some((fetched, expires));
        }
        let mut code = MTASTS_OK;
        let (mut result_type, mut reason): (*const c_char, *const c_char) = (null(), null());
        ok(mtasts_resolution_failure(
            resolution,
            &mut code,
            &mut result_type,
            &mut reason,
        ));
        let mut temporary = false;
        ok(mtasts_resolution_failure_is_temporary(
            resolution,
            &mut temporary,
        ));
        if code != MTASTS_OK {
            seen.failure = Some((code, text(result_type), text(reason).unwrap(), temporary));
        } else {
            assert!(result_type.is_null() && reason.is_null() && !temporary);
        }
        ok(mtasts_resolution_notice(resolution, &mut s));
        seen.notice = text(s);
    }
    seen
}

fn resolve_and_read(fixture: &Fixture, domain: &str) -> Seen {
    let resolution = fixture.resolve(domain);
    let seen = read(resolution);
    // SAFETY: owned, freed once.
    unsafe { mtasts_resolution_free(resolution) };
    seen
}

#[test]
fn resolutions_follow_the_scenarios() {
    let fixture = Fixture::new();

    // S-01: enforce policy, fetched.
    let s01 = resolve_and_read(&fixture, "s01.mtasts.test");
    assert_eq!(s01.domain, "s01.mtasts.test");
    assert_eq!(
        (s01.source.as_str(), s01.mode.as_str()),
        ("fetched", "enforce")
    );
    assert_eq!(s01.id.as_deref(), Some("20240101T000000"));
    assert_eq!(s01.max_age, Some(86400));
    assert_eq!(s01.mx, ["mail.example.com", "*.example.net"]);
    assert!(s01.text.as_deref().unwrap().contains("mode: enforce"));
    let (fetched, expires) = s01.times.unwrap();
    assert_eq!(expires - fetched, 86400);
    assert!(s01.failure.is_none());

    // S-30: the second lookup is answered by the cache, without HTTPS.
    let again = resolve_and_read(&fixture, "s01.mtasts.test");
    assert_eq!(again.source, "cache");
    assert_eq!(fixture.world.policy_requests("s01.mtasts.test"), 1);

    // S-02: no policy, nothing wrong.
    let s02 = resolve_and_read(&fixture, "s02.mtasts.test");
    assert_eq!((s02.source.as_str(), s02.mode.as_str()), ("none", "none"));
    assert!(!s02.has_policy && s02.failure.is_none());

    // S-08: SERVFAIL is a temporary DNS failure, never "no policy".
    let s08 = resolve_and_read(&fixture, "s08.mtasts.test");
    assert_eq!(s08.source, "unavailable");
    let (code, result_type, reason, temporary) = s08.failure.unwrap();
    assert_eq!(code, MTASTS_DNS_TEMPORARY);
    assert_eq!(result_type.as_deref(), Some("sts-policy-fetch-error"));
    assert!(reason.contains("_mta-sts.s08.mtasts.test"), "{reason}");
    assert!(temporary);

    // S-10: 404 is a fetch error.
    let s10 = resolve_and_read(&fixture, "s10.mtasts.test");
    let (code, result_type, reason, _) = s10.failure.unwrap();
    assert_eq!(code, MTASTS_POLICY_FETCH);
    assert_eq!(result_type.as_deref(), Some("sts-policy-fetch-error"));
    assert!(reason.contains("404"), "{reason}");

    // S-15: an untrusted certificate on the policy host.
    let s15 = resolve_and_read(&fixture, "s15.mtasts.test");
    let (code, result_type, _, _) = s15.failure.unwrap();
    assert_eq!(code, MTASTS_POLICY_CERTIFICATE);
    assert_eq!(result_type.as_deref(), Some("sts-webpki-invalid"));

    // S-12: text/html is an invalid policy.
    let s12 = resolve_and_read(&fixture, "s12.mtasts.test");
    assert_eq!(
        s12.failure.unwrap().1.as_deref(),
        Some("sts-policy-invalid")
    );

    // S-22: a fetched `mode: none` policy.
    let s22 = resolve_and_read(&fixture, "s22.mtasts.test");
    assert!(s22.has_policy);
    assert_eq!(s22.mode, "none");
    assert!(s22.mx.is_empty());

    // S-07: an invalid record means no policy, with a notice.
    let s07 = resolve_and_read(&fixture, "s07.mtasts.test");
    assert_eq!(s07.source, "none");
    assert!(s07.notice.is_some());

    // S-25: a U-label with a trailing dot, normalised.
    let s25 = resolve_and_read(&fixture, "Bücher.MTASTS.test.");
    assert_eq!(s25.domain, "xn--bcher-kva.mtasts.test");
    assert_eq!(s25.mode, "enforce");
}

/// The verdict for `host` under `resolution`: (name, kind, requires_tls, may_use, reports,
/// mx_host, failure reason code).
fn verdict(
    resolution: *const mtasts_resolution,
    host: &str,
) -> (
    String,
    mtasts_verdict_kind,
    bool,
    bool,
    bool,
    Option<String>,
    Option<String>,
) {
    // SAFETY: live handles, valid outputs.
    unsafe {
        let mut v = null_mut();
        ok(mtasts_verdict_for_mx(resolution, c(host).as_ptr(), &mut v));
        let mut kind = mtasts_verdict_kind::MTASTS_VERDICT_SKIP;
        let (mut requires, mut may_use, mut reports) = (false, false, false);
        ok(mtasts_verdict_summary(
            v,
            &mut kind,
            &mut requires,
            &mut may_use,
            &mut reports,
        ));
        let (mut name, mut mx_host): (*const c_char, *const c_char) = (null(), null());
        ok(mtasts_verdict_strings(v, &mut name, &mut mx_host));
        let mut failure: *const mtasts_mx_failure = null();
        ok(mtasts_verdict_failure(v, &mut failure));
        let code = if failure.is_null() {
            None
        } else {
            let (mut t, mut r, mut d) = (null(), null(), null());
            ok(mtasts_mx_failure_strings(failure, &mut t, &mut r, &mut d));
            assert_eq!(text(t).as_deref(), Some("validation-failure"));
            text(r)
        };
        let out = (
            text(name).unwrap(),
            kind,
            requires,
            may_use,
            reports,
            text(mx_host),
            code,
        );
        mtasts_verdict_free(v);
        out
    }
}

#[test]
fn mx_verdicts_plans_and_decisions() {
    use mtasts_verdict_kind::*;
    let fixture = Fixture::new();
    let enforce = fixture.resolve("s01.mtasts.test");
    let none = fixture.resolve("s02.mtasts.test");

    // S-50, S-51, S-52: matching hosts require verified TLS against the normalised name.
    for (host, normalised) in [
        ("mail.example.com", "mail.example.com"),
        ("MAIL.Example.COM.", "mail.example.com"),
        ("mx1.example.net", "mx1.example.net"),
    ] {
        let (name, kind, requires, may_use, reports, mx_host, failure) = verdict(enforce, host);
        assert_eq!(name, "require-tls");
        assert_eq!(kind, MTASTS_VERDICT_REQUIRE_TLS);
        assert!(requires && may_use && reports);
        assert_eq!(mx_host.as_deref(), Some(normalised));
        assert_eq!(failure, None);
    }
    // S-53, S-54, S-55: mismatches are skipped with validation-failure / mx-mismatch.
    for host in ["a.mx1.example.net", "example.net", "evil.com"] {
        let (name, kind, requires, may_use, _, mx_host, failure) = verdict(enforce, host);
        assert_eq!((name.as_str(), kind), ("skip", MTASTS_VERDICT_SKIP));
        assert!(!requires && !may_use && mx_host.is_none());
        assert_eq!(failure.as_deref(), Some("mx-mismatch"));
    }
    // S-64: no policy, no requirement.
    let (name, kind, _, may_use, reports, _, _) = verdict(none, "evil.com");
    assert_eq!(
        (name.as_str(), kind),
        ("no-requirement", MTASTS_VERDICT_NO_REQUIREMENT)
    );
    assert!(may_use && !reports);

    // SAFETY: live handles, valid outputs.
    unsafe {
        let mut matches = false;
        ok(mtasts_resolution_mx_matches(
            enforce,
            c("mx2.example.net").as_ptr(),
            &mut matches,
        ));
        assert!(matches);
        ok(mtasts_resolution_mx_matches(
            enforce,
            c("a.b.example.net").as_ptr(),
            &mut matches,
        ));
        assert!(!matches);

        // Decisions after STARTTLS: enforce + certificate failure → try next, report it.
        let mut v = null_mut();
        ok(mtasts_verdict_for_mx(
            enforce,
            c("mail.example.com").as_ptr(),
            &mut v,
        ));
        let mut expired = null_mut();
        ok(mtasts_mx_failure_new(
            c("certificate-expired").as_ptr(),
            c("expired in 2001").as_ptr(),
            &mut expired,
        ));
        let mut delivery = null_mut();
        ok(mtasts_verdict_decide(v, expired, &mut delivery));
        let mut deliver = true;
        let mut reported: *const mtasts_mx_failure = null();
        ok(mtasts_delivery_result(
            delivery,
            &mut deliver,
            &mut reported,
        ));
        assert!(!deliver);
        let (mut t, mut r, mut d) = (null(), null(), null());
        ok(mtasts_mx_failure_strings(reported, &mut t, &mut r, &mut d));
        assert_eq!(text(t).as_deref(), Some("certificate-expired"));
        assert_eq!(text(d).as_deref(), Some("expired in 2001"));
        mtasts_delivery_free(delivery);
        ok(mtasts_verdict_decide(v, null(), &mut delivery));
        ok(mtasts_delivery_result(
            delivery,
            &mut deliver,
            &mut reported,
        ));
        assert!(deliver && reported.is_null());
        mtasts_delivery_free(delivery);
        mtasts_verdict_free(v);
        mtasts_mx_failure_free(expired);

        // A plan: order kept, mismatches skipped; all skipped under enforce → defer.
        let hosts = [c("evil.com"), c("mail.example.com"), c("mx2.example.net")];
        let ptrs: Vec<*const c_char> = hosts.iter().map(|h| h.as_ptr()).collect();
        let mut plan = null_mut();
        ok(mtasts_mx_plan_from_hosts(
            enforce,
            ptrs.as_ptr(),
            ptrs.len(),
            &mut plan,
        ));
        let (mut defer, mut implicit, mut usable, mut skipped) = (true, true, 0, 0);
        ok(mtasts_mx_plan_summary(
            plan,
            &mut defer,
            &mut implicit,
            &mut usable,
            &mut skipped,
        ));
        assert!(!defer && !implicit);
        assert_eq!((usable, skipped), (2, 1));
        let mut host: *const c_char = null();
        let mut pv: *const mtasts_verdict = null();
        ok(mtasts_mx_plan_usable(plan, 1, &mut host, &mut pv));
        assert_eq!(text(host).as_deref(), Some("mx2.example.net"));
        let (mut name, mut mx) = (null(), null());
        ok(mtasts_verdict_strings(pv, &mut name, &mut mx));
        assert_eq!(text(name).as_deref(), Some("require-tls"));
        let mut failure: *const mtasts_mx_failure = null();
        ok(mtasts_mx_plan_skipped(plan, 0, &mut host, &mut failure));
        assert_eq!(text(host).as_deref(), Some("evil.com"));
        mtasts_mx_plan_free(plan);

        let bad = [c("evil.com"), c("example.net")];
        let ptrs: Vec<*const c_char> = bad.iter().map(|h| h.as_ptr()).collect();
        ok(mtasts_mx_plan_from_hosts(
            enforce,
            ptrs.as_ptr(),
            2,
            &mut plan,
        ));
        ok(mtasts_mx_plan_summary(
            plan,
            &mut defer,
            &mut implicit,
            &mut usable,
            &mut skipped,
        ));
        assert!(defer, "R-APPLY-1: enforce, nothing usable: defer");
        mtasts_mx_plan_free(plan);

        // R-MX-3: no MX records, the domain itself is the MX host.
        ok(mtasts_mx_plan_from_hosts(none, null(), 0, &mut plan));
        ok(mtasts_mx_plan_summary(
            plan,
            &mut defer,
            &mut implicit,
            &mut usable,
            &mut skipped,
        ));
        assert!(implicit && !defer && usable == 1);
        mtasts_mx_plan_free(plan);

        mtasts_resolution_free(enforce);
        mtasts_resolution_free(none);
    }
}

/// Checks `chain_pem` for `host`: (valid, result type, reason code).
fn check(
    verifier: *const mtasts_cert_verifier,
    chain_pem: &str,
    host: &str,
) -> (bool, Option<String>, Option<String>) {
    // SAFETY: live handles, valid buffers and outputs.
    unsafe {
        let mut check = null_mut();
        ok(mtasts_cert_verifier_check_encoded(
            verifier,
            chain_pem.as_ptr(),
            chain_pem.len(),
            c(host).as_ptr(),
            0,
            &mut check,
        ));
        let mut valid = false;
        let mut failure: *const mtasts_mx_failure = null();
        ok(mtasts_cert_check_result(check, &mut valid, &mut failure));
        let out = if failure.is_null() {
            (valid, None, None)
        } else {
            let (mut t, mut r, mut d) = (null(), null(), null());
            ok(mtasts_mx_failure_strings(failure, &mut t, &mut r, &mut d));
            (valid, text(t), text(r))
        };
        mtasts_cert_check_free(check);
        out
    }
}

#[test]
fn certificate_checks() {
    let fixture = Fixture::new();
    let ca = fixture.world.ca();
    let mut verifier = null_mut();
    let roots = c(fixture.world.ca_pem_path().to_str().unwrap());
    // SAFETY: valid pointers.
    ok(unsafe { mtasts_cert_verifier_new(roots.as_ptr(), &mut verifier) });
    let pem = |spec: &CertSpec| ca.issue(spec).unwrap().chain_pem_parts().concat();

    // S-50: valid.
    let good = pem(&CertSpec::dns(["mail.example.com"]));
    assert_eq!(
        check(verifier, &good, "mail.example.com"),
        (true, None, None)
    );
    // S-61: a wildcard.
    let wild = pem(&CertSpec::dns(["*.example.net"]));
    assert!(check(verifier, &wild, "mx1.example.net").0);
    // S-57: expired.
    let expired = pem(&CertSpec::dns(["mail.example.com"]).expired());
    let (valid, t, r) = check(verifier, &expired, "mail.example.com");
    assert!(!valid);
    assert_eq!(t.as_deref(), Some("certificate-expired"));
    assert_eq!(r.as_deref(), Some("certificate-expired"));
    // S-59: another name.
    let (_, t, _) = check(verifier, &good, "other.example.com");
    assert_eq!(t.as_deref(), Some("certificate-host-mismatch"));
    // S-60: CN only.
    let cn = pem(&CertSpec::cn_only("mail.example.com"));
    let (_, t, r) = check(verifier, &cn, "mail.example.com");
    assert_eq!(t.as_deref(), Some("certificate-host-mismatch"));
    assert_eq!(r.as_deref(), Some("certificate-no-san"));
    // S-58: an untrusted CA.
    let untrusted = fixture
        .world
        .untrusted_ca()
        .issue(&CertSpec::dns(["mail.example.com"]))
        .unwrap()
        .chain_pem_parts()
        .concat();
    let (_, t, _) = check(verifier, &untrusted, "mail.example.com");
    assert_eq!(t.as_deref(), Some("certificate-not-trusted"));

    // The DER-list form, with a time in the past (the certificates are valid 2000-2099).
    let identity = ca
        .issue(&CertSpec::dns(["mail.example.com"]).via_intermediate())
        .unwrap();
    let ders: Vec<&[u8]> = identity.chain_der().iter().map(|d| d.as_ref()).collect();
    let ptrs: Vec<*const u8> = ders.iter().map(|d| d.as_ptr()).collect();
    let lens: Vec<usize> = ders.iter().map(|d| d.len()).collect();
    assert!(ders.len() >= 2, "leaf and intermediate");
    // SAFETY: valid arrays of `ders.len()` elements.
    unsafe {
        let mut check = null_mut();
        ok(mtasts_cert_verifier_check_der(
            verifier,
            ptrs.as_ptr(),
            lens.as_ptr(),
            ptrs.len(),
            c("mail.example.com").as_ptr(),
            1_000_000_000 + 30 * 86_400, // 2001-10
            &mut check,
        ));
        let mut valid = false;
        let mut failure: *const mtasts_mx_failure = null();
        ok(mtasts_cert_check_result(check, &mut valid, &mut failure));
        assert!(valid && failure.is_null());
        mtasts_cert_check_free(check);
        // From a PEM buffer of roots.
        let ca_pem = fixture.world.ca_pem();
        let mut from_pem = null_mut();
        ok(mtasts_cert_verifier_new_from_pem(
            ca_pem.as_ptr(),
            ca_pem.len(),
            &mut from_pem,
        ));
        assert!(check_valid_ptrs(from_pem, &ptrs, &lens));
        mtasts_cert_verifier_free(from_pem);
        mtasts_cert_verifier_free(verifier);
    }
}

/// Whether the DER chain checks as valid for mail.example.com now.
fn check_valid_ptrs(
    verifier: *const mtasts_cert_verifier,
    ptrs: &[*const u8],
    lens: &[usize],
) -> bool {
    // SAFETY: valid arrays, live verifier.
    unsafe {
        let mut check = null_mut();
        ok(mtasts_cert_verifier_check_der(
            verifier,
            ptrs.as_ptr(),
            lens.as_ptr(),
            ptrs.len(),
            c("mail.example.com").as_ptr(),
            0,
            &mut check,
        ));
        let mut valid = false;
        let mut failure: *const mtasts_mx_failure = null();
        ok(mtasts_cert_check_result(check, &mut valid, &mut failure));
        mtasts_cert_check_free(check);
        valid
    }
}

#[test]
fn starttls_probe() {
    let fixture = Fixture::new();
    let identity = fixture
        .world
        .ca()
        .issue(&CertSpec::dns(["mail.example.com"]))
        .unwrap();
    let good = SmtpServer::start(SmtpBehaviour::Starttls(identity.clone())).unwrap();
    let plain = SmtpServer::start(SmtpBehaviour::NoStarttls).unwrap();
    let roots = c(fixture.world.ca_pem_path().to_str().unwrap());
    // SAFETY: live handles, valid pointers.
    unsafe {
        let mut verifier = null_mut();
        ok(mtasts_cert_verifier_new(roots.as_ptr(), &mut verifier));

        let probe = |server: &SmtpServer| {
            let addr = c(&server.addr().to_string());
            let addrs = [addr.as_ptr()];
            let mut report = null_mut();
            ok(mtasts_cert_verifier_probe(
                verifier,
                c("MAIL.example.com.").as_ptr(),
                addrs.as_ptr(),
                1,
                10_000,
                c("client.example.org").as_ptr(),
                &mut report,
            ));
            report
        };

        // S-50 with a real STARTTLS session: pass, SNI = the normalised host.
        let report = probe(&good);
        let mut outcome = mtasts_probe_outcome::MTASTS_PROBE_FAIL;
        let mut failure: *const mtasts_mx_failure = null();
        let mut reason: *const c_char = null();
        let mut total = 0;
        ok(mtasts_probe_report_result(
            report,
            &mut outcome,
            &mut failure,
            &mut reason,
            &mut total,
        ));
        assert_eq!(outcome, mtasts_probe_outcome::MTASTS_PROBE_PASS);
        assert!(failure.is_null() && reason.is_null());
        let (mut address, mut version, mut suite) = (null(), null(), null());
        let mut offered = false;
        ok(mtasts_probe_report_session(
            report,
            &mut address,
            &mut offered,
            &mut version,
            &mut suite,
        ));
        assert!(offered);
        assert_eq!(text(address), Some(good.addr().to_string()));
        assert!(text(version).unwrap().starts_with("TLSv1"));
        assert!(text(suite).is_some());
        let mut count = 0;
        ok(mtasts_probe_report_chain_count(report, &mut count));
        assert_eq!(count, identity.chain_der().len());
        let (mut der, mut len) = (null(), 0);
        ok(mtasts_probe_report_chain_get(report, 0, &mut der, &mut len));
        assert_eq!(
            std::slice::from_raw_parts(der, len),
            identity.leaf_der().as_ref()
        );
        assert_eq!(good.sni_names(), ["mail.example.com"]);
        assert!(
            good.commands()
                .iter()
                .any(|c| c.starts_with("EHLO client.example.org"))
        );
        mtasts_probe_report_free(report);

        // S-56: no STARTTLS.
        let report = probe(&plain);
        ok(mtasts_probe_report_result(
            report,
            &mut outcome,
            &mut failure,
            &mut reason,
            &mut total,
        ));
        assert_eq!(outcome, mtasts_probe_outcome::MTASTS_PROBE_FAIL);
        let (mut t, mut r, mut d) = (null(), null(), null());
        ok(mtasts_mx_failure_strings(failure, &mut t, &mut r, &mut d));
        assert_eq!(text(t).as_deref(), Some("starttls-not-supported"));
        assert_eq!(text(r).as_deref(), Some("starttls-not-offered"));
        mtasts_probe_report_free(report);

        // The resolver form looks the host up in the resolver's DNS: here it has no address,
        // so the probe is incomplete (no connection attempted).
        let mut report = null_mut();
        ok(mtasts_resolver_probe(
            fixture.resolver,
            verifier,
            c("nohost.mtasts.test").as_ptr(),
            good.port(),
            5_000,
            null(),
            &mut report,
        ));
        ok(mtasts_probe_report_result(
            report,
            &mut outcome,
            &mut failure,
            &mut reason,
            &mut total,
        ));
        assert_eq!(outcome, mtasts_probe_outcome::MTASTS_PROBE_INCOMPLETE);
        assert!(text(reason).unwrap().contains("nohost.mtasts.test"));
        mtasts_probe_report_free(report);
        mtasts_cert_verifier_free(verifier);
    }
}

#[test]
fn refresh_renews_cached_policies() {
    let fixture = Fixture::new();
    for domain in ["s01.mtasts.test", "s05.mtasts.test"] {
        let r = fixture.resolve(domain);
        // SAFETY: owned, freed once.
        unsafe { mtasts_resolution_free(r) };
    }
    // Make one refresh fail.
    fixture
        .world
        .set_policy_response("s05.mtasts.test", mtasts_testworld::HttpResponse::new(500));
    // SAFETY: live handles, valid outputs.
    unsafe {
        let mut report = null_mut();
        ok(mtasts_resolver_refresh(
            fixture.resolver,
            true,
            2,
            0,
            &mut report,
        ));
        let (mut examined, mut purged) = (0, 0);
        ok(mtasts_refresh_report_counts(
            report,
            &mut examined,
            &mut purged,
        ));
        assert_eq!((examined, purged), (2, 0));
        let list = |which: mtasts_refresh_list| {
            let mut count = 0;
            ok(mtasts_refresh_report_count(
                report,
                which as u32,
                &mut count,
            ));
            (0..count)
                .map(|i| {
                    let mut s = null();
                    ok(mtasts_refresh_report_domain(
                        report,
                        which as u32,
                        i,
                        &mut s,
                    ));
                    text(s).unwrap()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            list(mtasts_refresh_list::MTASTS_REFRESH_REFRESHED),
            ["s01.mtasts.test"]
        );
        assert_eq!(
            list(mtasts_refresh_list::MTASTS_REFRESH_FAILED),
            ["s05.mtasts.test"]
        );
        assert!(list(mtasts_refresh_list::MTASTS_REFRESH_UNPUBLISHED).is_empty());
        let mut code = MTASTS_OK;
        let mut reason = null();
        ok(mtasts_refresh_report_failure(
            report,
            0,
            &mut code,
            &mut reason,
        ));
        assert_eq!(code, MTASTS_POLICY_FETCH);
        assert!(text(reason).unwrap().contains("500"));
        mtasts_refresh_report_free(report);
    }
    assert_eq!(fixture.world.policy_requests("s01.mtasts.test"), 2);
}

/// S-42 through the C API: one resolver shared by threads, one fetch.
#[test]
fn one_resolver_many_threads() {
    let fixture = Fixture::new();
    let resolver = fixture.resolver as usize;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut resolution = null_mut();
                // SAFETY: the resolver outlives the threads (joined below) and is thread-safe.
                unsafe {
                    ok(mtasts_resolver_resolve(
                        resolver as *const mtasts_resolver,
                        c("s06.mtasts.test").as_ptr(),
                        &mut resolution,
                    ));
                    let mut mode = mtasts_mode::MTASTS_MODE_NONE;
                    ok(mtasts_resolution_mode(resolution, &mut mode));
                    mtasts_resolution_free(resolution);
                    mode
                }
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), mtasts_mode::MTASTS_MODE_ENFORCE);
    }
    assert_eq!(fixture.world.policy_requests("s06.mtasts.test"), 1);
}
