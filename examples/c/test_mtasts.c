/*
 * test_mtasts: the C test of libmtasts. Calls every function of mtasts.h on its success path
 * and its error paths (NULL parameters, strings that are not UTF-8, wrong handles, indexes out
 * of range, getters without a policy), against the test world.
 *
 *   test_mtasts --nameserver IP:PORT --trust-roots CA.pem --policy-port PORT
 *
 * Prints one line per failed check and ends with "N passed, N failed"; exit status 0 when
 * nothing failed. Built with -Wall -Wextra -Werror and run plainly, under ASan+UBSan and under
 * valgrind by run-tests.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include <mtasts.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

static const char *last_error(void) {
  static char message[1024];
  size_t needed = 0;
  if (mtasts_last_error(message, sizeof message, &needed) != MTASTS_OK) return "(none)";
  return message;
}

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (cond) {                                                                         \
      passed++;                                                                         \
    } else {                                                                            \
      failed++;                                                                         \
      fprintf(stderr, "%s:%d: FAILED: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              last_error());                                                            \
    }                                                                                   \
  } while (0)

/* A call returns `want`; a failure leaves a message containing `mention`. */
#define EXPECT(call, want, mention)                                                      \
  do {                                                                                   \
    mtasts_result rc_ = (call);                                                          \
    CHECK(rc_ == (want));                                                                \
    if (rc_ != (want)) fprintf(stderr, "  %s returned %u\n", #call, (unsigned)rc_);      \
    if ((want) != MTASTS_OK) CHECK(strstr(last_error(), (mention)) != NULL);             \
  } while (0)
#define OK(call) EXPECT(call, MTASTS_OK, "")

#define STREQ(a, b) ((a) != NULL && strcmp((a), (b)) == 0)

/* A NUL-terminated string that is not UTF-8. */
static const char BAD_UTF8[] = "bad\xff\xfeutf8";

static const char *nameserver, *ca_file, *policy_port;

/* A config pointed at the test world. */
static mtasts_config *world_config(void) {
  mtasts_config *config = NULL;
  OK(mtasts_config_new(&config));
  OK(mtasts_config_add_nameserver(config, nameserver));
  OK(mtasts_config_set_trust_roots(config, ca_file));
  OK(mtasts_config_set_policy_port(config, (uint16_t)atoi(policy_port)));
  OK(mtasts_config_set_fetch_timeout_ms(config, 10000));
  OK(mtasts_config_set_dns_timeout_ms(config, 5000));
  return config;
}

static void test_version_and_codes(void) {
  char expected[64];
  snprintf(expected, sizeof expected, "%d.%d.%d", MTASTS_VERSION_MAJOR, MTASTS_VERSION_MINOR,
           MTASTS_VERSION_PATCH);
  CHECK(STREQ(mtasts_version(), expected));
  CHECK(STREQ(mtasts_result_str(MTASTS_OK), "success"));
  CHECK(STREQ(mtasts_result_str(MTASTS_DNS_TEMPORARY), "temporary DNS failure"));
  CHECK(mtasts_result_str(MTASTS_INVALID_CHAIN) != NULL);
  CHECK(mtasts_result_str(9) == NULL);
  CHECK(mtasts_result_str(UINT32_MAX) == NULL);
  CHECK(MTASTS_OK == 0 && MTASTS_DNS_TEMPORARY == 100 && MTASTS_POLICY_FETCH == 200 &&
        MTASTS_INVALID_DOMAIN == 300 && MTASTS_CACHE == 400 && MTASTS_INVALID_CHAIN == 500);
  CHECK(STREQ(mtasts_mode_str(MTASTS_MODE_ENFORCE), "enforce"));
  CHECK(STREQ(mtasts_mode_str(MTASTS_MODE_TESTING), "testing"));
  CHECK(STREQ(mtasts_mode_str(MTASTS_MODE_NONE), "none"));
  CHECK(mtasts_mode_str(99) == NULL);
  CHECK(STREQ(mtasts_source_str(MTASTS_SOURCE_CACHE_AFTER_FAILURE), "cache-after-failure"));
  CHECK(mtasts_source_str(99) == NULL);
}

static void test_last_error(void) {
  EXPECT(mtasts_config_new(NULL), MTASTS_NULL_PARAMETER, "config_out");
  const char *message = "parameter `config_out` is NULL";
  size_t needed = 0;
  OK(mtasts_last_error(NULL, 0, &needed));
  CHECK(needed == strlen(message));
  char small[8];
  memset(small, 'x', sizeof small);
  OK(mtasts_last_error(small, sizeof small, &needed));
  CHECK(needed == strlen(message)); /* the full length, though cut (snprintf) */
  CHECK(strlen(small) == 7 && strncmp(small, message, 7) == 0);
  CHECK(mtasts_last_error(NULL, 4, &needed) == MTASTS_NULL_PARAMETER);
  CHECK(mtasts_last_error(small, sizeof small, NULL) == MTASTS_NULL_PARAMETER);
  CHECK(STREQ(last_error(), message)); /* refused calls leave it alone */
}

static void test_config(void) {
  mtasts_config *config = NULL;
  OK(mtasts_config_new(&config));
  EXPECT(mtasts_config_add_nameserver(NULL, "127.0.0.1:53"), MTASTS_NULL_PARAMETER, "config");
  EXPECT(mtasts_config_add_nameserver(config, NULL), MTASTS_NULL_PARAMETER, "nameserver");
  EXPECT(mtasts_config_add_nameserver(config, BAD_UTF8), MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_config_add_nameserver(config, "localhost"), MTASTS_INVALID_PARAMETER,
         "ip:port");
  OK(mtasts_config_add_nameserver(config, "[::1]:53"));
  EXPECT(mtasts_config_set_trust_roots(NULL, "bundled"), MTASTS_NULL_PARAMETER, "config");
  EXPECT(mtasts_config_set_trust_roots(config, NULL), MTASTS_NULL_PARAMETER, "roots");
  EXPECT(mtasts_config_set_trust_roots(config, BAD_UTF8), MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_config_set_trust_roots(config, ""), MTASTS_INVALID_PARAMETER, "empty");
  OK(mtasts_config_set_trust_roots(config, "bundled"));
  EXPECT(mtasts_config_set_cache(NULL, "memory"), MTASTS_NULL_PARAMETER, "config");
  EXPECT(mtasts_config_set_cache(config, NULL), MTASTS_NULL_PARAMETER, "location");
  EXPECT(mtasts_config_set_cache(config, BAD_UTF8), MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_config_set_cache(config, "ftp://x"), MTASTS_CONFIG, "cache location");
  OK(mtasts_config_set_cache(config, "memory"));
  EXPECT(mtasts_config_set_fetch_timeout_ms(NULL, 1), MTASTS_NULL_PARAMETER, "config");
  EXPECT(mtasts_config_set_fetch_timeout_ms(config, 0), MTASTS_INVALID_PARAMETER, "positive");
  OK(mtasts_config_set_fetch_timeout_ms(config, 5000));
  /* Issue 11: the one settings format, as every face reads it. */
  OK(mtasts_config_set(config, "fetch_timeout", "7"));
  OK(mtasts_config_set(config, "nameserver", "127.0.0.1"));
  EXPECT(mtasts_config_set(config, "fetch_timout", "7"), MTASTS_CONFIG, "unknown setting");
  EXPECT(mtasts_config_set(config, "dns_timeout", "0"), MTASTS_CONFIG, "dns_timeout");
  EXPECT(mtasts_config_set(config, NULL, "7"), MTASTS_NULL_PARAMETER, "key");
  EXPECT(mtasts_config_set(config, "cache", BAD_UTF8), MTASTS_INVALID_PARAMETER, "UTF-8");
  {
    char path[] = "/tmp/mtasts-c-conf.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f != NULL) {
      fputs("# test\nlog_level = info\ncache = memory\n", f);
      fclose(f);
    }
    mtasts_log_level level = MTASTS_LOG_OFF;
    OK(mtasts_config_log_level(config, &level));
    CHECK(level == MTASTS_LOG_WARN);
    OK(mtasts_config_load_file(config, path));
    OK(mtasts_config_log_level(config, &level));
    CHECK(level == MTASTS_LOG_INFO);
    f = fopen(path, "w");
    if (f != NULL) {
      fputs("log_level = debug\nfetch_timeout = soon\n", f);
      fclose(f);
    }
    EXPECT(mtasts_config_load_file(config, path), MTASTS_CONFIG, ":2: fetch_timeout");
    OK(mtasts_config_log_level(config, &level));
    CHECK(level == MTASTS_LOG_INFO); /* a file with an error changes nothing */
    EXPECT(mtasts_config_load_file(config, "/nonexistent/mtasts.conf"), MTASTS_CONFIG,
           "cannot read");
    EXPECT(mtasts_config_log_level(NULL, &level), MTASTS_NULL_PARAMETER, "config");
    unlink(path);
  }
  /* Issue 10: absurd values are refused when set (they used to panic later). */
  EXPECT(mtasts_config_set_fetch_timeout_ms(config, UINT64_MAX), MTASTS_INVALID_PARAMETER,
         "out of range");
  EXPECT(mtasts_config_set_dns_timeout_ms(config, UINT64_MAX), MTASTS_INVALID_PARAMETER,
         "out of range");
  EXPECT(mtasts_config_set_recheck_interval_s(config, UINT64_MAX), MTASTS_INVALID_PARAMETER,
         "recheck_interval");
  EXPECT(mtasts_config_set_dns_timeout_ms(NULL, 1), MTASTS_NULL_PARAMETER, "config");
  EXPECT(mtasts_config_set_dns_timeout_ms(config, 0), MTASTS_INVALID_PARAMETER, "positive");
  OK(mtasts_config_set_dns_timeout_ms(config, 5000));
  EXPECT(mtasts_config_set_recheck_interval_s(NULL, 60), MTASTS_NULL_PARAMETER, "config");
  OK(mtasts_config_set_recheck_interval_s(config, 60));
  OK(mtasts_config_set_recheck_interval_s(config, 0));
  EXPECT(mtasts_config_set_policy_port(NULL, 443), MTASTS_NULL_PARAMETER, "config");
  OK(mtasts_config_set_policy_port(config, 0));

  /* Resolver construction: NULL, wrong handle, unusable configuration. */
  mtasts_resolver *resolver = NULL;
  EXPECT(mtasts_resolver_new(NULL, &resolver), MTASTS_NULL_PARAMETER, "config");
  EXPECT(mtasts_resolver_new(config, NULL), MTASTS_NULL_PARAMETER, "resolver_out");
  OK(mtasts_config_set_trust_roots(config, "/nonexistent/ca.pem"));
  EXPECT(mtasts_resolver_new(config, &resolver), MTASTS_CONFIG, "/nonexistent/ca.pem");
  CHECK(resolver == NULL); /* outputs are written only on success */
  OK(mtasts_config_set_trust_roots(config, "bundled"));
  OK(mtasts_resolver_new(config, &resolver));
  EXPECT(mtasts_config_set_policy_port((mtasts_config *)resolver, 1), MTASTS_INVALID_HANDLE,
         "mtasts_config");
  EXPECT(mtasts_resolver_new((const mtasts_config *)resolver, &resolver),
         MTASTS_INVALID_HANDLE, "mtasts_config");
  mtasts_config_free((mtasts_config *)resolver); /* another type: refused, not a crash */
  mtasts_resolver_free(resolver);
  mtasts_resolver_free(NULL);
  mtasts_config_free(config);
  mtasts_config_free(NULL);
}

