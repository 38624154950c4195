//! The error paths of every exported function: NULL parameters (`MTASTS_NULL_PARAMETER`),
//! strings that are not UTF-8 (`MTASTS_INVALID_PARAMETER`), wrong handle use
//! (`MTASTS_INVALID_HANDLE`, `MTASTS_INDEX_OUT_OF_RANGE`, `MTASTS_NO_POLICY`), bad values, and
//! the last-error message each leaves. `every_export_is_covered` checks that each function of
//! the header appears here.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::c_char;
use std::ptr::{null, null_mut};

use common::{BAD_UTF8, Fixture, bad, c, expect, last_error, ok, text};
use mtasts::mtasts_result::*;
use mtasts::*;

/// Passes a handle of another type where `T` is expected.
fn wrong<T, U>(p: *mut U) -> *mut T {
    p.cast()
}

#[test]
fn result_codes_and_last_error() {
    // Numbers are part of the ABI: they never change once released.
    let pinned: &[(mtasts_result, u32)] = &[
        (MTASTS_OK, 0),
        (MTASTS_NULL_PARAMETER, 1),
        (MTASTS_INVALID_PARAMETER, 2),
        (MTASTS_PANIC, 3),
        (MTASTS_INVALID_HANDLE, 4),
        (MTASTS_INDEX_OUT_OF_RANGE, 5),
        (MTASTS_NO_POLICY, 6),
        (MTASTS_CONFIG, 7),
        (MTASTS_ERROR, 8),
        (MTASTS_DNS_TEMPORARY, 100),
        (MTASTS_POLICY_FETCH, 200),
        (MTASTS_POLICY_CERTIFICATE, 201),
        (MTASTS_FETCH_BACKOFF, 202),
        (MTASTS_INVALID_DOMAIN, 300),
        (MTASTS_INVALID_RECORD, 301),
        (MTASTS_INVALID_POLICY, 302),
        (MTASTS_INVALID_MX_PATTERN, 303),
        (MTASTS_CACHE, 400),
        (MTASTS_INVALID_CHAIN, 500),
        (MTASTS_INVALID_SESSION, 600),
        (MTASTS_REPORT_STORE, 601),
    ];
    assert_eq!(pinned.len(), mtasts_result::ALL.len());
    for (code, number) in pinned {
        assert_eq!(*code as u32, *number);
        let description = text(mtasts_result_str(*number)).unwrap();
        assert!(!description.is_empty(), "{code:?}");
    }
    assert_eq!(text(mtasts_result_str(0)).unwrap(), "success");
    assert!(mtasts_result_str(9).is_null());
    assert!(mtasts_result_str(u32::MAX).is_null());

    // mtasts_last_error: snprintf semantics.
    // SAFETY: valid pointers, or the NULL cases under test.
    unsafe {
        expect(
            mtasts_config_new(null_mut()),
            MTASTS_NULL_PARAMETER,
            "config_out",
        );
        let message = "parameter `config_out` is NULL";
        let mut needed = 0usize;
        ok(mtasts_last_error(null_mut(), 0, &mut needed));
        assert_eq!(needed, message.len());
        let mut small = [0x55 as c_char; 8];
        ok(mtasts_last_error(
            small.as_mut_ptr(),
            small.len(),
            &mut needed,
        ));
        assert_eq!(needed, message.len(), "the full length, though cut");
        assert_eq!(text(small.as_ptr()).unwrap(), &message[..7]);
        let mut one = [0x55 as c_char; 1];
        ok(mtasts_last_error(one.as_mut_ptr(), 1, &mut needed));
        assert_eq!(one[0], 0, "len 1: just the NUL");
        assert_eq!(
            mtasts_last_error(null_mut(), 5, &mut needed),
            MTASTS_NULL_PARAMETER
        );
        assert_eq!(
            mtasts_last_error(small.as_mut_ptr(), 8, null_mut()),
            MTASTS_NULL_PARAMETER
        );
        // Neither the refused calls nor successes changed the message.
        assert_eq!(last_error(), message);
        let mut config = null_mut();
        ok(mtasts_config_new(&mut config));
        assert_eq!(last_error(), message, "success leaves the message alone");
        mtasts_config_free(config);
    }

    // The message is per thread.
    std::thread::spawn(|| assert_eq!(last_error(), ""))
        .join()
        .unwrap();
    assert!(!text(mtasts_version()).unwrap().is_empty());
}