static void test_resolution(const mtasts_resolver *resolver) {
  mtasts_resolution *res = NULL, *none = NULL, *failed_res = NULL;
  EXPECT(mtasts_resolver_resolve(NULL, "s01.mtasts.test", &res), MTASTS_NULL_PARAMETER,
         "resolver");
  EXPECT(mtasts_resolver_resolve(resolver, NULL, &res), MTASTS_NULL_PARAMETER, "domain");
  EXPECT(mtasts_resolver_resolve(resolver, "s01.mtasts.test", NULL), MTASTS_NULL_PARAMETER,
         "resolution_out");
  EXPECT(mtasts_resolver_resolve(resolver, BAD_UTF8, &res), MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_resolver_resolve(resolver, "192.0.2.1", &res), MTASTS_INVALID_DOMAIN,
         "invalid domain");
  EXPECT(mtasts_resolver_resolve(resolver, "", &res), MTASTS_INVALID_DOMAIN, "invalid domain");
  CHECK(res == NULL);

  /* S-01: an enforce policy, fetched. */
  OK(mtasts_resolver_resolve(resolver, "S01.MTASTS.test.", &res));
  const char *s = NULL;
  mtasts_mode mode = MTASTS_MODE_NONE;
  mtasts_source source = MTASTS_SOURCE_NONE;
  bool flag = false;
  uint32_t max_age = 0;
  int64_t fetched = 0, expires = 0;
  size_t count = 0, len = 0;
  OK(mtasts_resolution_domain(res, &s));
  CHECK(STREQ(s, "s01.mtasts.test"));
  OK(mtasts_resolution_source(res, &source));
  CHECK(source == MTASTS_SOURCE_FETCHED);
  OK(mtasts_resolution_mode(res, &mode));
  CHECK(mode == MTASTS_MODE_ENFORCE);
  OK(mtasts_resolution_has_policy(res, &flag));
  CHECK(flag);
  OK(mtasts_resolution_policy_id(res, &s));
  CHECK(STREQ(s, "20240101T000000"));
  OK(mtasts_resolution_max_age(res, &max_age));
  CHECK(max_age == 86400);
  OK(mtasts_resolution_fetched_at(res, &fetched));
  OK(mtasts_resolution_expires_at(res, &expires));
  CHECK(fetched > 1700000000 && expires - fetched == 86400);
  OK(mtasts_resolution_mx_count(res, &count));
  CHECK(count == 2);
  OK(mtasts_resolution_mx_get(res, 0, &s));
  CHECK(STREQ(s, "mail.example.com"));
  OK(mtasts_resolution_mx_get(res, 1, &s));
  CHECK(STREQ(s, "*.example.net"));
  EXPECT(mtasts_resolution_mx_get(res, 2, &s), MTASTS_INDEX_OUT_OF_RANGE, "index 2");
  OK(mtasts_resolution_policy_text(res, &s, &len));
  CHECK(s != NULL && strlen(s) == len && strstr(s, "mode: enforce") != NULL);
  /* Issue 16: s01 exists; a name that does not exist at all is told apart (still no policy). */
  bool not_found = true;
  OK(mtasts_resolution_domain_not_found(res, &not_found));
  CHECK(!not_found);
  {
    mtasts_resolution *ghost = NULL;
    OK(mtasts_resolver_resolve(resolver, "ghost.mtasts.test", &ghost));
    OK(mtasts_resolution_domain_not_found(ghost, &not_found));
    CHECK(not_found);
    const char *notice = NULL;
    OK(mtasts_resolution_notice(ghost, &notice));
    CHECK(notice != NULL && strstr(notice, "does not exist in DNS") != NULL);
    mtasts_resolution_free(ghost);
  }
  /* The core's JSON view, as `mtasts lookup --json` prints it. */
  OK(mtasts_resolution_json(res, &s, &len));
  CHECK(s != NULL && strlen(s) == len);
  CHECK(strncmp(s, "{\n  \"domain\": \"s01.mtasts.test\",\n  \"mode\": \"enforce\"", 45) == 0);
  CHECK(strstr(s, "\"source\": \"fetched\"") != NULL && strstr(s, "\"failure\": null") != NULL);
  const char *json_again = NULL;
  OK(mtasts_resolution_json(res, &json_again, &len));
  CHECK(json_again == s); /* made once, a view owned by the resolution */
  EXPECT(mtasts_resolution_json(NULL, &s, &len), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_json(res, NULL, &len), MTASTS_NULL_PARAMETER, "json_out");
  EXPECT(mtasts_resolution_json(res, &s, NULL), MTASTS_NULL_PARAMETER, "len_out");
  OK(mtasts_resolution_mx_matches(res, "MX7.example.net.", &flag));
  CHECK(flag);
  OK(mtasts_resolution_mx_matches(res, "a.b.example.net", &flag));
  CHECK(!flag);
  mtasts_result code = MTASTS_PANIC;
  const char *result_type = "x", *reason = "x";
  OK(mtasts_resolution_failure(res, &code, &result_type, &reason));
  CHECK(code == MTASTS_OK && result_type == NULL && reason == NULL);
  OK(mtasts_resolution_failure_is_temporary(res, &flag));
  CHECK(!flag);
  OK(mtasts_resolution_notice(res, &s));
  CHECK(s == NULL);

  /* Every getter: NULL handle, NULL output, wrong handle. */
  const mtasts_resolution *wrong = (const mtasts_resolution *)resolver;
  EXPECT(mtasts_resolution_domain(NULL, &s), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_domain(res, NULL), MTASTS_NULL_PARAMETER, "domain_out");
  EXPECT(mtasts_resolution_domain(wrong, &s), MTASTS_INVALID_HANDLE, "mtasts_resolution");
  EXPECT(mtasts_resolution_source(NULL, &source), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_source(res, NULL), MTASTS_NULL_PARAMETER, "source_out");
  EXPECT(mtasts_resolution_mode(NULL, &mode), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_mode(res, NULL), MTASTS_NULL_PARAMETER, "mode_out");
  EXPECT(mtasts_resolution_mode(wrong, &mode), MTASTS_INVALID_HANDLE, "mtasts_resolution");
  EXPECT(mtasts_resolution_has_policy(NULL, &flag), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_has_policy(res, NULL), MTASTS_NULL_PARAMETER, "has_policy_out");
  EXPECT(mtasts_resolution_policy_id(NULL, &s), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_policy_id(res, NULL), MTASTS_NULL_PARAMETER, "id_out");
  EXPECT(mtasts_resolution_max_age(NULL, &max_age), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_max_age(res, NULL), MTASTS_NULL_PARAMETER, "max_age_out");
  EXPECT(mtasts_resolution_fetched_at(NULL, &fetched), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_fetched_at(res, NULL), MTASTS_NULL_PARAMETER, "fetched_at_out");
  EXPECT(mtasts_resolution_expires_at(NULL, &expires), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_expires_at(res, NULL), MTASTS_NULL_PARAMETER, "expires_at_out");
  EXPECT(mtasts_resolution_mx_count(NULL, &count), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_mx_count(res, NULL), MTASTS_NULL_PARAMETER, "count_out");
  EXPECT(mtasts_resolution_mx_get(NULL, 0, &s), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_mx_get(res, 0, NULL), MTASTS_NULL_PARAMETER, "pattern_out");
  EXPECT(mtasts_resolution_policy_text(NULL, &s, &len), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_policy_text(res, NULL, &len), MTASTS_NULL_PARAMETER, "text_out");
  EXPECT(mtasts_resolution_policy_text(res, &s, NULL), MTASTS_NULL_PARAMETER, "len_out");
  EXPECT(mtasts_resolution_mx_matches(NULL, "a", &flag), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_mx_matches(res, NULL, &flag), MTASTS_NULL_PARAMETER, "mx_host");
  EXPECT(mtasts_resolution_mx_matches(res, "a", NULL), MTASTS_NULL_PARAMETER, "matches_out");
  EXPECT(mtasts_resolution_mx_matches(res, BAD_UTF8, &flag), MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_resolution_failure(NULL, &code, &result_type, &reason), MTASTS_NULL_PARAMETER,
         "resolution");
  EXPECT(mtasts_resolution_failure(res, NULL, &result_type, &reason), MTASTS_NULL_PARAMETER,
         "code_out");
  EXPECT(mtasts_resolution_failure(res, &code, NULL, &reason), MTASTS_NULL_PARAMETER,
         "result_type_out");
  EXPECT(mtasts_resolution_failure(res, &code, &result_type, NULL), MTASTS_NULL_PARAMETER,
         "reason_out");
  EXPECT(mtasts_resolution_failure_is_temporary(NULL, &flag), MTASTS_NULL_PARAMETER,
         "resolution");
  EXPECT(mtasts_resolution_failure_is_temporary(res, NULL), MTASTS_NULL_PARAMETER,
         "temporary_out");
  EXPECT(mtasts_resolution_notice(NULL, &s), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_resolution_notice(res, NULL), MTASTS_NULL_PARAMETER, "notice_out");

  /* S-30: the second lookup comes from the cache. */
  mtasts_resolution *again = NULL;
  OK(mtasts_resolver_resolve(resolver, "s01.mtasts.test", &again));
  OK(mtasts_resolution_source(again, &source));
  CHECK(source == MTASTS_SOURCE_CACHE);
  mtasts_resolution_free(again);

  /* S-02: no policy; the policy getters say so. */
  OK(mtasts_resolver_resolve(resolver, "s02.mtasts.test", &none));
  OK(mtasts_resolution_source(none, &source));
  CHECK(source == MTASTS_SOURCE_NONE);
  OK(mtasts_resolution_mode(none, &mode));
  CHECK(mode == MTASTS_MODE_NONE);
  s = NULL;
  EXPECT(mtasts_resolution_policy_id(none, &s), MTASTS_NO_POLICY, "no policy");
  CHECK(s == NULL);
  EXPECT(mtasts_resolution_max_age(none, &max_age), MTASTS_NO_POLICY, "no policy");
  EXPECT(mtasts_resolution_fetched_at(none, &fetched), MTASTS_NO_POLICY, "no policy");
  EXPECT(mtasts_resolution_expires_at(none, &expires), MTASTS_NO_POLICY, "no policy");
  EXPECT(mtasts_resolution_mx_count(none, &count), MTASTS_NO_POLICY, "no policy");
  EXPECT(mtasts_resolution_mx_get(none, 0, &s), MTASTS_NO_POLICY, "no policy");
  EXPECT(mtasts_resolution_policy_text(none, &s, &len), MTASTS_NO_POLICY, "no policy");
  EXPECT(mtasts_resolution_mx_matches(none, "a.b", &flag), MTASTS_NO_POLICY, "no policy");

  /* S-10: a failed fetch is part of the resolution. */
  OK(mtasts_resolver_resolve(resolver, "s10.mtasts.test", &failed_res));
  OK(mtasts_resolution_source(failed_res, &source));
  CHECK(source == MTASTS_SOURCE_UNAVAILABLE);
  OK(mtasts_resolution_failure(failed_res, &code, &result_type, &reason));
  CHECK(code == MTASTS_POLICY_FETCH);
  CHECK(STREQ(result_type, "sts-policy-fetch-error"));
  CHECK(reason != NULL && strstr(reason, "404") != NULL);
  OK(mtasts_resolution_failure_is_temporary(failed_res, &flag));
  CHECK(flag);

  /* S-07: an invalid record: no policy, with a notice. */
  mtasts_resolution *invalid = NULL;
  OK(mtasts_resolver_resolve(resolver, "s07.mtasts.test", &invalid));
  OK(mtasts_resolution_notice(invalid, &s));
  CHECK(s != NULL && strlen(s) > 0);
  mtasts_resolution_free(invalid);

  mtasts_resolution_free(res);
  mtasts_resolution_free(none);
  mtasts_resolution_free(failed_res);
  mtasts_resolution_free(NULL);
}

static void test_verdicts(const mtasts_resolver *resolver) {
  mtasts_resolution *res = NULL, *none = NULL;
  OK(mtasts_resolver_resolve(resolver, "s01.mtasts.test", &res));
  OK(mtasts_resolver_resolve(resolver, "s02.mtasts.test", &none));
  mtasts_verdict *verdict = NULL;
  mtasts_verdict_kind kind = MTASTS_VERDICT_SKIP;
  bool requires_tls = false, may_use = false, reports = false;
  const char *name = NULL, *host = NULL, *t = NULL, *r = NULL, *d = NULL;
  const mtasts_mx_failure *view = NULL;

  EXPECT(mtasts_verdict_for_mx(NULL, "a", &verdict), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_verdict_for_mx(res, NULL, &verdict), MTASTS_NULL_PARAMETER, "mx_host");
  EXPECT(mtasts_verdict_for_mx(res, "a", NULL), MTASTS_NULL_PARAMETER, "verdict_out");
  EXPECT(mtasts_verdict_for_mx(res, BAD_UTF8, &verdict), MTASTS_INVALID_PARAMETER, "UTF-8");

  /* S-51: case and trailing dot ignored; verified TLS required. */
  OK(mtasts_verdict_for_mx(res, "MAIL.Example.COM.", &verdict));
  OK(mtasts_verdict_summary(verdict, &kind, &requires_tls, &may_use, &reports));
  CHECK(kind == MTASTS_VERDICT_REQUIRE_TLS && requires_tls && may_use && reports);
  OK(mtasts_verdict_strings(verdict, &name, &host));
  CHECK(STREQ(name, "require-tls") && STREQ(host, "mail.example.com"));
  OK(mtasts_verdict_failure(verdict, &view));
  CHECK(view == NULL);
  EXPECT(mtasts_verdict_summary(NULL, &kind, &requires_tls, &may_use, &reports),
         MTASTS_NULL_PARAMETER, "verdict");
  EXPECT(mtasts_verdict_summary(verdict, NULL, &requires_tls, &may_use, &reports),
         MTASTS_NULL_PARAMETER, "kind_out");
  EXPECT(mtasts_verdict_summary(verdict, &kind, NULL, &may_use, &reports),
         MTASTS_NULL_PARAMETER, "requires_tls_out");
  EXPECT(mtasts_verdict_summary(verdict, &kind, &requires_tls, NULL, &reports),
         MTASTS_NULL_PARAMETER, "may_use_out");
  EXPECT(mtasts_verdict_summary(verdict, &kind, &requires_tls, &may_use, NULL),
         MTASTS_NULL_PARAMETER, "reports_failures_out");
  EXPECT(mtasts_verdict_summary((const mtasts_verdict *)res, &kind, &requires_tls, &may_use,
                                &reports),
         MTASTS_INVALID_HANDLE, "mtasts_verdict");
  EXPECT(mtasts_verdict_strings(NULL, &name, &host), MTASTS_NULL_PARAMETER, "verdict");
  EXPECT(mtasts_verdict_strings(verdict, NULL, &host), MTASTS_NULL_PARAMETER, "name_out");
  EXPECT(mtasts_verdict_strings(verdict, &name, NULL), MTASTS_NULL_PARAMETER, "mx_host_out");
  EXPECT(mtasts_verdict_failure(NULL, &view), MTASTS_NULL_PARAMETER, "verdict");
  EXPECT(mtasts_verdict_failure(verdict, NULL), MTASTS_NULL_PARAMETER, "failure_out");

  /* After STARTTLS: an expired certificate means try the next MX; none means deliver. */
  mtasts_mx_failure *expired = NULL;
  EXPECT(mtasts_mx_failure_new(NULL, "d", &expired), MTASTS_NULL_PARAMETER, "reason_code");
  EXPECT(mtasts_mx_failure_new("certificate-expired", NULL, &expired), MTASTS_NULL_PARAMETER,
         "detail");
  EXPECT(mtasts_mx_failure_new("certificate-expired", "d", NULL), MTASTS_NULL_PARAMETER,
         "failure_out");
  EXPECT(mtasts_mx_failure_new(BAD_UTF8, "d", &expired), MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_mx_failure_new("expired", "d", &expired), MTASTS_INVALID_PARAMETER,
         "reason code");
  OK(mtasts_mx_failure_new("certificate-expired", "notAfter 2001-01-01", &expired));
  OK(mtasts_mx_failure_strings(expired, &t, &r, &d));
  CHECK(STREQ(t, "certificate-expired") && STREQ(r, "certificate-expired") &&
        STREQ(d, "notAfter 2001-01-01"));
  EXPECT(mtasts_mx_failure_strings(NULL, &t, &r, &d), MTASTS_NULL_PARAMETER, "failure");
  EXPECT(mtasts_mx_failure_strings(expired, NULL, &r, &d), MTASTS_NULL_PARAMETER,
         "result_type_out");
  EXPECT(mtasts_mx_failure_strings(expired, &t, NULL, &d), MTASTS_NULL_PARAMETER,
         "reason_code_out");
  EXPECT(mtasts_mx_failure_strings(expired, &t, &r, NULL), MTASTS_NULL_PARAMETER,
         "detail_out");
  mtasts_delivery *delivery = NULL;
  bool deliver = true;
  EXPECT(mtasts_verdict_decide(NULL, NULL, &delivery), MTASTS_NULL_PARAMETER, "verdict");
  EXPECT(mtasts_verdict_decide(verdict, NULL, NULL), MTASTS_NULL_PARAMETER, "delivery_out");
  EXPECT(mtasts_verdict_decide(verdict, (const mtasts_mx_failure *)verdict, &delivery),
         MTASTS_INVALID_HANDLE, "mtasts_mx_failure");
  OK(mtasts_verdict_decide(verdict, expired, &delivery));
  OK(mtasts_delivery_result(delivery, &deliver, &view));
  CHECK(!deliver && view != NULL);
  OK(mtasts_mx_failure_strings(view, &t, &r, &d));
  CHECK(STREQ(t, "certificate-expired"));
  EXPECT(mtasts_delivery_result(NULL, &deliver, &view), MTASTS_NULL_PARAMETER, "delivery");
  EXPECT(mtasts_delivery_result(delivery, NULL, &view), MTASTS_NULL_PARAMETER, "deliver_out");
  EXPECT(mtasts_delivery_result(delivery, &deliver, NULL), MTASTS_NULL_PARAMETER,
         "failure_out");
  mtasts_delivery_free(delivery);
  OK(mtasts_verdict_decide(verdict, NULL, &delivery));
  OK(mtasts_delivery_result(delivery, &deliver, &view));
  CHECK(deliver && view == NULL);
  mtasts_delivery_free(delivery);
  mtasts_delivery_free(NULL);
  mtasts_verdict_free(verdict);

  /* S-55: outside the policy: skip, validation-failure / mx-mismatch. */
  OK(mtasts_verdict_for_mx(res, "evil.com", &verdict));
  OK(mtasts_verdict_summary(verdict, &kind, &requires_tls, &may_use, &reports));
  CHECK(kind == MTASTS_VERDICT_SKIP && !may_use && !requires_tls);
  OK(mtasts_verdict_failure(verdict, &view));
  OK(mtasts_mx_failure_strings(view, &t, &r, &d));
  CHECK(STREQ(t, "validation-failure") && STREQ(r, "mx-mismatch"));
  mtasts_mx_failure_free((mtasts_mx_failure *)view); /* borrowed: refused, not a crash */
  OK(mtasts_mx_failure_strings(view, &t, &r, &d));
  mtasts_verdict_free(verdict);

  /* S-64: no policy, no requirement. */
  OK(mtasts_verdict_for_mx(none, "evil.com", &verdict));
  OK(mtasts_verdict_summary(verdict, &kind, &requires_tls, &may_use, &reports));
  CHECK(kind == MTASTS_VERDICT_NO_REQUIREMENT && may_use && !reports);
  OK(mtasts_verdict_strings(verdict, &name, &host));
  CHECK(STREQ(name, "no-requirement") && host == NULL);
  mtasts_verdict_free(verdict);
  mtasts_verdict_free(NULL);
  mtasts_mx_failure_free(expired);
  mtasts_mx_failure_free(NULL);

  /* MX plans. */
  const char *hosts[] = {"evil.com", "mail.example.com", "mx9.example.net"};
  mtasts_mx_plan *plan = NULL;
  bool defer = true, implicit = true;
  size_t usable = 0, skipped = 0;
  const mtasts_verdict *pv = NULL;
  EXPECT(mtasts_mx_plan_from_hosts(NULL, hosts, 3, &plan), MTASTS_NULL_PARAMETER, "resolution");
  EXPECT(mtasts_mx_plan_from_hosts(res, NULL, 3, &plan), MTASTS_NULL_PARAMETER, "hosts");
  EXPECT(mtasts_mx_plan_from_hosts(res, hosts, 3, NULL), MTASTS_NULL_PARAMETER, "plan_out");
  const char *with_null[] = {"a.example", NULL};
  EXPECT(mtasts_mx_plan_from_hosts(res, with_null, 2, &plan), MTASTS_NULL_PARAMETER,
         "element of `hosts`");
  const char *with_bad[] = {BAD_UTF8};
  EXPECT(mtasts_mx_plan_from_hosts(res, with_bad, 1, &plan), MTASTS_INVALID_PARAMETER, "UTF-8");
  OK(mtasts_mx_plan_from_hosts(res, hosts, 3, &plan));
  OK(mtasts_mx_plan_summary(plan, &defer, &implicit, &usable, &skipped));
  CHECK(!defer && !implicit && usable == 2 && skipped == 1);
  OK(mtasts_mx_plan_usable(plan, 1, &host, &pv));
  CHECK(STREQ(host, "mx9.example.net"));
  OK(mtasts_verdict_summary(pv, &kind, &requires_tls, &may_use, &reports));
  CHECK(kind == MTASTS_VERDICT_REQUIRE_TLS);
  OK(mtasts_mx_plan_skipped(plan, 0, &host, &view));
  CHECK(STREQ(host, "evil.com"));
  EXPECT(mtasts_mx_plan_usable(plan, 2, &host, &pv), MTASTS_INDEX_OUT_OF_RANGE, "index 2");
  EXPECT(mtasts_mx_plan_skipped(plan, 1, &host, &view), MTASTS_INDEX_OUT_OF_RANGE, "index 1");
  EXPECT(mtasts_mx_plan_summary(NULL, &defer, &implicit, &usable, &skipped),
         MTASTS_NULL_PARAMETER, "plan");
  EXPECT(mtasts_mx_plan_summary(plan, NULL, &implicit, &usable, &skipped),
         MTASTS_NULL_PARAMETER, "defer_out");
  EXPECT(mtasts_mx_plan_summary(plan, &defer, NULL, &usable, &skipped), MTASTS_NULL_PARAMETER,
         "implicit_mx_out");
  EXPECT(mtasts_mx_plan_summary(plan, &defer, &implicit, NULL, &skipped),
         MTASTS_NULL_PARAMETER, "usable_count_out");
  EXPECT(mtasts_mx_plan_summary(plan, &defer, &implicit, &usable, NULL), MTASTS_NULL_PARAMETER,
         "skipped_count_out");
  EXPECT(mtasts_mx_plan_usable(NULL, 0, &host, &pv), MTASTS_NULL_PARAMETER, "plan");
  EXPECT(mtasts_mx_plan_usable(plan, 0, NULL, &pv), MTASTS_NULL_PARAMETER, "host_out");
  EXPECT(mtasts_mx_plan_usable(plan, 0, &host, NULL), MTASTS_NULL_PARAMETER, "verdict_out");
  EXPECT(mtasts_mx_plan_skipped(NULL, 0, &host, &view), MTASTS_NULL_PARAMETER, "plan");
  EXPECT(mtasts_mx_plan_skipped(plan, 0, NULL, &view), MTASTS_NULL_PARAMETER, "host_out");
  EXPECT(mtasts_mx_plan_skipped(plan, 0, &host, NULL), MTASTS_NULL_PARAMETER, "failure_out");
  EXPECT(mtasts_mx_plan_summary((const mtasts_mx_plan *)res, &defer, &implicit, &usable,
                                &skipped),
         MTASTS_INVALID_HANDLE, "mtasts_mx_plan");
  mtasts_verdict_free((mtasts_verdict *)pv); /* borrowed: refused */
  OK(mtasts_verdict_summary(pv, &kind, &requires_tls, &may_use, &reports));
  mtasts_mx_plan_free(plan);

  /* R-APPLY-1: under enforce with no usable MX, defer. R-MX-3: the implicit MX. */
  const char *bad_hosts[] = {"evil.com", "example.net"};
  OK(mtasts_mx_plan_from_hosts(res, bad_hosts, 2, &plan));
  OK(mtasts_mx_plan_summary(plan, &defer, &implicit, &usable, &skipped));
  CHECK(defer && usable == 0 && skipped == 2);
  mtasts_mx_plan_free(plan);
  OK(mtasts_mx_plan_from_hosts(none, NULL, 0, &plan));
  OK(mtasts_mx_plan_summary(plan, &defer, &implicit, &usable, &skipped));
  CHECK(implicit && !defer && usable == 1);
  mtasts_mx_plan_free(plan);
  mtasts_mx_plan_free(NULL);

  mtasts_resolution_free(res);
  mtasts_resolution_free(none);
}