#[test]
fn config_errors() {
    // SAFETY: valid pointers, or the invalid ones under test.
    unsafe {
        expect(
            mtasts_config_new(null_mut()),
            MTASTS_NULL_PARAMETER,
            "config_out",
        );
        let mut config = null_mut();
        ok(mtasts_config_new(&mut config));
        let ns = c("127.0.0.1:53");

        expect(
            mtasts_config_add_nameserver(null_mut(), ns.as_ptr()),
            MTASTS_NULL_PARAMETER,
            "config",
        );
        expect(
            mtasts_config_add_nameserver(config, null()),
            MTASTS_NULL_PARAMETER,
            "nameserver",
        );
        expect(
            mtasts_config_add_nameserver(config, bad()),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        for bad_addr in ["127.0.0.1", "dns.example:53", "", "[::1]"] {
            expect(
                mtasts_config_add_nameserver(config, c(bad_addr).as_ptr()),
                MTASTS_INVALID_PARAMETER,
                "ip:port",
            );
        }
        ok(mtasts_config_add_nameserver(config, c("[::1]:53").as_ptr()));

        expect(
            mtasts_config_set_trust_roots(null_mut(), c("system").as_ptr()),
            MTASTS_NULL_PARAMETER,
            "config",
        );
        expect(
            mtasts_config_set_trust_roots(config, null()),
            MTASTS_NULL_PARAMETER,
            "roots",
        );
        expect(
            mtasts_config_set_trust_roots(config, bad()),
            MTASTS_INVALID_PARAMETER,
            "roots",
        );
        expect(
            mtasts_config_set_trust_roots(config, c("").as_ptr()),
            MTASTS_INVALID_PARAMETER,
            "empty",
        );

        expect(
            mtasts_config_set_cache(null_mut(), c("memory").as_ptr()),
            MTASTS_NULL_PARAMETER,
            "config",
        );
        expect(
            mtasts_config_set_cache(config, null()),
            MTASTS_NULL_PARAMETER,
            "location",
        );
        expect(
            mtasts_config_set_cache(config, bad()),
            MTASTS_INVALID_PARAMETER,
            "location",
        );
        expect(
            mtasts_config_set_cache(config, c("http://cache").as_ptr()),
            MTASTS_CONFIG,
            "cache location",
        );
        ok(mtasts_config_set_cache(config, c("memory").as_ptr()));

        expect(
            mtasts_config_set_fetch_timeout_ms(null_mut(), 1),
            MTASTS_NULL_PARAMETER,
            "config",
        );
        expect(
            mtasts_config_set_fetch_timeout_ms(config, 0),
            MTASTS_INVALID_PARAMETER,
            "positive",
        );
        expect(
            mtasts_config_set_dns_timeout_ms(null_mut(), 1),
            MTASTS_NULL_PARAMETER,
            "config",
        );
        expect(
            mtasts_config_set_dns_timeout_ms(config, 0),
            MTASTS_INVALID_PARAMETER,
            "positive",
        );
        expect(
            mtasts_config_set_recheck_interval_s(null_mut(), 60),
            MTASTS_NULL_PARAMETER,
            "config",
        );
        ok(mtasts_config_set_recheck_interval_s(config, 0));
        expect(
            mtasts_config_set_policy_port(null_mut(), 443),
            MTASTS_NULL_PARAMETER,
            "config",
        );
        ok(mtasts_config_set_policy_port(config, 0));

        // Wrong handle: a resolver passed as a config, and the other way round.
        let mut resolver = null_mut();
        ok(mtasts_resolver_new(config, &mut resolver));
        expect(
            mtasts_config_set_policy_port(wrong(resolver), 1),
            MTASTS_INVALID_HANDLE,
            "not a live mtasts_config",
        );
        expect(
            mtasts_resolver_new(wrong(resolver), &mut resolver),
            MTASTS_INVALID_HANDLE,
            "mtasts_config",
        );
        // Freeing another type's handle is refused, not a crash.
        mtasts_config_free(wrong(resolver));
        mtasts_resolver_free(resolver);
        mtasts_config_free(config);
        mtasts_config_free(null_mut());
    }
}

#[test]
fn resolver_errors() {
    // SAFETY: valid pointers, or the invalid ones under test.
    unsafe {
        let mut config = null_mut();
        ok(mtasts_config_new(&mut config));
        let mut resolver = null_mut();
        expect(
            mtasts_resolver_new(null(), &mut resolver),
            MTASTS_NULL_PARAMETER,
            "config",
        );
        expect(
            mtasts_resolver_new(config, null_mut()),
            MTASTS_NULL_PARAMETER,
            "resolver_out",
        );
        // An unreadable trust-root file is a configuration error, and nothing is written.
        ok(mtasts_config_set_trust_roots(
            config,
            c("/nonexistent/roots.pem").as_ptr(),
        ));
        ok(mtasts_config_add_nameserver(
            config,
            c("127.0.0.1:9").as_ptr(),
        ));
        expect(
            mtasts_resolver_new(config, &mut resolver),
            MTASTS_CONFIG,
            "/nonexistent/roots.pem",
        );
        assert!(resolver.is_null(), "outputs are written only on success");
        // A cache that cannot be opened.
        ok(mtasts_config_set_trust_roots(config, c("bundled").as_ptr()));
        ok(mtasts_config_set_cache(
            config,
            c("/proc/no/such/dir/cache.db").as_ptr(),
        ));
        let rc = mtasts_resolver_new(config, &mut resolver);
        assert!(rc == MTASTS_CACHE || rc == MTASTS_CONFIG, "{rc:?}");
        assert!(
            last_error().contains("/proc/no/such/dir"),
            "{}",
            last_error()
        );
        ok(mtasts_config_set_cache(config, c("memory").as_ptr()));
        ok(mtasts_resolver_new(config, &mut resolver));

        let domain = c("example.com");
        let mut resolution = null_mut();
        expect(
            mtasts_resolver_resolve(null(), domain.as_ptr(), &mut resolution),
            MTASTS_NULL_PARAMETER,
            "resolver",
        );
        expect(
            mtasts_resolver_resolve(resolver, null(), &mut resolution),
            MTASTS_NULL_PARAMETER,
            "domain",
        );
        expect(
            mtasts_resolver_resolve(resolver, domain.as_ptr(), null_mut()),
            MTASTS_NULL_PARAMETER,
            "resolution_out",
        );
        expect(
            mtasts_resolver_resolve(resolver, bad(), &mut resolution),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        for invalid in ["", "192.0.2.1", "exa mple.com", "-x.example"] {
            expect(
                mtasts_resolver_resolve(resolver, c(invalid).as_ptr(), &mut resolution),
                MTASTS_INVALID_DOMAIN,
                "invalid domain",
            );
        }
        expect(
            mtasts_resolver_resolve(wrong(config), domain.as_ptr(), &mut resolution),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolver",
        );
        assert!(resolution.is_null());

        // Refresh and its report.
        let mut report = null_mut();
        expect(
            mtasts_resolver_refresh(null(), false, 1, 0, &mut report),
            MTASTS_NULL_PARAMETER,
            "resolver",
        );
        expect(
            mtasts_resolver_refresh(resolver, false, 1, 0, null_mut()),
            MTASTS_NULL_PARAMETER,
            "report_out",
        );
        expect(
            mtasts_resolver_refresh(wrong(config), false, 1, 0, &mut report),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolver",
        );
        ok(mtasts_resolver_refresh(resolver, true, 0, 0, &mut report));
        let (mut examined, mut purged, mut count) = (9usize, 9usize, 9usize);
        expect(
            mtasts_refresh_report_counts(null(), &mut examined, &mut purged),
            MTASTS_NULL_PARAMETER,
            "report",
        );
        expect(
            mtasts_refresh_report_counts(report, null_mut(), &mut purged),
            MTASTS_NULL_PARAMETER,
            "examined_out",
        );
        expect(
            mtasts_refresh_report_counts(report, &mut examined, null_mut()),
            MTASTS_NULL_PARAMETER,
            "purged_out",
        );
        ok(mtasts_refresh_report_counts(
            report,
            &mut examined,
            &mut purged,
        ));
        assert_eq!((examined, purged), (0, 0));
        expect(
            mtasts_refresh_report_count(null(), 0, &mut count),
            MTASTS_NULL_PARAMETER,
            "report",
        );
        expect(
            mtasts_refresh_report_count(report, 0, null_mut()),
            MTASTS_NULL_PARAMETER,
            "count_out",
        );
        expect(
            mtasts_refresh_report_count(report, 3, &mut count),
            MTASTS_INVALID_PARAMETER,
            "mtasts_refresh_list",
        );
        ok(mtasts_refresh_report_count(
            report,
            mtasts_refresh_list::MTASTS_REFRESH_FAILED as u32,
            &mut count,
        ));
        assert_eq!(count, 0);
        let mut name: *const c_char = null();
        expect(
            mtasts_refresh_report_domain(null(), 0, 0, &mut name),
            MTASTS_NULL_PARAMETER,
            "report",
        );
        expect(
            mtasts_refresh_report_domain(report, 0, 0, null_mut()),
            MTASTS_NULL_PARAMETER,
            "domain_out",
        );
        expect(
            mtasts_refresh_report_domain(report, 7, 0, &mut name),
            MTASTS_INVALID_PARAMETER,
            "mtasts_refresh_list",
        );
        expect(
            mtasts_refresh_report_domain(report, 0, 0, &mut name),
            MTASTS_INDEX_OUT_OF_RANGE,
            "index 0",
        );
        let mut code = MTASTS_OK;
        expect(
            mtasts_refresh_report_failure(null(), 0, &mut code, &mut name),
            MTASTS_NULL_PARAMETER,
            "report",
        );
        expect(
            mtasts_refresh_report_failure(report, 0, null_mut(), &mut name),
            MTASTS_NULL_PARAMETER,
            "code_out",
        );
        expect(
            mtasts_refresh_report_failure(report, 0, &mut code, null_mut()),
            MTASTS_NULL_PARAMETER,
            "reason_out",
        );
        expect(
            mtasts_refresh_report_failure(report, 0, &mut code, &mut name),
            MTASTS_INDEX_OUT_OF_RANGE,
            "index 0",
        );
        expect(
            mtasts_refresh_report_count(wrong(resolver), 0, &mut count),
            MTASTS_INVALID_HANDLE,
            "mtasts_refresh_report",
        );
        mtasts_refresh_report_free(report);
        mtasts_refresh_report_free(null_mut());
        mtasts_resolver_free(null_mut());
        mtasts_resolver_free(resolver);
        mtasts_config_free(config);
    }
}

#[test]
fn resolution_errors() {
    let fixture = Fixture::new();
    let with_policy = fixture.resolve("s01.mtasts.test");
    let without = fixture.resolve("s02.mtasts.test");
    // SAFETY: valid pointers, or the invalid ones under test.
    unsafe {
        let mut s: *const c_char = null();
        let mut len = 0usize;
        let mut n32 = 0u32;
        let mut n64 = 0i64;
        let mut count = 0usize;
        let mut flag = false;
        let mut mode = mtasts_mode::MTASTS_MODE_NONE;
        let mut source = mtasts_source::MTASTS_SOURCE_NONE;
        let mut code = MTASTS_OK;
        let res = with_policy.cast_const();
        let other: *const mtasts_resolution = wrong(fixture.resolver);

        // NULL handle, NULL output and wrong handle, for every getter.
        expect(
            mtasts_resolution_domain(null(), &mut s),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_domain(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "domain_out",
        );
        expect(
            mtasts_resolution_domain(other, &mut s),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_source(null(), &mut source),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_source(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "source_out",
        );
        expect(
            mtasts_resolution_source(other, &mut source),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_mode(null(), &mut mode),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_mode(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "mode_out",
        );
        expect(
            mtasts_resolution_mode(other, &mut mode),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_has_policy(null(), &mut flag),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_has_policy(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "has_policy_out",
        );
        expect(
            mtasts_resolution_has_policy(other, &mut flag),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_policy_id(null(), &mut s),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_policy_id(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "id_out",
        );
        expect(
            mtasts_resolution_policy_id(other, &mut s),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_max_age(null(), &mut n32),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_max_age(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "max_age_out",
        );
        expect(
            mtasts_resolution_max_age(other, &mut n32),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_fetched_at(null(), &mut n64),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_fetched_at(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "fetched_at_out",
        );
        expect(
            mtasts_resolution_fetched_at(other, &mut n64),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_expires_at(null(), &mut n64),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_expires_at(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "expires_at_out",
        );
        expect(
            mtasts_resolution_expires_at(other, &mut n64),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_mx_count(null(), &mut count),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_mx_count(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "count_out",
        );
        expect(
            mtasts_resolution_mx_count(other, &mut count),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_notice(null(), &mut s),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_notice(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "notice_out",
        );
        expect(
            mtasts_resolution_notice(other, &mut s),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_failure_is_temporary(null(), &mut flag),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_failure_is_temporary(res, null_mut()),
            MTASTS_NULL_PARAMETER,
            "temporary_out",
        );
        expect(
            mtasts_resolution_failure_is_temporary(other, &mut flag),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_mx_get(null(), 0, &mut s),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_mx_get(res, 0, null_mut()),
            MTASTS_NULL_PARAMETER,
            "pattern_out",
        );
        expect(
            mtasts_resolution_mx_get(other, 0, &mut s),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_mx_get(res, 2, &mut s),
            MTASTS_INDEX_OUT_OF_RANGE,
            "index 2",
        );
        expect(
            mtasts_resolution_json(null(), &mut s, &mut len),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_json(res, null_mut(), &mut len),
            MTASTS_NULL_PARAMETER,
            "json_out",
        );
        expect(
            mtasts_resolution_json(res, &mut s, null_mut()),
            MTASTS_NULL_PARAMETER,
            "len_out",
        );
        expect(
            mtasts_resolution_policy_text(null(), &mut s, &mut len),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_policy_text(res, null_mut(), &mut len),
            MTASTS_NULL_PARAMETER,
            "text_out",
        );
        expect(
            mtasts_resolution_policy_text(res, &mut s, null_mut()),
            MTASTS_NULL_PARAMETER,
            "len_out",
        );
        expect(
            mtasts_resolution_policy_text(other, &mut s, &mut len),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        let host = c("mail.example.com");
        expect(
            mtasts_resolution_mx_matches(null(), host.as_ptr(), &mut flag),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_mx_matches(res, null(), &mut flag),
            MTASTS_NULL_PARAMETER,
            "mx_host",
        );
        expect(
            mtasts_resolution_mx_matches(res, host.as_ptr(), null_mut()),
            MTASTS_NULL_PARAMETER,
            "matches_out",
        );
        expect(
            mtasts_resolution_mx_matches(res, bad(), &mut flag),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_resolution_mx_matches(other, host.as_ptr(), &mut flag),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        expect(
            mtasts_resolution_failure(null(), &mut code, &mut s, &mut s),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_resolution_failure(res, null_mut(), &mut s, &mut s),
            MTASTS_NULL_PARAMETER,
            "code_out",
        );
        expect(
            mtasts_resolution_failure(res, &mut code, null_mut(), &mut s),
            MTASTS_NULL_PARAMETER,
            "result_type_out",
        );
        expect(
            mtasts_resolution_failure(res, &mut code, &mut s, null_mut()),
            MTASTS_NULL_PARAMETER,
            "reason_out",
        );
        expect(
            mtasts_resolution_failure(other, &mut code, &mut s, &mut s),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );

        // Policy getters on a resolution without a policy: MTASTS_NO_POLICY, outputs untouched.
        let none = without.cast_const();
        s = null();
        expect(
            mtasts_resolution_policy_id(none, &mut s),
            MTASTS_NO_POLICY,
            "s02.mtasts.test has no policy",
        );
        assert!(s.is_null());
        expect(
            mtasts_resolution_max_age(none, &mut n32),
            MTASTS_NO_POLICY,
            "no policy",
        );
        expect(
            mtasts_resolution_fetched_at(none, &mut n64),
            MTASTS_NO_POLICY,
            "no policy",
        );
        expect(
            mtasts_resolution_expires_at(none, &mut n64),
            MTASTS_NO_POLICY,
            "no policy",
        );
        expect(
            mtasts_resolution_mx_count(none, &mut count),
            MTASTS_NO_POLICY,
            "no policy",
        );
        expect(
            mtasts_resolution_mx_get(none, 0, &mut s),
            MTASTS_NO_POLICY,
            "no policy",
        );
        expect(
            mtasts_resolution_policy_text(none, &mut s, &mut len),
            MTASTS_NO_POLICY,
            "no policy",
        );
        expect(
            mtasts_resolution_mx_matches(none, host.as_ptr(), &mut flag),
            MTASTS_NO_POLICY,
            "no policy",
        );
        // Getters that do not need a policy still work.
        ok(mtasts_resolution_domain_not_found(none, &mut flag));
        expect(
            mtasts_resolution_domain_not_found(null(), &mut flag),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        ok(mtasts_resolution_json(none, &mut s, &mut len));
        assert!(text(s).unwrap().contains("\"policy\": null"));
        ok(mtasts_resolution_mode(none, &mut mode));
        assert_eq!(mode, mtasts_mode::MTASTS_MODE_NONE);
        ok(mtasts_resolution_failure(none, &mut code, &mut s, &mut s));
        assert_eq!(code, MTASTS_OK);
        assert!(s.is_null());

        // The static name getters.
        assert_eq!(text(mtasts_mode_str(2)).unwrap(), "enforce");
        assert!(mtasts_mode_str(3).is_null());
        assert_eq!(text(mtasts_source_str(3)).unwrap(), "none");
        assert_eq!(text(mtasts_source_str(5)).unwrap(), "cache-unreadable");
        assert!(mtasts_source_str(6).is_null());

        mtasts_resolution_free(with_policy);
        mtasts_resolution_free(without);
        mtasts_resolution_free(null_mut());
    }
}

#[test]
fn verdict_and_plan_errors() {
    let fixture = Fixture::new();
    let resolution = fixture.resolve("s01.mtasts.test");
    // SAFETY: valid pointers, or the invalid ones under test.
    unsafe {
        let res = resolution.cast_const();
        let other: *const mtasts_resolution = wrong(fixture.resolver);
        let host = c("evil.com");
        let mut s: *const c_char = null();
        let mut flag = false;
        let mut kind = mtasts_verdict_kind::MTASTS_VERDICT_SKIP;

        // mtasts_mx_failure
        let mut failure = null_mut();
        let (code, detail) = (c("certificate-expired"), c("expired in 2001"));
        expect(
            mtasts_mx_failure_new(null(), detail.as_ptr(), &mut failure),
            MTASTS_NULL_PARAMETER,
            "reason_code",
        );
        expect(
            mtasts_mx_failure_new(code.as_ptr(), null(), &mut failure),
            MTASTS_NULL_PARAMETER,
            "detail",
        );
        expect(
            mtasts_mx_failure_new(code.as_ptr(), detail.as_ptr(), null_mut()),
            MTASTS_NULL_PARAMETER,
            "failure_out",
        );
        expect(
            mtasts_mx_failure_new(bad(), detail.as_ptr(), &mut failure),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_mx_failure_new(code.as_ptr(), bad(), &mut failure),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_mx_failure_new(c("expired").as_ptr(), detail.as_ptr(), &mut failure),
            MTASTS_INVALID_PARAMETER,
            "reason code",
        );
        ok(mtasts_mx_failure_new(
            code.as_ptr(),
            detail.as_ptr(),
            &mut failure,
        ));
        let (mut t, mut r, mut d): (*const c_char, *const c_char, *const c_char) =
            (null(), null(), null());
        expect(
            mtasts_mx_failure_strings(null(), &mut t, &mut r, &mut d),
            MTASTS_NULL_PARAMETER,
            "failure",
        );
        expect(
            mtasts_mx_failure_strings(failure, null_mut(), &mut r, &mut d),
            MTASTS_NULL_PARAMETER,
            "result_type_out",
        );
        expect(
            mtasts_mx_failure_strings(failure, &mut t, null_mut(), &mut d),
            MTASTS_NULL_PARAMETER,
            "reason_code_out",
        );
        expect(
            mtasts_mx_failure_strings(failure, &mut t, &mut r, null_mut()),
            MTASTS_NULL_PARAMETER,
            "detail_out",
        );
        expect(
            mtasts_mx_failure_strings(wrong(resolution), &mut t, &mut r, &mut d),
            MTASTS_INVALID_HANDLE,
            "mtasts_mx_failure",
        );
        ok(mtasts_mx_failure_strings(failure, &mut t, &mut r, &mut d));
        assert_eq!(text(t).unwrap(), "certificate-expired");

        // mtasts_verdict
        let mut verdict = null_mut();
        expect(
            mtasts_verdict_for_mx(null(), host.as_ptr(), &mut verdict),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_verdict_for_mx(res, null(), &mut verdict),
            MTASTS_NULL_PARAMETER,
            "mx_host",
        );
        expect(
            mtasts_verdict_for_mx(res, host.as_ptr(), null_mut()),
            MTASTS_NULL_PARAMETER,
            "verdict_out",
        );
        expect(
            mtasts_verdict_for_mx(res, bad(), &mut verdict),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_verdict_for_mx(other, host.as_ptr(), &mut verdict),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        ok(mtasts_verdict_for_mx(res, host.as_ptr(), &mut verdict));
        let v = verdict.cast_const();
        let (mut f1, mut f2, mut f3) = (false, false, false);
        expect(
            mtasts_verdict_summary(null(), &mut kind, &mut f1, &mut f2, &mut f3),
            MTASTS_NULL_PARAMETER,
            "verdict",
        );
        expect(
            mtasts_verdict_summary(v, null_mut(), &mut f1, &mut f2, &mut f3),
            MTASTS_NULL_PARAMETER,
            "kind_out",
        );
        expect(
            mtasts_verdict_summary(v, &mut kind, null_mut(), &mut f2, &mut f3),
            MTASTS_NULL_PARAMETER,
            "requires_tls_out",
        );
        expect(
            mtasts_verdict_summary(v, &mut kind, &mut f1, null_mut(), &mut f3),
            MTASTS_NULL_PARAMETER,
            "may_use_out",
        );
        expect(
            mtasts_verdict_summary(v, &mut kind, &mut f1, &mut f2, null_mut()),
            MTASTS_NULL_PARAMETER,
            "reports_failures_out",
        );
        expect(
            mtasts_verdict_summary(wrong(failure), &mut kind, &mut f1, &mut f2, &mut f3),
            MTASTS_INVALID_HANDLE,
            "mtasts_verdict",
        );
        expect(
            mtasts_verdict_strings(null(), &mut s, &mut s),
            MTASTS_NULL_PARAMETER,
            "verdict",
        );
        expect(
            mtasts_verdict_strings(v, null_mut(), &mut s),
            MTASTS_NULL_PARAMETER,
            "name_out",
        );
        expect(
            mtasts_verdict_strings(v, &mut s, null_mut()),
            MTASTS_NULL_PARAMETER,
            "mx_host_out",
        );
        expect(
            mtasts_verdict_strings(wrong(failure), &mut s, &mut s),
            MTASTS_INVALID_HANDLE,
            "mtasts_verdict",
        );
        let mut view: *const mtasts_mx_failure = null();
        expect(
            mtasts_verdict_failure(null(), &mut view),
            MTASTS_NULL_PARAMETER,
            "verdict",
        );
        expect(
            mtasts_verdict_failure(v, null_mut()),
            MTASTS_NULL_PARAMETER,
            "failure_out",
        );
        expect(
            mtasts_verdict_failure(wrong(failure), &mut view),
            MTASTS_INVALID_HANDLE,
            "mtasts_verdict",
        );

        // mtasts_verdict_decide and mtasts_delivery
        let mut delivery = null_mut();
        expect(
            mtasts_verdict_decide(null(), null(), &mut delivery),
            MTASTS_NULL_PARAMETER,
            "verdict",
        );
        expect(
            mtasts_verdict_decide(v, null(), null_mut()),
            MTASTS_NULL_PARAMETER,
            "delivery_out",
        );
        expect(
            mtasts_verdict_decide(v, wrong(verdict), &mut delivery),
            MTASTS_INVALID_HANDLE,
            "mtasts_mx_failure",
        );
        ok(mtasts_verdict_decide(v, failure, &mut delivery));
        expect(
            mtasts_delivery_result(null(), &mut flag, &mut view),
            MTASTS_NULL_PARAMETER,
            "delivery",
        );
        expect(
            mtasts_delivery_result(delivery, null_mut(), &mut view),
            MTASTS_NULL_PARAMETER,
            "deliver_out",
        );
        expect(
            mtasts_delivery_result(delivery, &mut flag, null_mut()),
            MTASTS_NULL_PARAMETER,
            "failure_out",
        );
        expect(
            mtasts_delivery_result(wrong(verdict), &mut flag, &mut view),
            MTASTS_INVALID_HANDLE,
            "mtasts_delivery",
        );
        mtasts_delivery_free(delivery);
        mtasts_delivery_free(null_mut());

        // mtasts_mx_plan
        let hosts = [c("evil.com"), c("mail.example.com")];
        let ptrs: Vec<*const c_char> = hosts.iter().map(|h| h.as_ptr()).collect();
        let mut plan = null_mut();
        expect(
            mtasts_mx_plan_from_hosts(null(), ptrs.as_ptr(), 2, &mut plan),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_mx_plan_from_hosts(res, null(), 2, &mut plan),
            MTASTS_NULL_PARAMETER,
            "hosts",
        );
        expect(
            mtasts_mx_plan_from_hosts(res, ptrs.as_ptr(), 2, null_mut()),
            MTASTS_NULL_PARAMETER,
            "plan_out",
        );
        let with_null = [ptrs[0], null()];
        expect(
            mtasts_mx_plan_from_hosts(res, with_null.as_ptr(), 2, &mut plan),
            MTASTS_NULL_PARAMETER,
            "element of `hosts`",
        );
        let with_bad = [ptrs[0], bad()];
        expect(
            mtasts_mx_plan_from_hosts(res, with_bad.as_ptr(), 2, &mut plan),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_mx_plan_from_hosts(other, ptrs.as_ptr(), 2, &mut plan),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolution",
        );
        assert!(plan.is_null());
        ok(mtasts_mx_plan_from_hosts(res, null(), 0, &mut plan)); // implicit MX
        mtasts_mx_plan_free(plan);
        ok(mtasts_mx_plan_from_hosts(res, ptrs.as_ptr(), 2, &mut plan));
        let (mut defer, mut implicit, mut usable, mut skipped) = (true, true, 0usize, 0usize);
        expect(
            mtasts_mx_plan_summary(null(), &mut defer, &mut implicit, &mut usable, &mut skipped),
            MTASTS_NULL_PARAMETER,
            "plan",
        );
        expect(
            mtasts_mx_plan_summary(plan, null_mut(), &mut implicit, &mut usable, &mut skipped),
            MTASTS_NULL_PARAMETER,
            "defer_out",
        );
        expect(
            mtasts_mx_plan_summary(plan, &mut defer, null_mut(), &mut usable, &mut skipped),
            MTASTS_NULL_PARAMETER,
            "implicit_mx_out",
        );
        expect(
            mtasts_mx_plan_summary(plan, &mut defer, &mut implicit, null_mut(), &mut skipped),
            MTASTS_NULL_PARAMETER,
            "usable_count_out",
        );
        expect(
            mtasts_mx_plan_summary(plan, &mut defer, &mut implicit, &mut usable, null_mut()),
            MTASTS_NULL_PARAMETER,
            "skipped_count_out",
        );
        expect(
            mtasts_mx_plan_summary(
                wrong(verdict),
                &mut defer,
                &mut implicit,
                &mut usable,
                &mut skipped,
            ),
            MTASTS_INVALID_HANDLE,
            "mtasts_mx_plan",
        );
        let mut plan_verdict: *const mtasts_verdict = null();
        expect(
            mtasts_mx_plan_usable(null(), 0, &mut s, &mut plan_verdict),
            MTASTS_NULL_PARAMETER,
            "plan",
        );
        expect(
            mtasts_mx_plan_usable(plan, 0, null_mut(), &mut plan_verdict),
            MTASTS_NULL_PARAMETER,
            "host_out",
        );
        expect(
            mtasts_mx_plan_usable(plan, 0, &mut s, null_mut()),
            MTASTS_NULL_PARAMETER,
            "verdict_out",
        );
        expect(
            mtasts_mx_plan_usable(plan, 1, &mut s, &mut plan_verdict),
            MTASTS_INDEX_OUT_OF_RANGE,
            "index 1",
        );
        expect(
            mtasts_mx_plan_usable(wrong(verdict), 0, &mut s, &mut plan_verdict),
            MTASTS_INVALID_HANDLE,
            "mtasts_mx_plan",
        );
        expect(
            mtasts_mx_plan_skipped(null(), 0, &mut s, &mut view),
            MTASTS_NULL_PARAMETER,
            "plan",
        );
        expect(
            mtasts_mx_plan_skipped(plan, 0, null_mut(), &mut view),
            MTASTS_NULL_PARAMETER,
            "host_out",
        );
        expect(
            mtasts_mx_plan_skipped(plan, 0, &mut s, null_mut()),
            MTASTS_NULL_PARAMETER,
            "failure_out",
        );
        expect(
            mtasts_mx_plan_skipped(plan, 1, &mut s, &mut view),
            MTASTS_INDEX_OUT_OF_RANGE,
            "index 1",
        );
        expect(
            mtasts_mx_plan_skipped(wrong(verdict), 0, &mut s, &mut view),
            MTASTS_INVALID_HANDLE,
            "mtasts_mx_plan",
        );

        // Borrowed views are refused by `_free` (no crash, still usable afterwards).
        ok(mtasts_mx_plan_usable(plan, 0, &mut s, &mut plan_verdict));
        ok(mtasts_mx_plan_skipped(plan, 0, &mut s, &mut view));
        mtasts_verdict_free(plan_verdict.cast_mut());
        mtasts_mx_failure_free(view.cast_mut());
        ok(mtasts_verdict_summary(
            plan_verdict,
            &mut kind,
            &mut f1,
            &mut f2,
            &mut f3,
        ));
        assert_eq!(kind, mtasts_verdict_kind::MTASTS_VERDICT_REQUIRE_TLS);
        ok(mtasts_mx_failure_strings(view, &mut t, &mut r, &mut d));
        assert_eq!(text(r).unwrap(), "mx-mismatch");
        // A borrowed verdict is usable wherever an owned one is.
        ok(mtasts_verdict_decide(plan_verdict, view, &mut delivery));
        mtasts_delivery_free(delivery);

        mtasts_mx_plan_free(plan);
        mtasts_mx_plan_free(null_mut());
        mtasts_verdict_free(verdict);
        mtasts_verdict_free(null_mut());
        mtasts_mx_failure_free(failure);
        mtasts_mx_failure_free(null_mut());
        mtasts_resolution_free(resolution);
    }
}

#[test]
fn certificate_and_probe_errors() {
    let fixture = Fixture::new();
    let pem = fixture.world.ca_pem();
    // SAFETY: valid pointers, or the invalid ones under test.
    unsafe {
        let mut verifier = null_mut();
        expect(
            mtasts_cert_verifier_new(null(), &mut verifier),
            MTASTS_NULL_PARAMETER,
            "roots",
        );
        expect(
            mtasts_cert_verifier_new(c("bundled").as_ptr(), null_mut()),
            MTASTS_NULL_PARAMETER,
            "verifier_out",
        );
        expect(
            mtasts_cert_verifier_new(bad(), &mut verifier),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_cert_verifier_new(c("").as_ptr(), &mut verifier),
            MTASTS_INVALID_PARAMETER,
            "empty",
        );
        expect(
            mtasts_cert_verifier_new(c("/nonexistent.pem").as_ptr(), &mut verifier),
            MTASTS_CONFIG,
            "/nonexistent.pem",
        );
        expect(
            mtasts_cert_verifier_new_from_pem(null(), 5, &mut verifier),
            MTASTS_NULL_PARAMETER,
            "pem",
        );
        expect(
            mtasts_cert_verifier_new_from_pem(pem.as_ptr(), pem.len(), null_mut()),
            MTASTS_NULL_PARAMETER,
            "verifier_out",
        );
        expect(
            mtasts_cert_verifier_new_from_pem(null(), 0, &mut verifier),
            MTASTS_CONFIG,
            "trust roots",
        );
        expect(
            mtasts_cert_verifier_new_from_pem(b"junk".as_ptr(), 4, &mut verifier),
            MTASTS_CONFIG,
            "trust roots",
        );
        assert!(verifier.is_null());
        ok(mtasts_cert_verifier_new_from_pem(
            pem.as_ptr(),
            pem.len(),
            &mut verifier,
        ));
        let v = verifier.cast_const();
        let host = c("mail.example.com");

        let der = [1u8, 2, 3];
        let certs = [der.as_ptr()];
        let lens = [der.len()];
        let mut check = null_mut();
        expect(
            mtasts_cert_verifier_check_der(
                null(),
                certs.as_ptr(),
                lens.as_ptr(),
                1,
                host.as_ptr(),
                0,
                &mut check,
            ),
            MTASTS_NULL_PARAMETER,
            "verifier",
        );
        expect(
            mtasts_cert_verifier_check_der(
                v,
                null(),
                lens.as_ptr(),
                1,
                host.as_ptr(),
                0,
                &mut check,
            ),
            MTASTS_NULL_PARAMETER,
            "certs",
        );
        expect(
            mtasts_cert_verifier_check_der(
                v,
                certs.as_ptr(),
                null(),
                1,
                host.as_ptr(),
                0,
                &mut check,
            ),
            MTASTS_NULL_PARAMETER,
            "cert_lens",
        );
        expect(
            mtasts_cert_verifier_check_der(
                v,
                certs.as_ptr(),
                lens.as_ptr(),
                1,
                null(),
                0,
                &mut check,
            ),
            MTASTS_NULL_PARAMETER,
            "mx_host",
        );
        expect(
            mtasts_cert_verifier_check_der(
                v,
                certs.as_ptr(),
                lens.as_ptr(),
                1,
                host.as_ptr(),
                0,
                null_mut(),
            ),
            MTASTS_NULL_PARAMETER,
            "check_out",
        );
        expect(
            mtasts_cert_verifier_check_der(
                v,
                certs.as_ptr(),
                lens.as_ptr(),
                1,
                bad(),
                0,
                &mut check,
            ),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_cert_verifier_check_der(
                v,
                certs.as_ptr(),
                lens.as_ptr(),
                1,
                c("192.0.2.1").as_ptr(),
                0,
                &mut check,
            ),
            MTASTS_INVALID_DOMAIN,
            "192.0.2.1",
        );
        expect(
            mtasts_cert_verifier_check_der(v, null(), null(), 0, host.as_ptr(), 0, &mut check),
            MTASTS_INVALID_CHAIN,
            "empty",
        );
        let null_cert = [null::<u8>()];
        expect(
            mtasts_cert_verifier_check_der(
                v,
                null_cert.as_ptr(),
                lens.as_ptr(),
                1,
                host.as_ptr(),
                0,
                &mut check,
            ),
            MTASTS_NULL_PARAMETER,
            "element of `certs`",
        );
        expect(
            mtasts_cert_verifier_check_der(
                wrong(fixture.resolver),
                certs.as_ptr(),
                lens.as_ptr(),
                1,
                host.as_ptr(),
                0,
                &mut check,
            ),
            MTASTS_INVALID_HANDLE,
            "mtasts_cert_verifier",
        );
        assert!(check.is_null());
        // Bytes that are not a certificate are a failure of the MX, not an error.
        ok(mtasts_cert_verifier_check_der(
            v,
            certs.as_ptr(),
            lens.as_ptr(),
            1,
            host.as_ptr(),
            0,
            &mut check,
        ));
        mtasts_cert_check_free(check);

        expect(
            mtasts_cert_verifier_check_encoded(
                null(),
                der.as_ptr(),
                3,
                host.as_ptr(),
                0,
                &mut check,
            ),
            MTASTS_NULL_PARAMETER,
            "verifier",
        );
        expect(
            mtasts_cert_verifier_check_encoded(v, null(), 3, host.as_ptr(), 0, &mut check),
            MTASTS_NULL_PARAMETER,
            "chain",
        );
        expect(
            mtasts_cert_verifier_check_encoded(v, der.as_ptr(), 3, null(), 0, &mut check),
            MTASTS_NULL_PARAMETER,
            "mx_host",
        );
        expect(
            mtasts_cert_verifier_check_encoded(v, der.as_ptr(), 3, host.as_ptr(), 0, null_mut()),
            MTASTS_NULL_PARAMETER,
            "check_out",
        );
        expect(
            mtasts_cert_verifier_check_encoded(v, der.as_ptr(), 3, bad(), 0, &mut check),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_cert_verifier_check_encoded(v, der.as_ptr(), 3, host.as_ptr(), 0, &mut check),
            MTASTS_INVALID_CHAIN,
            "DER",
        );
        expect(
            mtasts_cert_verifier_check_encoded(v, null(), 0, host.as_ptr(), 0, &mut check),
            MTASTS_INVALID_CHAIN,
            "empty",
        );
        let junk_pem = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        expect(
            mtasts_cert_verifier_check_encoded(
                v,
                junk_pem.as_ptr(),
                junk_pem.len(),
                host.as_ptr(),
                0,
                &mut check,
            ),
            MTASTS_INVALID_CHAIN,
            "PEM",
        );
        expect(
            mtasts_cert_verifier_check_encoded(
                wrong(fixture.config),
                der.as_ptr(),
                3,
                host.as_ptr(),
                0,
                &mut check,
            ),
            MTASTS_INVALID_HANDLE,
            "mtasts_cert_verifier",
        );

        let leaf = fixture
            .world
            .ca()
            .issue(&mtasts_testworld::CertSpec::dns(["mail.example.com"]))
            .unwrap();
        let chain_pem = leaf.chain_pem_parts().concat();
        ok(mtasts_cert_verifier_check_encoded(
            v,
            chain_pem.as_ptr(),
            chain_pem.len(),
            host.as_ptr(),
            0,
            &mut check,
        ));
        let mut valid = false;
        let mut view: *const mtasts_mx_failure = null();
        expect(
            mtasts_cert_check_result(null(), &mut valid, &mut view),
            MTASTS_NULL_PARAMETER,
            "check",
        );
        expect(
            mtasts_cert_check_result(check, null_mut(), &mut view),
            MTASTS_NULL_PARAMETER,
            "valid_out",
        );
        expect(
            mtasts_cert_check_result(check, &mut valid, null_mut()),
            MTASTS_NULL_PARAMETER,
            "failure_out",
        );
        expect(
            mtasts_cert_check_result(wrong(verifier), &mut valid, &mut view),
            MTASTS_INVALID_HANDLE,
            "mtasts_cert_check",
        );
        ok(mtasts_cert_check_result(check, &mut valid, &mut view));
        assert!(valid && view.is_null());
        mtasts_cert_check_free(check);
        mtasts_cert_check_free(null_mut());

        // The probe: parameters are checked before any connection.
        let mut report = null_mut();
        let r = fixture.resolver.cast_const();
        expect(
            mtasts_resolver_probe(null(), v, host.as_ptr(), 25, 100, null(), &mut report),
            MTASTS_NULL_PARAMETER,
            "resolver",
        );
        expect(
            mtasts_resolver_probe(r, null(), host.as_ptr(), 25, 100, null(), &mut report),
            MTASTS_NULL_PARAMETER,
            "verifier",
        );
        expect(
            mtasts_resolver_probe(r, v, null(), 25, 100, null(), &mut report),
            MTASTS_NULL_PARAMETER,
            "mx_host",
        );
        expect(
            mtasts_resolver_probe(r, v, host.as_ptr(), 25, 100, null(), null_mut()),
            MTASTS_NULL_PARAMETER,
            "report_out",
        );
        expect(
            mtasts_resolver_probe(r, v, bad(), 25, 100, null(), &mut report),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_resolver_probe(r, v, host.as_ptr(), 25, 100, bad(), &mut report),
            MTASTS_INVALID_PARAMETER,
            "ehlo_name",
        );
        expect(
            mtasts_resolver_probe(
                r,
                v,
                host.as_ptr(),
                25,
                100,
                c("bad name!").as_ptr(),
                &mut report,
            ),
            MTASTS_CONFIG,
            "EHLO",
        );
        expect(
            mtasts_resolver_probe(r, v, c("").as_ptr(), 25, 100, null(), &mut report),
            MTASTS_INVALID_DOMAIN,
            "invalid domain",
        );
        expect(
            mtasts_resolver_probe(
                wrong(verifier),
                v,
                host.as_ptr(),
                25,
                100,
                null(),
                &mut report,
            ),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolver",
        );
        expect(
            mtasts_resolver_probe(
                r,
                wrong(fixture.resolver),
                host.as_ptr(),
                25,
                100,
                null(),
                &mut report,
            ),
            MTASTS_INVALID_HANDLE,
            "mtasts_cert_verifier",
        );
        let addr = c("127.0.0.1:9");
        let addrs = [addr.as_ptr()];
        expect(
            mtasts_cert_verifier_probe(
                null(),
                host.as_ptr(),
                addrs.as_ptr(),
                1,
                100,
                null(),
                &mut report,
            ),
            MTASTS_NULL_PARAMETER,
            "verifier",
        );
        expect(
            mtasts_cert_verifier_probe(v, null(), addrs.as_ptr(), 1, 100, null(), &mut report),
            MTASTS_NULL_PARAMETER,
            "mx_host",
        );
        expect(
            mtasts_cert_verifier_probe(v, host.as_ptr(), null(), 1, 100, null(), &mut report),
            MTASTS_NULL_PARAMETER,
            "addrs",
        );
        expect(
            mtasts_cert_verifier_probe(
                v,
                host.as_ptr(),
                addrs.as_ptr(),
                1,
                100,
                null(),
                null_mut(),
            ),
            MTASTS_NULL_PARAMETER,
            "report_out",
        );
        let null_addr = [null::<c_char>()];
        expect(
            mtasts_cert_verifier_probe(
                v,
                host.as_ptr(),
                null_addr.as_ptr(),
                1,
                100,
                null(),
                &mut report,
            ),
            MTASTS_NULL_PARAMETER,
            "addrs[i]",
        );
        let bad_addr = [c("localhost:25")];
        let bad_ptrs = [bad_addr[0].as_ptr()];
        expect(
            mtasts_cert_verifier_probe(
                v,
                host.as_ptr(),
                bad_ptrs.as_ptr(),
                1,
                100,
                null(),
                &mut report,
            ),
            MTASTS_INVALID_PARAMETER,
            "ip:port",
        );
        let bad_utf8 = [BAD_UTF8.as_ptr().cast::<c_char>()];
        expect(
            mtasts_cert_verifier_probe(
                v,
                host.as_ptr(),
                bad_utf8.as_ptr(),
                1,
                100,
                null(),
                &mut report,
            ),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_cert_verifier_probe(
                wrong(fixture.config),
                host.as_ptr(),
                addrs.as_ptr(),
                1,
                100,
                null(),
                &mut report,
            ),
            MTASTS_INVALID_HANDLE,
            "mtasts_cert_verifier",
        );
        assert!(report.is_null());

        // A probe of a closed port: a report (incomplete), not an error.
        ok(mtasts_cert_verifier_probe(
            v,
            host.as_ptr(),
            addrs.as_ptr(),
            1,
            2000,
            null(),
            &mut report,
        ));
        let mut outcome = mtasts_probe_outcome::MTASTS_PROBE_PASS;
        let mut reason: *const c_char = null();
        let mut total = 0u64;
        expect(
            mtasts_probe_report_result(null(), &mut outcome, &mut view, &mut reason, &mut total),
            MTASTS_NULL_PARAMETER,
            "report",
        );
        expect(
            mtasts_probe_report_result(report, null_mut(), &mut view, &mut reason, &mut total),
            MTASTS_NULL_PARAMETER,
            "outcome_out",
        );
        expect(
            mtasts_probe_report_result(report, &mut outcome, null_mut(), &mut reason, &mut total),
            MTASTS_NULL_PARAMETER,
            "failure_out",
        );
        expect(
            mtasts_probe_report_result(report, &mut outcome, &mut view, null_mut(), &mut total),
            MTASTS_NULL_PARAMETER,
            "reason_out",
        );
        expect(
            mtasts_probe_report_result(report, &mut outcome, &mut view, &mut reason, null_mut()),
            MTASTS_NULL_PARAMETER,
            "total_ms_out",
        );
        expect(
            mtasts_probe_report_result(
                wrong(verifier),
                &mut outcome,
                &mut view,
                &mut reason,
                &mut total,
            ),
            MTASTS_INVALID_HANDLE,
            "mtasts_probe_report",
        );
        ok(mtasts_probe_report_result(
            report,
            &mut outcome,
            &mut view,
            &mut reason,
            &mut total,
        ));
        assert_eq!(outcome, mtasts_probe_outcome::MTASTS_PROBE_INCOMPLETE);
        assert!(view.is_null() && text(reason).is_some());
        let (mut a, mut tv, mut cs) = (null::<c_char>(), null::<c_char>(), null::<c_char>());
        let mut offered = true;
        expect(
            mtasts_probe_report_session(null(), &mut a, &mut offered, &mut tv, &mut cs),
            MTASTS_NULL_PARAMETER,
            "report",
        );
        expect(
            mtasts_probe_report_session(report, null_mut(), &mut offered, &mut tv, &mut cs),
            MTASTS_NULL_PARAMETER,
            "address_out",
        );
        expect(
            mtasts_probe_report_session(report, &mut a, null_mut(), &mut tv, &mut cs),
            MTASTS_NULL_PARAMETER,
            "starttls_offered_out",
        );
        expect(
            mtasts_probe_report_session(report, &mut a, &mut offered, null_mut(), &mut cs),
            MTASTS_NULL_PARAMETER,
            "tls_version_out",
        );
        expect(
            mtasts_probe_report_session(report, &mut a, &mut offered, &mut tv, null_mut()),
            MTASTS_NULL_PARAMETER,
            "cipher_suite_out",
        );
        expect(
            mtasts_probe_report_session(wrong(verifier), &mut a, &mut offered, &mut tv, &mut cs),
            MTASTS_INVALID_HANDLE,
            "mtasts_probe_report",
        );
        ok(mtasts_probe_report_session(
            report,
            &mut a,
            &mut offered,
            &mut tv,
            &mut cs,
        ));
        assert!(a.is_null() && !offered && tv.is_null() && cs.is_null());
        let mut count = 9usize;
        expect(
            mtasts_probe_report_chain_count(null(), &mut count),
            MTASTS_NULL_PARAMETER,
            "report",
        );
        expect(
            mtasts_probe_report_chain_count(report, null_mut()),
            MTASTS_NULL_PARAMETER,
            "count_out",
        );
        expect(
            mtasts_probe_report_chain_count(wrong(verifier), &mut count),
            MTASTS_INVALID_HANDLE,
            "mtasts_probe_report",
        );
        ok(mtasts_probe_report_chain_count(report, &mut count));
        assert_eq!(count, 0);
        let mut bytes: *const u8 = null();
        let mut len = 0usize;
        expect(
            mtasts_probe_report_chain_get(null(), 0, &mut bytes, &mut len),
            MTASTS_NULL_PARAMETER,
            "report",
        );
        expect(
            mtasts_probe_report_chain_get(report, 0, null_mut(), &mut len),
            MTASTS_NULL_PARAMETER,
            "der_out",
        );
        expect(
            mtasts_probe_report_chain_get(report, 0, &mut bytes, null_mut()),
            MTASTS_NULL_PARAMETER,
            "len_out",
        );
        expect(
            mtasts_probe_report_chain_get(report, 0, &mut bytes, &mut len),
            MTASTS_INDEX_OUT_OF_RANGE,
            "index 0",
        );
        expect(
            mtasts_probe_report_chain_get(wrong(verifier), 0, &mut bytes, &mut len),
            MTASTS_INVALID_HANDLE,
            "mtasts_probe_report",
        );
        mtasts_probe_report_free(report);
        mtasts_probe_report_free(null_mut());
        mtasts_cert_verifier_free(verifier);
        mtasts_cert_verifier_free(null_mut());
    }
}

#[test]
fn log_callback_errors() {
    // SAFETY: no callback is installed by these calls.
    unsafe {
        expect(
            mtasts_set_log_callback(None, null_mut(), 6),
            MTASTS_INVALID_PARAMETER,
            "mtasts_log_level",
        );
        // NULL callback: logging off (always accepted).
        ok(mtasts_set_log_callback(None, null_mut(), 0));
        ok(mtasts_set_log_callback(None, null_mut(), 5));
    }
}

/// Every function declared in the header appears in this file.
#[test]
fn every_export_is_covered() {
    let header = include_str!("../../include/mtasts.h");
    let this = include_str!("errors.rs");
    let mut missing = Vec::new();
    let mut count = 0;
    for line in header.lines() {
        // Declarations start at column 0 with the return type: `mtasts_result mtasts_x(`.
        if line.starts_with([' ', '*', '#', '/']) || line.starts_with("typedef") {
            continue;
        }
        let Some((before, _)) = line.split_once('(') else {
            continue;
        };
        let name = before.rsplit([' ', '*']).next().unwrap_or_default();
        if !name.starts_with("mtasts_") {
            continue;
        }
        count += 1;
        if !this.contains(&format!("{name}(")) {
            missing.push(name.to_owned());
        }
    }
    assert!(count > 60, "parsed only {count} functions from the header");
    assert!(missing.is_empty(), "not exercised here: {missing:?}");
}

/// Issue 11: the diagnosis exports' error paths and getters.
#[test]
fn diagnosis_errors() {
    let fixture = Fixture::new();
    // SAFETY: valid pointers, or the invalid ones under test.
    unsafe {
        let mut verifier = null_mut();
        let roots = c(fixture.world.ca_pem_path().to_str().unwrap());
        ok(mtasts_cert_verifier_new(roots.as_ptr(), &mut verifier));
        let domain = c("s01.mtasts.test");
        let mut d = null_mut();
        expect(
            mtasts_resolver_check(
                null(),
                verifier,
                domain.as_ptr(),
                false,
                0,
                0,
                null(),
                &mut d,
            ),
            MTASTS_NULL_PARAMETER,
            "resolver",
        );
        expect(
            mtasts_resolver_check(
                fixture.resolver,
                verifier,
                null(),
                false,
                0,
                0,
                null(),
                &mut d,
            ),
            MTASTS_NULL_PARAMETER,
            "domain",
        );
        expect(
            mtasts_resolver_check(
                fixture.resolver,
                verifier,
                domain.as_ptr(),
                false,
                0,
                0,
                null(),
                null_mut(),
            ),
            MTASTS_NULL_PARAMETER,
            "diagnosis_out",
        );
        ok(mtasts_resolver_check(
            fixture.resolver,
            verifier,
            domain.as_ptr(),
            false,
            0,
            0,
            null(),
            &mut d,
        ));
        let (mut good, mut defer, mut count) = (true, false, 0);
        ok(mtasts_diagnosis_summary(
            d, &mut good, &mut defer, &mut count,
        ));
        assert!(!good && defer && count >= 2);
        expect(
            mtasts_diagnosis_summary(null(), &mut good, &mut defer, &mut count),
            MTASTS_NULL_PARAMETER,
            "diagnosis",
        );
        let mut severity = mtasts_severity::MTASTS_SEVERITY_WARNING;
        let (mut code, mut mx, mut message, mut fix) = (null(), null(), null(), null());
        ok(mtasts_diagnosis_problem(
            d,
            0,
            &mut severity,
            &mut code,
            &mut mx,
            &mut message,
            &mut fix,
        ));
        assert!(!text(fix).unwrap().is_empty());
        expect(
            mtasts_diagnosis_problem(
                d,
                count,
                &mut severity,
                &mut code,
                &mut mx,
                &mut message,
                &mut fix,
            ),
            MTASTS_INDEX_OUT_OF_RANGE,
            "out of range",
        );
        let (mut json, mut len) = (null(), 0);
        ok(mtasts_diagnosis_json(d, &mut json, &mut len));
        let value: serde_json::Value = serde_json::from_str(&text(json).unwrap()).unwrap();
        assert_eq!(value["defer"], true);
        expect(
            mtasts_diagnosis_json(d, null_mut(), &mut len),
            MTASTS_NULL_PARAMETER,
            "json_out",
        );
        mtasts_diagnosis_free(d);
        mtasts_diagnosis_free(null_mut());
        mtasts_cert_verifier_free(verifier);
    }
}

/// Issue 11: the settings exports.
#[test]
fn settings_errors() {
    // SAFETY: valid pointers, or the invalid ones under test.
    unsafe {
        let mut config = null_mut();
        ok(mtasts_config_new(&mut config));
        let (key, value) = (c("fetch_timeout"), c("12"));
        ok(mtasts_config_set(config, key.as_ptr(), value.as_ptr()));
        expect(
            mtasts_config_set(null_mut(), key.as_ptr(), value.as_ptr()),
            MTASTS_NULL_PARAMETER,
            "config",
        );
        expect(
            mtasts_config_set(config, c("bogus").as_ptr(), value.as_ptr()),
            MTASTS_CONFIG,
            "unknown setting",
        );
        expect(
            mtasts_config_load_file(config, c("/nonexistent/x.conf").as_ptr()),
            MTASTS_CONFIG,
            "cannot read",
        );
        expect(
            mtasts_config_load_file(config, null()),
            MTASTS_NULL_PARAMETER,
            "path",
        );
        let mut level = mtasts_log_level::MTASTS_LOG_OFF;
        ok(mtasts_config_log_level(config, &mut level));
        assert_eq!(level, mtasts_log_level::MTASTS_LOG_WARN);
        expect(
            mtasts_config_log_level(config, null_mut()),
            MTASTS_NULL_PARAMETER,
            "level_out",
        );
        mtasts_config_free(config);
    }
}

#[test]
fn resolve_many_errors_and_per_domain_codes() {
    let fx = Fixture::new();
    let good = c("s01.mtasts.test");
    let invalid = c("exa mple.com");
    let domains: [*const c_char; 4] = [good.as_ptr(), null(), bad(), invalid.as_ptr()];
    let mut out = [null_mut(); 4];
    let mut codes = [MTASTS_PANIC; 4];
    // SAFETY: valid pointers, or the invalid ones under test.
    unsafe {
        expect(
            mtasts_resolver_resolve_many(
                null(),
                domains.as_ptr(),
                4,
                2,
                out.as_mut_ptr(),
                null_mut(),
            ),
            MTASTS_NULL_PARAMETER,
            "resolver",
        );
        expect(
            mtasts_resolver_resolve_many(fx.resolver, null(), 4, 2, out.as_mut_ptr(), null_mut()),
            MTASTS_NULL_PARAMETER,
            "domains",
        );
        expect(
            mtasts_resolver_resolve_many(
                fx.resolver,
                domains.as_ptr(),
                4,
                2,
                null_mut(),
                null_mut(),
            ),
            MTASTS_NULL_PARAMETER,
            "resolutions_out",
        );
        expect(
            mtasts_resolver_resolve_many(
                wrong(fx.config),
                domains.as_ptr(),
                4,
                2,
                out.as_mut_ptr(),
                null_mut(),
            ),
            MTASTS_INVALID_HANDLE,
            "mtasts_resolver",
        );
        assert!(
            out.iter().all(|p| p.is_null()),
            "nothing written on an error"
        );
        // An empty batch needs no arrays, but still a resolver.
        ok(mtasts_resolver_resolve_many(
            fx.resolver,
            null(),
            0,
            0,
            null_mut(),
            null_mut(),
        ));
        expect(
            mtasts_resolver_resolve_many(null(), null(), 0, 0, null_mut(), null_mut()),
            MTASTS_NULL_PARAMETER,
            "resolver",
        );
        ok(mtasts_resolver_resolve_many(
            fx.resolver,
            domains.as_ptr(),
            4,
            u32::MAX,
            out.as_mut_ptr(),
            codes.as_mut_ptr(),
        ));
        assert_eq!(
            codes,
            [
                MTASTS_OK,
                MTASTS_NULL_PARAMETER,
                MTASTS_INVALID_PARAMETER,
                MTASTS_INVALID_DOMAIN
            ]
        );
        assert!(!out[0].is_null() && out[1..].iter().all(|p| p.is_null()));
        mtasts_resolution_free(out[0]);
    }
}

/// A SQLite cache file of its own for a reporter test, removed first.
fn report_db(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "mtasts-ffi-report-{}-{name}.db",
        std::process::id()
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// Issue 15: recording TLS-RPT sessions over the C ABI (R-RPT-3, R-RPT-4, R-RPT-5,
/// R-RPT-11), into a real SQLite file, and every export's error paths.
#[test]
fn report_recording_and_errors() {
    use mtasts_mta_event as E;
    use mtasts_policy_type as T;
    let fixture = Fixture::new();
    let db = report_db("record");
    let day = c("2026-12-01");
    // SAFETY: valid pointers, or the invalid ones under test.
    unsafe {
        // The reporter: from the configuration, refused with a memory cache.
        let mut reporter = null_mut();
        expect(
            mtasts_reporter_new(fixture.config, &mut reporter),
            MTASTS_CONFIG,
            "needs a shared cache",
        );
        expect(
            mtasts_reporter_new(null(), &mut reporter),
            MTASTS_NULL_PARAMETER,
            "config",
        );
        expect(
            mtasts_reporter_new(fixture.config, null_mut()),
            MTASTS_NULL_PARAMETER,
            "reporter_out",
        );
        expect(
            mtasts_reporter_new(wrong(fixture.resolver), &mut reporter),
            MTASTS_INVALID_HANDLE,
            "mtasts_config",
        );
        let mut config = null_mut();
        ok(mtasts_config_new(&mut config));
        ok(mtasts_config_set_cache(
            config,
            c(db.to_str().unwrap()).as_ptr(),
        ));
        expect(
            mtasts_config_set(config, c("tlsrpt.retention_days").as_ptr(), c("1").as_ptr()),
            MTASTS_CONFIG,
            "at least 2",
        );
        ok(mtasts_config_set(
            config,
            c("tlsrpt.retention_days").as_ptr(),
            c("30").as_ptr(),
        ));
        ok(mtasts_reporter_new(config, &mut reporter));
        assert!(!reporter.is_null());

        // Failure details: typed, checked once.
        let mut failure = null_mut();
        let host = c("mail.example.com");
        ok(mtasts_report_failure_new(
            c("certificate-expired").as_ptr(),
            c("192.0.2.1").as_ptr(),
            host.as_ptr(),
            c("198.51.100.7").as_ptr(),
            c("").as_ptr(),
            null(),
            null(),
            &mut failure,
        ));
        let mut f2 = null_mut();
        for (args, code, says) in [
            (
                ["certificate-expried", "", "", ""],
                MTASTS_INVALID_SESSION,
                "unknown result type",
            ),
            (
                ["validation-failure", "not-an-ip", "", ""],
                MTASTS_INVALID_SESSION,
                "sending-mta-ip",
            ),
            (
                ["validation-failure", "", "bad host", ""],
                MTASTS_INVALID_SESSION,
                "receiving-mx-hostname",
            ),
            (
                ["validation-failure", "", "", "300.1.1.1"],
                MTASTS_INVALID_SESSION,
                "receiving-ip",
            ),
        ] {
            let [t, s, h, i] = args.map(c);
            expect(
                mtasts_report_failure_new(
                    t.as_ptr(),
                    s.as_ptr(),
                    h.as_ptr(),
                    i.as_ptr(),
                    null(),
                    null(),
                    null(),
                    &mut f2,
                ),
                code,
                says,
            );
        }
        let long = c(&"x".repeat(513));
        expect(
            mtasts_report_failure_new(
                c("validation-failure").as_ptr(),
                null(),
                null(),
                null(),
                long.as_ptr(),
                null(),
                null(),
                &mut f2,
            ),
            MTASTS_INVALID_SESSION,
            "receiving-mx-helo",
        );
        expect(
            mtasts_report_failure_new(
                null(),
                null(),
                null(),
                null(),
                null(),
                null(),
                null(),
                &mut f2,
            ),
            MTASTS_NULL_PARAMETER,
            "result_type",
        );
        expect(
            mtasts_report_failure_new(
                bad(),
                null(),
                null(),
                null(),
                null(),
                null(),
                null(),
                &mut f2,
            ),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        expect(
            mtasts_report_failure_new(
                c("validation-failure").as_ptr(),
                bad(),
                null(),
                null(),
                null(),
                null(),
                null(),
                &mut f2,
            ),
            MTASTS_INVALID_PARAMETER,
            "sending_mta_ip",
        );
        expect(
            mtasts_report_failure_new(
                c("validation-failure").as_ptr(),
                null(),
                null(),
                null(),
                null(),
                null(),
                null(),
                null_mut(),
            ),
            MTASTS_NULL_PARAMETER,
            "failure_out",
        );
        assert!(f2.is_null());

        // Sessions with the policy taken from a resolution: enforce (sts), none (R-RPT-11).
        let enforce = fixture.resolve("s01.mtasts.test");
        let none = fixture.resolve("s22.mtasts.test");
        ok(mtasts_reporter_record_resolution(
            reporter,
            enforce,
            day.as_ptr(),
            null(),
            0,
        ));
        let failures = [failure.cast_const()];
        ok(mtasts_reporter_record_resolution(
            reporter,
            enforce,
            day.as_ptr(),
            failures.as_ptr(),
            1,
        ));
        ok(mtasts_reporter_record_resolution(
            reporter,
            none,
            day.as_ptr(),
            null(),
            0,
        ));
        // Today (NULL day) is another day: not in the counts below.
        ok(mtasts_reporter_record_resolution(
            reporter,
            none,
            null(),
            null(),
            0,
        ));
        expect(
            mtasts_reporter_record_resolution(
                reporter,
                enforce,
                c("2026-02-30").as_ptr(),
                null(),
                0,
            ),
            MTASTS_INVALID_SESSION,
            "not a day",
        );
        expect(
            mtasts_reporter_record_resolution(reporter, enforce, bad(), null(), 0),
            MTASTS_INVALID_PARAMETER,
            "day",
        );
        expect(
            mtasts_reporter_record_resolution(null(), enforce, null(), null(), 0),
            MTASTS_NULL_PARAMETER,
            "reporter",
        );
        expect(
            mtasts_reporter_record_resolution(reporter, null(), null(), null(), 0),
            MTASTS_NULL_PARAMETER,
            "resolution",
        );
        expect(
            mtasts_reporter_record_resolution(reporter, enforce, null(), null(), 1),
            MTASTS_NULL_PARAMETER,
            "failures",
        );
        let null_entry = [null::<mtasts_report_failure>()];
        expect(
            mtasts_reporter_record_resolution(reporter, enforce, null(), null_entry.as_ptr(), 1),
            MTASTS_NULL_PARAMETER,
            "failures[i]",
        );
        expect(
            mtasts_reporter_record_resolution(wrong(enforce), enforce, null(), null(), 0),
            MTASTS_INVALID_HANDLE,
            "mtasts_reporter",
        );

        // Explicit policies: tlsa with its records, no-policy-found.
        let tlsa = [c("3 1 1 abcdef")];
        let tlsa_ptrs = [tlsa[0].as_ptr()];
        ok(mtasts_reporter_record_policy(
            reporter,
            T::MTASTS_POLICY_TYPE_TLSA as u32,
            c("dane.example").as_ptr(),
            tlsa_ptrs.as_ptr(),
            1,
            null(),
            0,
            day.as_ptr(),
            failures.as_ptr(),
            1,
        ));
        ok(mtasts_reporter_record_policy(
            reporter,
            T::MTASTS_POLICY_TYPE_NO_POLICY_FOUND as u32,
            c("plain.example").as_ptr(),
            null(),
            0,
            null(),
            0,
            day.as_ptr(),
            null(),
            0,
        ));
        expect(
            mtasts_reporter_record_policy(
                reporter,
                T::MTASTS_POLICY_TYPE_NO_POLICY_FOUND as u32,
                c("plain.example").as_ptr(),
                tlsa_ptrs.as_ptr(),
                1,
                null(),
                0,
                day.as_ptr(),
                null(),
                0,
            ),
            MTASTS_INVALID_SESSION,
            "no-policy-found",
        );
        expect(
            mtasts_reporter_record_policy(
                reporter,
                9,
                c("plain.example").as_ptr(),
                null(),
                0,
                null(),
                0,
                null(),
                null(),
                0,
            ),
            MTASTS_INVALID_PARAMETER,
            "mtasts_policy_type",
        );
        expect(
            mtasts_reporter_record_policy(
                reporter,
                2,
                c("").as_ptr(),
                null(),
                0,
                null(),
                0,
                null(),
                null(),
                0,
            ),
            MTASTS_INVALID_SESSION,
            "empty",
        );
        expect(
            mtasts_reporter_record_policy(
                reporter,
                2,
                null(),
                null(),
                0,
                null(),
                0,
                null(),
                null(),
                0,
            ),
            MTASTS_NULL_PARAMETER,
            "domain",
        );
        expect(
            mtasts_reporter_record_policy(
                reporter,
                2,
                bad(),
                null(),
                0,
                null(),
                0,
                null(),
                null(),
                0,
            ),
            MTASTS_INVALID_PARAMETER,
            "not UTF-8",
        );
        let bad_mx = [c("not a pattern!")];
        let bad_mx_ptrs = [bad_mx[0].as_ptr()];
        expect(
            mtasts_reporter_record_policy(
                reporter,
                T::MTASTS_POLICY_TYPE_STS as u32,
                c("sts.example").as_ptr(),
                null(),
                0,
                bad_mx_ptrs.as_ptr(),
                1,
                null(),
                null(),
                0,
            ),
            MTASTS_INVALID_SESSION,
            "mx-host",
        );

        // MTA events: the core decides what each is.
        let mut recorded = false;
        let mx_ip = c("198.51.100.7");
        let from = c("192.0.2.1");
        for (event, data, want) in [
            (E::MTASTS_MTA_EVENT_TLS_VERIFIED, None, true),
            (
                E::MTASTS_MTA_EVENT_HOST_DEFERRED,
                Some("a TLS session is required, but the server did not offer TLS support"),
                true,
            ),
            (
                E::MTASTS_MTA_EVENT_HOST_DEFERRED,
                Some("Connection refused"),
                false,
            ),
        ] {
            let data = data.map(c);
            ok(mtasts_reporter_record_mta_event(
                reporter,
                enforce,
                event as u32,
                data.as_ref().map_or(null(), |d| d.as_ptr()),
                host.as_ptr(),
                mx_ip.as_ptr(),
                from.as_ptr(),
                day.as_ptr(),
                &mut recorded,
            ));
            assert_eq!(recorded, want, "{event:?}");
        }
        // A host left out: a failure only when the policy does not list it.
        for (skipped, want) in [("mx.elsewhere.example", true), ("MAIL.example.com", false)] {
            ok(mtasts_reporter_record_mta_event(
                reporter,
                enforce,
                E::MTASTS_MTA_EVENT_MX_SKIPPED as u32,
                null(),
                c(skipped).as_ptr(),
                null(),
                null(),
                day.as_ptr(),
                &mut recorded,
            ));
            assert_eq!(recorded, want, "skipped {skipped}");
        }
        ok(mtasts_reporter_record_mta_event(
            reporter,
            none,
            E::MTASTS_MTA_EVENT_DELIVERED_IN_CLEAR as u32,
            null(),
            host.as_ptr(),
            mx_ip.as_ptr(),
            null(),
            day.as_ptr(),
            &mut recorded,
        ));
        ok(mtasts_reporter_record_mta_event(
            reporter,
            none,
            E::MTASTS_MTA_EVENT_DANE_FAILED as u32,
            c("dane-required").as_ptr(),
            host.as_ptr(),
            null(),
            null(),
            day.as_ptr(),
            &mut recorded,
        ));
        expect(
            mtasts_reporter_record_mta_event(
                reporter,
                enforce,
                E::MTASTS_MTA_EVENT_HOST_DEFERRED as u32,
                null(),
                null(),
                null(),
                null(),
                null(),
                &mut recorded,
            ),
            MTASTS_NULL_PARAMETER,
            "data",
        );
        expect(
            mtasts_reporter_record_mta_event(
                reporter,
                enforce,
                99,
                null(),
                null(),
                null(),
                null(),
                null(),
                &mut recorded,
            ),
            MTASTS_INVALID_PARAMETER,
            "mtasts_mta_event",
        );
        expect(
            mtasts_reporter_record_mta_event(
                reporter,
                enforce,
                0,
                null(),
                bad(),
                null(),
                null(),
                null(),
                &mut recorded,
            ),
            MTASTS_INVALID_PARAMETER,
            "mx_host",
        );
        expect(
            mtasts_reporter_record_mta_event(
                reporter,
                enforce,
                0,
                null(),
                null(),
                c("mx").as_ptr(),
                null(),
                null(),
                &mut recorded,
            ),
            MTASTS_INVALID_SESSION,
            "receiving-ip",
        );
        expect(
            mtasts_reporter_record_mta_event(
                reporter,
                enforce,
                0,
                null(),
                null(),
                null(),
                null(),
                null(),
                null_mut(),
            ),
            MTASTS_NULL_PARAMETER,
            "recorded_out",
        );

        // Read back: what the reports will say.
        let counts = |domain: &str, kind: T| {
            let (mut s, mut f, mut d) = (0u64, 0u64, 0u64);
            ok(mtasts_reporter_counts(
                reporter,
                day.as_ptr(),
                c(domain).as_ptr(),
                kind as u32,
                &mut s,
                &mut f,
                &mut d,
            ));
            (s, f, d)
        };
        assert_eq!(
            counts("s01.mtasts.test", T::MTASTS_POLICY_TYPE_STS),
            (2, 3, 3)
        );
        assert_eq!(
            counts("s22.mtasts.test", T::MTASTS_POLICY_TYPE_NO_POLICY_FOUND),
            (1, 1, 1)
        );
        assert_eq!(
            counts("s22.mtasts.test", T::MTASTS_POLICY_TYPE_TLSA),
            (0, 1, 1)
        );
        assert_eq!(
            counts("dane.example", T::MTASTS_POLICY_TYPE_TLSA),
            (0, 1, 1)
        );
        assert_eq!(
            counts("plain.example", T::MTASTS_POLICY_TYPE_NO_POLICY_FOUND),
            (1, 0, 0)
        );
        assert_eq!(
            counts("nothing.example", T::MTASTS_POLICY_TYPE_STS),
            (0, 0, 0)
        );
        let (mut s, mut f, mut d) = (0u64, 0u64, 0u64);
        expect(
            mtasts_reporter_counts(
                reporter,
                null(),
                c("x.example").as_ptr(),
                7,
                &mut s,
                &mut f,
                &mut d,
            ),
            MTASTS_INVALID_PARAMETER,
            "mtasts_policy_type",
        );
        expect(
            mtasts_reporter_counts(
                reporter,
                null(),
                c("bad host").as_ptr(),
                0,
                &mut s,
                &mut f,
                &mut d,
            ),
            MTASTS_INVALID_DOMAIN,
            "bad host",
        );
        expect(
            mtasts_reporter_counts(
                reporter,
                null(),
                c("x.example").as_ptr(),
                0,
                &mut s,
                &mut f,
                null_mut(),
            ),
            MTASTS_NULL_PARAMETER,
            "failure_details_out",
        );

        // The error-text classification, as static strings.
        let (mut t, mut r) = (null(), null());
        ok(mtasts_report_classify_mta_error(
            c("TLS session: (certificate verification failed): certificate invalid").as_ptr(),
            &mut t,
            &mut r,
        ));
        assert_eq!(text(t).unwrap(), "validation-failure");
        assert_eq!(text(r).unwrap(), "certificate-invalid");
        ok(mtasts_report_classify_mta_error(
            c("Connection refused").as_ptr(),
            &mut t,
            &mut r,
        ));
        assert!(t.is_null() && r.is_null());
        expect(
            mtasts_report_classify_mta_error(bad(), &mut t, &mut r),
            MTASTS_INVALID_PARAMETER,
            "text",
        );
        expect(
            mtasts_report_classify_mta_error(null(), &mut t, &mut r),
            MTASTS_NULL_PARAMETER,
            "text",
        );

        mtasts_report_failure_free(failure);
        mtasts_report_failure_free(null_mut());
        mtasts_resolution_free(enforce);
        mtasts_resolution_free(none);
        mtasts_reporter_free(reporter);
        mtasts_reporter_free(null_mut());
        mtasts_config_free(config);
    }
    // The counts are in the file, for any other reader (the sender, `mtasts tlsrpt`).
    let reporter = mtasts_core::Reporter::from_file({
        let conf = db.with_extension("conf");
        std::fs::write(&conf, format!("cache = {}\n", db.display())).unwrap();
        conf
    })
    .unwrap();
    let domain = mtasts_core::Domain::new("s01.mtasts.test").unwrap();
    let report = reporter
        .store()
        .day_report("2026-12-01".parse().unwrap(), &domain)
        .unwrap()
        .unwrap();
    assert_eq!(report.totals(mtasts_core::PolicyType::Sts), (2, 3, 3));
}