/* Reads a whole file; the caller frees it. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  char *buf = malloc(1 << 20);
  *len = buf != NULL ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (buf != NULL) buf[*len] = '\0';
  return buf;
}

static void test_certificates(const mtasts_resolver *resolver) {
  mtasts_cert_verifier *verifier = NULL, *bundled = NULL;
  EXPECT(mtasts_cert_verifier_new(NULL, &verifier), MTASTS_NULL_PARAMETER, "roots");
  EXPECT(mtasts_cert_verifier_new("bundled", NULL), MTASTS_NULL_PARAMETER, "verifier_out");
  EXPECT(mtasts_cert_verifier_new(BAD_UTF8, &verifier), MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_cert_verifier_new("", &verifier), MTASTS_INVALID_PARAMETER, "empty");
  EXPECT(mtasts_cert_verifier_new("/nonexistent.pem", &verifier), MTASTS_CONFIG,
         "/nonexistent.pem");
  OK(mtasts_cert_verifier_new("bundled", &bundled));
  size_t pem_len = 0;
  char *pem = slurp(ca_file, &pem_len);
  CHECK(pem != NULL && pem_len > 0);
  EXPECT(mtasts_cert_verifier_new_from_pem(NULL, 4, &verifier), MTASTS_NULL_PARAMETER, "pem");
  EXPECT(mtasts_cert_verifier_new_from_pem((const uint8_t *)pem, pem_len, NULL),
         MTASTS_NULL_PARAMETER, "verifier_out");
  EXPECT(mtasts_cert_verifier_new_from_pem((const uint8_t *)"junk", 4, &verifier), MTASTS_CONFIG,
         "trust roots");
  OK(mtasts_cert_verifier_new_from_pem((const uint8_t *)pem, pem_len, &verifier));

  /* The CA certificate presented as an MX's leaf: read, but not acceptable. */
  mtasts_cert_check *check = NULL;
  bool valid = true;
  const mtasts_mx_failure *failure = NULL;
  const char *t = NULL, *r = NULL, *d = NULL;
  EXPECT(mtasts_cert_verifier_check_encoded(NULL, (const uint8_t *)pem, pem_len, "a.example", 0,
                                            &check),
         MTASTS_NULL_PARAMETER, "verifier");
  EXPECT(mtasts_cert_verifier_check_encoded(verifier, NULL, 5, "a.example", 0, &check),
         MTASTS_NULL_PARAMETER, "chain");
  EXPECT(mtasts_cert_verifier_check_encoded(verifier, (const uint8_t *)pem, pem_len, NULL, 0,
                                            &check),
         MTASTS_NULL_PARAMETER, "mx_host");
  EXPECT(mtasts_cert_verifier_check_encoded(verifier, (const uint8_t *)pem, pem_len,
                                            "a.example", 0, NULL),
         MTASTS_NULL_PARAMETER, "check_out");
  EXPECT(mtasts_cert_verifier_check_encoded(verifier, (const uint8_t *)pem, pem_len, BAD_UTF8,
                                            0, &check),
         MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_cert_verifier_check_encoded(verifier, (const uint8_t *)pem, pem_len,
                                            "a.example", UINT64_MAX, &check),
         MTASTS_INVALID_PARAMETER, "at_unix");
  CHECK(check == NULL);
  EXPECT(mtasts_cert_verifier_check_encoded(verifier, (const uint8_t *)"xyz", 3, "a.example", 0,
                                            &check),
         MTASTS_INVALID_CHAIN, "DER");
  EXPECT(mtasts_cert_verifier_check_encoded(verifier, NULL, 0, "a.example", 0, &check),
         MTASTS_INVALID_CHAIN, "empty");
  EXPECT(mtasts_cert_verifier_check_encoded((const mtasts_cert_verifier *)resolver,
                                            (const uint8_t *)pem, pem_len, "a.example", 0,
                                            &check),
         MTASTS_INVALID_HANDLE, "mtasts_cert_verifier");
  OK(mtasts_cert_verifier_check_encoded(verifier, (const uint8_t *)pem, pem_len, "a.example", 0,
                                        &check));
  OK(mtasts_cert_check_result(check, &valid, &failure));
  CHECK(!valid && failure != NULL);
  OK(mtasts_mx_failure_strings(failure, &t, &r, &d));
  CHECK(t != NULL && r != NULL && d != NULL);
  EXPECT(mtasts_cert_check_result(NULL, &valid, &failure), MTASTS_NULL_PARAMETER, "check");
  EXPECT(mtasts_cert_check_result(check, NULL, &failure), MTASTS_NULL_PARAMETER, "valid_out");
  EXPECT(mtasts_cert_check_result(check, &valid, NULL), MTASTS_NULL_PARAMETER, "failure_out");
  mtasts_cert_check_free(check);
  check = NULL;

  /* The DER-list form: bytes that are not a certificate are the MX's failure. */
  const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
  const uint8_t *certs[] = {junk};
  const size_t lens[] = {sizeof junk};
  EXPECT(mtasts_cert_verifier_check_der(NULL, certs, lens, 1, "a.example", 0, &check),
         MTASTS_NULL_PARAMETER, "verifier");
  EXPECT(mtasts_cert_verifier_check_der(verifier, NULL, lens, 1, "a.example", 0, &check),
         MTASTS_NULL_PARAMETER, "certs");
  EXPECT(mtasts_cert_verifier_check_der(verifier, certs, NULL, 1, "a.example", 0, &check),
         MTASTS_NULL_PARAMETER, "cert_lens");
  EXPECT(mtasts_cert_verifier_check_der(verifier, certs, lens, 1, NULL, 0, &check),
         MTASTS_NULL_PARAMETER, "mx_host");
  EXPECT(mtasts_cert_verifier_check_der(verifier, certs, lens, 1, "a.example", 0, NULL),
         MTASTS_NULL_PARAMETER, "check_out");
  EXPECT(mtasts_cert_verifier_check_der(verifier, NULL, NULL, 0, "a.example", 0, &check),
         MTASTS_INVALID_CHAIN, "empty");
  EXPECT(mtasts_cert_verifier_check_der(verifier, certs, lens, 1, "192.0.2.1", 0, &check),
         MTASTS_INVALID_DOMAIN, "192.0.2.1");
  OK(mtasts_cert_verifier_check_der(verifier, certs, lens, 1, "a.example", 1000000000, &check));
  OK(mtasts_cert_check_result(check, &valid, &failure));
  CHECK(!valid);
  OK(mtasts_mx_failure_strings(failure, &t, &r, &d));
  CHECK(STREQ(r, "certificate-malformed"));
  mtasts_cert_check_free(check);
  mtasts_cert_check_free(NULL);

  /* The STARTTLS probe: a closed port and a port that never says a banner are reports
   * (incomplete), not errors. The passing probe is covered by the Rust tests, which run an
   * SMTP server. */
  mtasts_probe_report *report = NULL;
  const char *closed[] = {"127.0.0.1:9"};
  EXPECT(mtasts_cert_verifier_probe(NULL, "mx.example", closed, 1, 1000, NULL, &report),
         MTASTS_NULL_PARAMETER, "verifier");
  EXPECT(mtasts_cert_verifier_probe(verifier, NULL, closed, 1, 1000, NULL, &report),
         MTASTS_NULL_PARAMETER, "mx_host");
  EXPECT(mtasts_cert_verifier_probe(verifier, "mx.example", NULL, 1, 1000, NULL, &report),
         MTASTS_NULL_PARAMETER, "addrs");
  EXPECT(mtasts_cert_verifier_probe(verifier, "mx.example", closed, 1, 1000, NULL, NULL),
         MTASTS_NULL_PARAMETER, "report_out");
  const char *bad_addrs[] = {"localhost:25"};
  EXPECT(mtasts_cert_verifier_probe(verifier, "mx.example", bad_addrs, 1, 1000, NULL, &report),
         MTASTS_INVALID_PARAMETER, "ip:port");
  EXPECT(mtasts_cert_verifier_probe(verifier, "mx.example", closed, 1, 1000, "bad name!",
                                    &report),
         MTASTS_CONFIG, "EHLO");
  OK(mtasts_cert_verifier_probe(verifier, "mx.example", closed, 1, 2000, "client.example",
                                &report));
  mtasts_probe_outcome outcome = MTASTS_PROBE_PASS;
  const char *reason = NULL, *address = "x", *version = "x", *suite = "x";
  uint64_t total_ms = 0;
  bool offered = true;
  size_t count = 9;
  OK(mtasts_probe_report_result(report, &outcome, &failure, &reason, &total_ms));
  CHECK(outcome == MTASTS_PROBE_INCOMPLETE && failure == NULL && reason != NULL);
  OK(mtasts_probe_report_session(report, &address, &offered, &version, &suite));
  CHECK(address == NULL && !offered && version == NULL && suite == NULL);
  OK(mtasts_probe_report_chain_count(report, &count));
  CHECK(count == 0);
  const uint8_t *der = NULL;
  size_t der_len = 0;
  EXPECT(mtasts_probe_report_chain_get(report, 0, &der, &der_len), MTASTS_INDEX_OUT_OF_RANGE,
         "index 0");
  EXPECT(mtasts_probe_report_result(NULL, &outcome, &failure, &reason, &total_ms),
         MTASTS_NULL_PARAMETER, "report");
  EXPECT(mtasts_probe_report_result(report, NULL, &failure, &reason, &total_ms),
         MTASTS_NULL_PARAMETER, "outcome_out");
  EXPECT(mtasts_probe_report_session(NULL, &address, &offered, &version, &suite),
         MTASTS_NULL_PARAMETER, "report");
  EXPECT(mtasts_probe_report_session(report, &address, NULL, &version, &suite),
         MTASTS_NULL_PARAMETER, "starttls_offered_out");
  EXPECT(mtasts_probe_report_chain_count(NULL, &count), MTASTS_NULL_PARAMETER, "report");
  EXPECT(mtasts_probe_report_chain_count(report, NULL), MTASTS_NULL_PARAMETER, "count_out");
  EXPECT(mtasts_probe_report_chain_get(NULL, 0, &der, &der_len), MTASTS_NULL_PARAMETER,
         "report");
  EXPECT(mtasts_probe_report_chain_get(report, 0, NULL, &der_len), MTASTS_NULL_PARAMETER,
         "der_out");
  mtasts_probe_report_free(report);
  report = NULL;

  /* The resolver form: the world's HTTPS server answers TCP on the policy port but never
   * sends an SMTP banner, so the probe ends at its deadline. */
  EXPECT(mtasts_resolver_probe(NULL, verifier, "mta-sts.s01.mtasts.test", 1, 1000, NULL,
                               &report),
         MTASTS_NULL_PARAMETER, "resolver");
  EXPECT(mtasts_resolver_probe(resolver, NULL, "mta-sts.s01.mtasts.test", 1, 1000, NULL,
                               &report),
         MTASTS_NULL_PARAMETER, "verifier");
  EXPECT(mtasts_resolver_probe(resolver, verifier, "", 1, 1000, NULL, &report),
         MTASTS_INVALID_DOMAIN, "invalid domain");
  OK(mtasts_resolver_probe(resolver, verifier, "mta-sts.s01.mtasts.test",
                           (uint16_t)atoi(policy_port), 1500, NULL, &report));
  OK(mtasts_probe_report_result(report, &outcome, &failure, &reason, &total_ms));
  CHECK(outcome == MTASTS_PROBE_INCOMPLETE && reason != NULL);
  OK(mtasts_probe_report_session(report, &address, &offered, &version, &suite));
  CHECK(address != NULL && strncmp(address, "127.0.0.1:", 10) == 0);
  mtasts_probe_report_free(report);
  mtasts_probe_report_free(NULL);

  mtasts_cert_verifier_free(verifier);
  mtasts_cert_verifier_free(bundled);
  mtasts_cert_verifier_free(NULL);
  free(pem);
}

static void test_refresh(const mtasts_resolver *resolver) {
  mtasts_refresh_report *report = NULL;
  EXPECT(mtasts_resolver_refresh(NULL, true, 2, 0, &report), MTASTS_NULL_PARAMETER, "resolver");
  EXPECT(mtasts_resolver_refresh(resolver, true, 2, 0, NULL), MTASTS_NULL_PARAMETER,
         "report_out");
  OK(mtasts_resolver_refresh(resolver, true, 2, 0, &report));
  size_t examined = 0, purged = 9, count = 0;
  OK(mtasts_refresh_report_counts(report, &examined, &purged));
  CHECK(examined >= 1 && purged == 0);
  OK(mtasts_refresh_report_count(report, MTASTS_REFRESH_REFRESHED, &count));
  bool found = false;
  for (size_t i = 0; i < count; i++) {
    const char *domain = NULL;
    OK(mtasts_refresh_report_domain(report, MTASTS_REFRESH_REFRESHED, i, &domain));
    if (STREQ(domain, "s01.mtasts.test")) found = true;
  }
  CHECK(found);
  OK(mtasts_refresh_report_count(report, MTASTS_REFRESH_FAILED, &count));
  CHECK(count == 0);
  OK(mtasts_refresh_report_count(report, MTASTS_REFRESH_UNPUBLISHED, &count));
  const char *domain = NULL, *reason = NULL;
  mtasts_result code = MTASTS_OK;
  EXPECT(mtasts_refresh_report_count(report, 3, &count), MTASTS_INVALID_PARAMETER,
         "mtasts_refresh_list");
  EXPECT(mtasts_refresh_report_domain(report, MTASTS_REFRESH_FAILED, 0, &domain),
         MTASTS_INDEX_OUT_OF_RANGE, "index 0");
  EXPECT(mtasts_refresh_report_failure(report, 0, &code, &reason), MTASTS_INDEX_OUT_OF_RANGE,
         "index 0");
  EXPECT(mtasts_refresh_report_counts(NULL, &examined, &purged), MTASTS_NULL_PARAMETER,
         "report");
  EXPECT(mtasts_refresh_report_count(report, 0, NULL), MTASTS_NULL_PARAMETER, "count_out");
  EXPECT(mtasts_refresh_report_domain(report, 0, 0, NULL), MTASTS_NULL_PARAMETER, "domain_out");
  EXPECT(mtasts_refresh_report_failure(report, 0, NULL, &reason), MTASTS_NULL_PARAMETER,
         "code_out");
  mtasts_refresh_report_free(report);
  mtasts_refresh_report_free(NULL);
}

/* The log callback: collects what it is given (it may be called from any thread). */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_warnings;
static int log_mentions_s10;

static void on_log(void *userdata, mtasts_log_level level, const char *message, size_t len) {
  int *calls = userdata;
  pthread_mutex_lock(&log_lock);
  (*calls)++;
  if (level == MTASTS_LOG_WARN) log_warnings++;
  if (strlen(message) == len && strstr(message, "s10.mtasts.test") != NULL) log_mentions_s10++;
  pthread_mutex_unlock(&log_lock);
}

static void test_log(void) {
  static int calls;
  EXPECT(mtasts_set_log_callback(on_log, &calls, 9), MTASTS_INVALID_PARAMETER,
         "mtasts_log_level");
  OK(mtasts_set_log_callback(on_log, &calls, MTASTS_LOG_WARN));
  mtasts_config *config = world_config();
  mtasts_resolver *resolver = NULL;
  OK(mtasts_resolver_new(config, &resolver));
  mtasts_resolution *res = NULL;
  OK(mtasts_resolver_resolve(resolver, "s10.mtasts.test", &res));
  mtasts_resolution_free(res);
  OK(mtasts_set_log_callback(NULL, NULL, MTASTS_LOG_OFF));
  pthread_mutex_lock(&log_lock);
  CHECK(calls > 0 && log_warnings > 0 && log_mentions_s10 > 0);
  int seen = calls;
  pthread_mutex_unlock(&log_lock);
  OK(mtasts_resolver_resolve(resolver, "s19.mtasts.test", &res));
  mtasts_resolution_free(res);
  CHECK(calls == seen); /* off: nothing more */
  mtasts_resolver_free(resolver);
  mtasts_config_free(config);
}

/* Issue 10 (fail closed): a shared cache with a damaged page and a domain DNS says has no
 * policy: the resolution cannot tell, and every getter that answers "what to do with the
 * message" returns MTASTS_CACHE instead of "no requirement". */
/* mtasts_resolver_resolve_many: answers in input order, a bad entry is its own result. */
static void test_resolve_many(const mtasts_resolver *resolver) {
  const char bad_utf8[] = {'b', (char)0xff, '.', 't', 'e', 's', 't', 0};
  const char *domains[] = {"s01.mtasts.test", "s02.mtasts.test", NULL, bad_utf8,
                           "not a domain",    "s10.mtasts.test", "s01.mtasts.test"};
  enum { N = sizeof domains / sizeof domains[0] };
  mtasts_resolution *out[N];
  mtasts_result codes[N];
  OK(mtasts_resolver_resolve_many(resolver, domains, N, 4, out, codes));
  const mtasts_result want[N] = {MTASTS_OK, MTASTS_OK, MTASTS_NULL_PARAMETER,
                                 MTASTS_INVALID_PARAMETER, MTASTS_INVALID_DOMAIN,
                                 MTASTS_OK, MTASTS_OK};
  for (int i = 0; i < N; i++) {
    CHECK(codes[i] == want[i]);
    CHECK((out[i] != NULL) == (want[i] == MTASTS_OK));
  }
  mtasts_mode mode = MTASTS_MODE_NONE;
  mtasts_source source = MTASTS_SOURCE_FETCHED;
  if (out[0] != NULL) {
    OK(mtasts_resolution_mode(out[0], &mode));
    CHECK(mode == MTASTS_MODE_ENFORCE);
  }
  if (out[1] != NULL) {
    OK(mtasts_resolution_source(out[1], &source));
    CHECK(source == MTASTS_SOURCE_NONE);
  }
  if (out[5] != NULL) {
    OK(mtasts_resolution_source(out[5], &source));
    CHECK(source == MTASTS_SOURCE_UNAVAILABLE); /* S-10: the policy is not served */
  }
  for (int i = 0; i < N; i++) mtasts_resolution_free(out[i]);
  /* results_out is optional; an empty batch needs no arrays. */
  OK(mtasts_resolver_resolve_many(resolver, domains, 2, 0, out, NULL));
  mtasts_resolution_free(out[0]);
  mtasts_resolution_free(out[1]);
  OK(mtasts_resolver_resolve_many(resolver, NULL, 0, 1, NULL, NULL));
  EXPECT(mtasts_resolver_resolve_many(resolver, NULL, 2, 1, out, NULL), MTASTS_NULL_PARAMETER,
        "domains");
  EXPECT(mtasts_resolver_resolve_many(resolver, domains, 2, 1, NULL, NULL),
        MTASTS_NULL_PARAMETER, "resolutions_out");
  EXPECT(mtasts_resolver_resolve_many(NULL, domains, 2, 1, out, NULL), MTASTS_NULL_PARAMETER,
        "resolver");
}

static void test_unreadable_cache(void) {
  char dir[] = "/tmp/mtasts-c-cache.XXXXXX";
  if (mkdtemp(dir) == NULL) {
    CHECK(!"mkdtemp");
    return;
  }
  char path[256];
  snprintf(path, sizeof path, "%s/cache.db", dir);
  mtasts_config *config = world_config();
  OK(mtasts_config_set_cache(config, path));
  mtasts_resolver *writer = NULL;
  mtasts_resolution *res = NULL;
  OK(mtasts_resolver_new(config, &writer));
  OK(mtasts_resolver_resolve(writer, "s01.mtasts.test", &res));
  mtasts_resolution_free(res);
  mtasts_resolver_free(writer); /* closes the file: the WAL is checkpointed into it */

  FILE *f = fopen(path, "r+b");
  CHECK(f != NULL);
  if (f != NULL) {
    unsigned char junk[64];
    memset(junk, 0xa5, sizeof junk);
    /* Pages 2 and 3: the entries table and its primary-key index. */
    for (long page = 2; page <= 3; page++) {
      CHECK(fseek(f, (page - 1) * 4096, SEEK_SET) == 0);
      CHECK(fwrite(junk, 1, sizeof junk, f) == sizeof junk);
    }
    fclose(f);
  }
  mtasts_resolver *reader = NULL;
  OK(mtasts_resolver_new(config, &reader));
  mtasts_config_free(config);
  res = NULL;
  OK(mtasts_resolver_resolve(reader, "s02.mtasts.test", &res));
  mtasts_source source = MTASTS_SOURCE_NONE;
  OK(mtasts_resolution_source(res, &source));
  CHECK(source == MTASTS_SOURCE_CACHE_UNREADABLE);
  CHECK(STREQ(mtasts_source_str(source), "cache-unreadable"));
  mtasts_mode mode = MTASTS_MODE_ENFORCE;
  EXPECT(mtasts_resolution_mode(res, &mode), MTASTS_CACHE, "could not be read");
  CHECK(mode == MTASTS_MODE_ENFORCE); /* not written */
  mtasts_verdict *verdict = NULL;
  EXPECT(mtasts_verdict_for_mx(res, "mx.example.com", &verdict), MTASTS_CACHE, "read");
  CHECK(verdict == NULL);
  const char *hosts[] = {"mx.example.com"};
  mtasts_mx_plan *plan = NULL;
  EXPECT(mtasts_mx_plan_from_hosts(res, hosts, 1, &plan), MTASTS_CACHE, "read");
  CHECK(plan == NULL);
  mtasts_result code = MTASTS_OK;
  const char *result_type = NULL, *reason = NULL;
  OK(mtasts_resolution_failure(res, &code, &result_type, &reason));
  CHECK(code == MTASTS_CACHE && result_type == NULL && reason != NULL);
  mtasts_resolution_free(res);
  mtasts_resolver_free(reader);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

/* Issue 11: the diagnosis of `mtasts check`, from the core, with getters and its JSON. */
static void test_check(const mtasts_resolver *resolver) {
  mtasts_cert_verifier *verifier = NULL;
  OK(mtasts_cert_verifier_new(ca_file, &verifier));
  mtasts_diagnosis *d = NULL;
  EXPECT(mtasts_resolver_check(NULL, verifier, "s01.mtasts.test", false, 0, 0, NULL, &d),
         MTASTS_NULL_PARAMETER, "resolver");
  EXPECT(mtasts_resolver_check(resolver, NULL, "s01.mtasts.test", false, 0, 0, NULL, &d),
         MTASTS_NULL_PARAMETER, "verifier");
  EXPECT(mtasts_resolver_check(resolver, verifier, BAD_UTF8, false, 0, 0, NULL, &d),
         MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_resolver_check(resolver, verifier, "bad domain", false, 0, 0, NULL, &d),
         MTASTS_INVALID_DOMAIN, "bad domain");
  EXPECT(mtasts_resolver_check(resolver, verifier, "s01.mtasts.test", true, 0, UINT64_MAX,
                               NULL, &d),
         MTASTS_CONFIG, "out of range");
  CHECK(d == NULL);
  OK(mtasts_resolver_check(resolver, verifier, "s01.mtasts.test", false, 0, 0, NULL, &d));
  bool ok = true, defer = false;
  size_t count = 0;
  OK(mtasts_diagnosis_summary(d, &ok, &defer, &count));
  /* The implicit MX matches none of the enforce policy's patterns: senders defer. */
  CHECK(!ok && defer && count >= 2);
  bool mismatch = false;
  for (size_t i = 0; i < count; i++) {
    mtasts_severity severity = MTASTS_SEVERITY_WARNING;
    const char *code = NULL, *mx = NULL, *message = NULL, *fix = NULL;
    OK(mtasts_diagnosis_problem(d, i, &severity, &code, &mx, &message, &fix));
    CHECK(code != NULL && message != NULL && fix != NULL && *fix != '\0');
    if (STREQ(code, "mx-mismatch")) {
      mismatch = severity == MTASTS_SEVERITY_ERROR && STREQ(mx, "s01.mtasts.test");
    }
  }
  CHECK(mismatch);
  mtasts_severity severity;
  const char *t1, *t2, *t3, *t4;
  EXPECT(mtasts_diagnosis_problem(d, count, &severity, &t1, &t2, &t3, &t4),
         MTASTS_INDEX_OUT_OF_RANGE, "out of range");
  const char *json = NULL;
  size_t len = 0;
  OK(mtasts_diagnosis_json(d, &json, &len));
  CHECK(json != NULL && strlen(json) == len && strstr(json, "\"defer\": true") != NULL);
  CHECK(strstr(json, "\"code\": \"no-usable-mx\"") != NULL);
  EXPECT(mtasts_diagnosis_json(NULL, &json, &len), MTASTS_NULL_PARAMETER, "diagnosis");
  EXPECT(mtasts_diagnosis_summary(d, NULL, &defer, &count), MTASTS_NULL_PARAMETER, "ok_out");
  mtasts_diagnosis_free(d);
  mtasts_diagnosis_free(NULL);
  mtasts_cert_verifier_free(verifier);
}

/* Issue 15: recording TLS-RPT sessions into the report store beside a SQLite policy cache,
 * read back through a second reporter opened from a settings file (as another process would
 * open it), and the error paths (R-RPT-3, R-RPT-4, R-RPT-5, R-RPT-11). */
static void test_report(void) {
  char dir[] = "/tmp/mtasts-c-report.XXXXXX";
  if (mkdtemp(dir) == NULL) {
    CHECK(!"mkdtemp");
    return;
  }
  char path[256], conf[256];
  snprintf(path, sizeof path, "%s/cache.db", dir);
  snprintf(conf, sizeof conf, "%s/mtasts.conf", dir);
  mtasts_config *config = world_config();
  mtasts_reporter *reporter = NULL;
  EXPECT(mtasts_reporter_new(config, &reporter), MTASTS_CONFIG, "needs a shared cache");
  CHECK(reporter == NULL);
  OK(mtasts_config_set_cache(config, path));
  EXPECT(mtasts_config_set(config, "tlsrpt.retention_days", "0"), MTASTS_CONFIG, "at least 2");
  EXPECT(mtasts_config_set(config, "tlsrpt.retension_days", "9"), MTASTS_CONFIG, "unknown");
  OK(mtasts_config_set(config, "tlsrpt.retention_days", "14"));
  EXPECT(mtasts_reporter_new(NULL, &reporter), MTASTS_NULL_PARAMETER, "config");
  EXPECT(mtasts_reporter_new(config, NULL), MTASTS_NULL_PARAMETER, "reporter_out");
  OK(mtasts_reporter_new(config, &reporter));
  mtasts_resolver *resolver = NULL;
  OK(mtasts_resolver_new(config, &resolver));
  mtasts_config_free(config);
  if (reporter == NULL || resolver == NULL) {
    mtasts_reporter_free(reporter);
    mtasts_resolver_free(resolver);
    return;
  }
  const char *day = "2026-12-01";
  mtasts_resolution *enforce = NULL, *s05 = NULL, *none = NULL;
  OK(mtasts_resolver_resolve(resolver, "s01.mtasts.test", &enforce));
  OK(mtasts_resolver_resolve(resolver, "s05.mtasts.test", &s05));
  OK(mtasts_resolver_resolve(resolver, "s02.mtasts.test", &none));

  /* Failure details: typed input, checked once. */
  mtasts_report_failure *expired = NULL, *f = NULL;
  OK(mtasts_report_failure_new("certificate-expired", "192.0.2.1", "MAIL.Example.COM.",
                               "2001:db8::25", "mx1 ESMTP", NULL, "", &expired));
  EXPECT(mtasts_report_failure_new("certificate-expried", NULL, NULL, NULL, NULL, NULL, NULL, &f),
         MTASTS_INVALID_SESSION, "unknown result type");
  EXPECT(mtasts_report_failure_new("validation-failure", "192.0.2", NULL, NULL, NULL, NULL, NULL,
                                   &f),
         MTASTS_INVALID_SESSION, "sending-mta-ip");
  EXPECT(mtasts_report_failure_new("validation-failure", NULL, "bad host", NULL, NULL, NULL, NULL,
                                   &f),
         MTASTS_INVALID_SESSION, "receiving-mx-hostname");
  EXPECT(mtasts_report_failure_new(NULL, NULL, NULL, NULL, NULL, NULL, NULL, &f),
         MTASTS_NULL_PARAMETER, "result_type");
  EXPECT(mtasts_report_failure_new(BAD_UTF8, NULL, NULL, NULL, NULL, NULL, NULL, &f),
         MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_report_failure_new("validation-failure", NULL, NULL, BAD_UTF8, NULL, NULL, NULL,
                                   &f),
         MTASTS_INVALID_PARAMETER, "receiving_ip");
  EXPECT(mtasts_report_failure_new("validation-failure", NULL, NULL, NULL, NULL, NULL, NULL, NULL),
         MTASTS_NULL_PARAMETER, "failure_out");
  CHECK(f == NULL);

  /* Sessions under the policy each resolution applied: enforce policies are sts (the policy's
   * lines and patterns, R-RPT-3), no policy is no-policy-found (R-RPT-11). */
  const mtasts_report_failure *failures[] = {expired};
  OK(mtasts_reporter_record_resolution(reporter, enforce, day, NULL, 0));
  OK(mtasts_reporter_record_resolution(reporter, enforce, day, failures, 1));
  OK(mtasts_reporter_record_resolution(reporter, s05, day, failures, 1));
  OK(mtasts_reporter_record_resolution(reporter, s05, day, failures, 1));
  OK(mtasts_reporter_record_resolution(reporter, none, day, NULL, 0));
  EXPECT(mtasts_reporter_record_resolution(reporter, enforce, "2026-13-01", NULL, 0),
         MTASTS_INVALID_SESSION, "not a day");
  EXPECT(mtasts_reporter_record_resolution(reporter, enforce, BAD_UTF8, NULL, 0),
         MTASTS_INVALID_PARAMETER, "day");
  EXPECT(mtasts_reporter_record_resolution(NULL, enforce, day, NULL, 0), MTASTS_NULL_PARAMETER,
         "reporter");
  EXPECT(mtasts_reporter_record_resolution(reporter, NULL, day, NULL, 0), MTASTS_NULL_PARAMETER,
         "resolution");
  EXPECT(mtasts_reporter_record_resolution(reporter, enforce, day, NULL, 1),
         MTASTS_NULL_PARAMETER, "failures");
  EXPECT(mtasts_reporter_record_resolution((const mtasts_reporter *)enforce, enforce, day, NULL, 0),
         MTASTS_INVALID_HANDLE, "mtasts_reporter");

  /* Explicit policies: DANE applied (tlsa, with its records), no policy. */
  const char *records[] = {"3 1 1 0123456789abcdef"};
  OK(mtasts_reporter_record_policy(reporter, MTASTS_POLICY_TYPE_TLSA, "dane.example", records, 1,
                                   NULL, 0, day, NULL, 0));
  OK(mtasts_reporter_record_policy(reporter, MTASTS_POLICY_TYPE_TLSA, "dane.example", records, 1,
                                   NULL, 0, day, failures, 1));
  EXPECT(mtasts_reporter_record_policy(reporter, 7, "dane.example", NULL, 0, NULL, 0, day, NULL,
                                       0),
         MTASTS_INVALID_PARAMETER, "mtasts_policy_type");
  EXPECT(mtasts_reporter_record_policy(reporter, MTASTS_POLICY_TYPE_NO_POLICY_FOUND,
                                       "dane.example", records, 1, NULL, 0, day, NULL, 0),
         MTASTS_INVALID_SESSION, "no-policy-found");
  EXPECT(mtasts_reporter_record_policy(reporter, MTASTS_POLICY_TYPE_TLSA, BAD_UTF8, NULL, 0, NULL,
                                       0, day, NULL, 0),
         MTASTS_INVALID_PARAMETER, "domain");
  const char *bad_records[] = {NULL};
  EXPECT(mtasts_reporter_record_policy(reporter, MTASTS_POLICY_TYPE_TLSA, "dane.example",
                                       bad_records, 1, NULL, 0, day, NULL, 0),
         MTASTS_NULL_PARAMETER, "policy_strings");

  /* An MTA's events (what the Exim module passes on): the core decides. */
  bool recorded = false;
  /* An unverified certificate fails under a policy and is no failure without one. */
  OK(mtasts_reporter_record_mta_event(reporter, s05, MTASTS_MTA_EVENT_TLS_UNVERIFIED, NULL,
                                      "mail.example.com", "198.51.100.7", "192.0.2.1", day,
                                      &recorded));
  CHECK(recorded);
  OK(mtasts_reporter_record_mta_event(reporter, none, MTASTS_MTA_EVENT_TLS_UNVERIFIED, NULL,
                                      "mail.example.com", "198.51.100.7", "192.0.2.1", day,
                                      &recorded));
  CHECK(recorded);
  OK(mtasts_reporter_record_mta_event(reporter, enforce, MTASTS_MTA_EVENT_HOST_DEFERRED,
                                      "Connection refused", "mail.example.com", "", "", day,
                                      &recorded));
  CHECK(!recorded);
  /* An MX host left out (Exim's router): a failure only when the policy does not list it. */
  OK(mtasts_reporter_record_mta_event(reporter, enforce, MTASTS_MTA_EVENT_MX_SKIPPED, NULL,
                                      "mx.elsewhere.example", NULL, NULL, day, &recorded));
  CHECK(recorded);
  OK(mtasts_reporter_record_mta_event(reporter, enforce, MTASTS_MTA_EVENT_MX_SKIPPED, NULL,
                                      "mail.example.com", NULL, NULL, day, &recorded));
  CHECK(!recorded);
  EXPECT(mtasts_reporter_record_mta_event(reporter, enforce, MTASTS_MTA_EVENT_DANE_FAILED, NULL,
                                          NULL, NULL, NULL, day, &recorded),
         MTASTS_NULL_PARAMETER, "data");
  const char *type = NULL, *code = NULL;
  OK(mtasts_report_classify_mta_error(
      "a TLS session is required, but the server did not offer TLS support", &type, &code));
  CHECK(STREQ(type, "starttls-not-supported") && STREQ(code, "starttls-not-offered"));
  OK(mtasts_report_classify_mta_error("Connection timed out", &type, &code));
  CHECK(type == NULL && code == NULL);
  EXPECT(mtasts_report_classify_mta_error(BAD_UTF8, &type, &code), MTASTS_INVALID_PARAMETER,
         "UTF-8");
  mtasts_report_failure_free(expired);
  mtasts_report_failure_free(NULL);
  mtasts_resolution_free(enforce);
  mtasts_resolution_free(s05);
  mtasts_resolution_free(none);
  mtasts_resolver_free(resolver);
  mtasts_reporter_free(reporter);
  mtasts_reporter_free(NULL);

  /* A second reporter from a settings file, as another process opens the same store. */
  FILE *cf = fopen(conf, "w");
  CHECK(cf != NULL);
  if (cf != NULL) {
    fprintf(cf, "cache = %s\ntlsrpt.retention_days = 14\n", path);
    fclose(cf);
  }
  mtasts_config *again = NULL;
  OK(mtasts_config_new(&again));
  OK(mtasts_config_load_file(again, conf));
  mtasts_reporter *reader = NULL;
  OK(mtasts_reporter_new(again, &reader));
  mtasts_config_free(again);
  struct {
    const char *domain;
    mtasts_policy_type type;
    uint64_t successful, failed, details;
  } want[] = {
      {"s01.mtasts.test", MTASTS_POLICY_TYPE_STS, 1, 2, 2},
      {"s05.mtasts.test", MTASTS_POLICY_TYPE_STS, 0, 3, 3},
      {"s02.mtasts.test", MTASTS_POLICY_TYPE_NO_POLICY_FOUND, 2, 0, 0},
      {"dane.example", MTASTS_POLICY_TYPE_TLSA, 1, 1, 1},
      {"s01.mtasts.test", MTASTS_POLICY_TYPE_NO_POLICY_FOUND, 0, 0, 0},
  };
  for (size_t i = 0; reader != NULL && i < sizeof want / sizeof want[0]; i++) {
    uint64_t s = 99, fl = 99, d = 99;
    OK(mtasts_reporter_counts(reader, day, want[i].domain, want[i].type, &s, &fl, &d));
    if (s != want[i].successful || fl != want[i].failed || d != want[i].details) {
      fprintf(stderr, "  %s: %llu/%llu/%llu\n", want[i].domain, (unsigned long long)s,
              (unsigned long long)fl, (unsigned long long)d);
    }
    CHECK(s == want[i].successful && fl == want[i].failed && d == want[i].details);
  }
  uint64_t s, fl, d;
  EXPECT(mtasts_reporter_counts(reader, day, BAD_UTF8, MTASTS_POLICY_TYPE_STS, &s, &fl, &d),
         MTASTS_INVALID_PARAMETER, "UTF-8");
  EXPECT(mtasts_reporter_counts(reader, day, "x.example", 3, &s, &fl, &d),
         MTASTS_INVALID_PARAMETER, "mtasts_policy_type");
  EXPECT(mtasts_reporter_counts(NULL, day, "x.example", 0, &s, &fl, &d), MTASTS_NULL_PARAMETER,
         "reporter");
  mtasts_reporter_free(reader);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--nameserver") == 0) nameserver = argv[i + 1];
    if (strcmp(argv[i], "--trust-roots") == 0) ca_file = argv[i + 1];
    if (strcmp(argv[i], "--policy-port") == 0) policy_port = argv[i + 1];
  }
  if (nameserver == NULL || ca_file == NULL || policy_port == NULL) {
    fprintf(stderr,
            "usage: test_mtasts --nameserver IP:PORT --trust-roots CA.pem --policy-port N\n");
    return 2;
  }
  test_version_and_codes();
  test_last_error();
  test_config();

  mtasts_config *config = world_config();
  mtasts_resolver *resolver = NULL;
  OK(mtasts_resolver_new(config, &resolver));
  mtasts_config_free(config);
  if (resolver == NULL) {
    fprintf(stderr, "test_mtasts: no resolver; giving up\n");
    return 1;
  }
  test_resolution(resolver);
  test_verdicts(resolver);
  test_certificates(resolver);
  test_refresh(resolver);
  test_check(resolver);
  test_resolve_many(resolver);
  mtasts_resolver_free(resolver);
  test_unreadable_cache();
  test_report();
  test_log();

  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
