/*
 * mtasts_exim.so: MTA-STS (RFC 8461) for Exim, as ${dlfunc} functions over libmtasts.
 *
 *   ${dlfunc{/usr/local/lib/mtasts/mtasts_exim.so}{sts_mode}{$domain}}
 *       the policy mode in effect for the domain: "enforce", "testing" or "none"
 *   ${dlfunc{...}{sts_mx_allowed}{$domain}{$host}}
 *       "yes", or "no" when the policy is enforce and $host matches none of its mx patterns
 *   ${dlfunc{...}{sts_tls}{$domain}{$host}}
 *       what the policy requires of the MX host: "require-tls" (STARTTLS, TLS 1.2+, a
 *       certificate valid for $host), "testing", "no-requirement" or "skip" (do not use it)
 *   ${dlfunc{...}{sts_tls_or_error}{$domain}{$host}}
 *       as sts_tls, but never fails the expansion: when the module cannot answer (or is called
 *       wrongly) it returns "error: " and the reason (also written to the main log). For
 *       options whose failed expansion Exim ignores (host lists such as hosts_require_tls,
 *       event_action), so that the caller can fail closed on "error"
 *   ${dlfunc{...}{sts_ignore_hosts}{$domain}}
 *       for a dnslookup router's ignore_target_hosts: a host list of the MX hosts not to use.
 *       "" (none) unless the policy is enforce; under enforce "!^re1$ : ... : *", one regular
 *       expression per mx pattern, so every host outside the policy is ignored (R-APPLY-1);
 *       "*" (every host) when the module cannot answer. Never fails the expansion (Exim
 *       ignores no host when a host list fails to expand)
 *   ${dlfunc{...}{sts_policy}{$domain}}
 *       a one-line description for logs: mode, source, id, max_age, mx patterns, failure
 *   ${dlfunc{...}{mtasts_event}{$event_name}{$event_data}{$domain}{$host}
 *            {$host_address $sending_ip_address}
 *            {$tls_out_certificate_verified $tls_out_dane $tls_out_cipher}}
 *       (addresses and TLS state as words of one argument each: Exim 4.96 passes at most 7
 *       arguments reliably; with 8, argv is not NULL-terminated)
 *       TLS-RPT (RFC 8460): records the outcome of a TLS session with MX host $host for the
 *       policy of $domain in the report store beside the cache (see "TLS reporting" below).
 *       Always "" and never fails (an event_action's result refuses a connection or a
 *       certificate; a failed expansion would be ignored): problems go to the main log
 *   ${dlfunc{...}{mtasts_mx_skipped}{$domain}{$message_id}{MX HOSTS}}
 *       TLS-RPT for the MX hosts the router leaves out (sts_ignore_hosts): MX HOSTS is the
 *       domain's MX host names (separated by ':', ',', white space or newlines, as
 *       ${lookup dnsdb{mxh=$domain}} gives them); each host its enforce policy does not list is
 *       recorded as a failed session (validation-failure, mx-mismatch), once per message and
 *       process (a host never connected to has no other event). Always "" and never fails;
 *       problems go to the main log
 *
 * Each function takes an optional last argument: the path of the module's configuration file
 * (see below). Without it (or when it is empty), $MTASTS_EXIM_CONFIG is used when Exim keeps it
 * in its environment (keep_environment), else /etc/mtasts/exim.conf when it exists, else the
 * defaults.
 *
 * Return values (Exim's local_scan.h): OK with the answer; FAIL (the expansion fails) for
 * wrong arguments; DEFER when the module cannot answer (unreadable configuration, a cache that
 * cannot be opened or read, MTASTS_SOURCE_CACHE_UNREADABLE: whether a policy applies cannot be
 * told, R-CACHE-7; Exim writes the message to the panic log and the delivery is deferred);
 * ERROR for an internal error of the library. A domain that is not a host name (an address
 * literal) has no MTA-STS policy: "none", "yes", "no-requirement".
 *
 * Problems with a domain's policy (DNS failure, fetch failure, invalid policy) never make the
 * expansion fail: RFC 8461 says to deliver as if there were no policy (or to keep using the
 * cached one), and that is what the answers say. They are written to Exim's main log through
 * the library's log callback.
 *
 * Configuration file: the mtasts settings format, read by the library
 * (mtasts_config_load_file; one "key = value" per line, '#' starts a comment; an unknown key
 * or a bad value is a configuration error naming the line). The module's own default is the
 * cache; every key of the format may be given:
 *   cache = /var/cache/mtasts/cache.db   where policies are cached (default as shown): a
 *                                        SQLite file shared by every Exim process; its
 *                                        directory must belong to the Exim user (0750)
 *   nameserver = 127.0.0.1:53            DNS server (repeatable; default /etc/resolv.conf)
 *   trust_roots = system                 system | bundled | /path/to/roots.pem
 *   fetch_timeout = 30                   seconds for one policy fetch
 *   dns_timeout = 10                     seconds for one DNS lookup
 *   recheck_interval = 0                 seconds between TXT checks (0: the record's TTL)
 *   memory_entries = 50000               entries kept in the process's memory
 *   log_level = warn                     off | error | warn | info | debug
 *   policy_port = 443                    tests only
 *
 * Each domain is resolved once per process and MEMO_TTL seconds: every later call for it (any
 * function, any MX host) uses that answer, so a delivery attempt costs one lookup at most.
 *
 * Lifetimes: the strings returned in *yield are static, or copies kept for the life of the
 * process (each distinct text is copied once, so the memory used grows only with the number of
 * distinct answers; past a limit a fixed text is returned instead). Exim processes are
 * single-threaded; the module keeps one resolver per process, made on first use; a delivery
 * process forked from a process that already made it keeps using it (libmtasts supports
 * fork()).
 *
 * TLS reporting (mtasts_event, for the transport's event_action; the snippet mtasts.conf
 * calls it for every event): one session per TLS negotiation with an MX host (R-RPT-3),
 * counted where the configuration's `cache` lives (a SQLite file or Redis; with
 * `cache = memory` nothing is recorded and the main log says so once). What each event is,
 * and its RFC 8460 result type, is decided by the library (mtasts_reporter_record_mta_event,
 * mtasts_report_classify_mta_error); this module passes Exim's variables on:
 *   smtp:ehlo after STARTTLS ($tls_out_cipher set; the transport process, where
 *     $tls_out_certificate_verified is live): the TLS session, verified (success), verified
 *     by DANE (a tlsa success), or not verified (a failure under a testing policy, a success
 *     without a policy);
 *   msg:host:defer: the host's failure when $event_data names a TLS problem (no STARTTLS, a
 *     failed handshake, a rejected certificate), unless this process already counted the
 *     session with this host (smtp:ehlo, dane:fail: a later deferral, e.g. of RCPT, is no
 *     second session);
 *   tls:cert: the snippet's own refusal of the leaf (no DNS name in its subjectAltName, a
 *     host outside the policy) is remembered for the host, so that the msg:host:defer that
 *     follows is counted as that (certificate-host-mismatch, validation-failure) rather than
 *     as Exim's "Error in the certificate";
 *   dane:fail: a tlsa failure with $event_data as the result type;
 *   msg:delivery with $tls_out_cipher empty (the delivery process): delivered in clear,
 *     starttls-not-supported (only where no policy required TLS);
 *   tcp:connect: forgets what this process remembered of the host (a new connection).
 * A message sent over a connection that is continued with its TLS session (no new
 * negotiation) adds no session. Exim does not pass the verification result to msg:delivery
 * ($tls_out_certificate_verified is not restored there in 4.96), hence smtp:ehlo.
 *
 * Build: cc -shared -fPIC -Wall -Wextra -Werror mtasts_exim.c \
 *          $(pkg-config --cflags --libs mtasts) -o mtasts_exim.so
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <mtasts.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* From Exim's local_scan.h (identical values in every Exim since dlfunc exists). */
typedef unsigned char uschar;
#define OK 0
#define DEFER 1
#define FAIL 2
#define ERROR 3
#define FAIL_FORCED 4
#define LOG_MAIN 1

#define DEFAULT_CONFIG "/etc/mtasts/exim.conf"
#define DEFAULT_CACHE "/var/cache/mtasts/cache.db"
#define MAX_INTERNED 4096
#define MAX_INTERNED_BYTES (1024 * 1024)

#define EXPORT __attribute__((visibility("default")))

/* The exported functions, with Exim's exim_dlfunc_t prototype. */
EXPORT int sts_mode(uschar **yield, int argc, uschar *argv[]);
EXPORT int sts_mx_allowed(uschar **yield, int argc, uschar *argv[]);
EXPORT int sts_tls(uschar **yield, int argc, uschar *argv[]);
EXPORT int sts_tls_or_error(uschar **yield, int argc, uschar *argv[]);
EXPORT int sts_ignore_hosts(uschar **yield, int argc, uschar *argv[]);
EXPORT int sts_policy(uschar **yield, int argc, uschar *argv[]);
EXPORT int mtasts_event(uschar **yield, int argc, uschar *argv[]);
EXPORT int mtasts_mx_skipped(uschar **yield, int argc, uschar *argv[]);

/* ---- Strings that outlive the call ----------------------------------------------------- */

struct interned {
  struct interned *next;
  char text[];
};
static struct interned *interned_list;
static size_t interned_count, interned_bytes;

/* A copy of `text` valid for the life of the process; identical texts share one copy. */
static uschar *keep(const char *text) {
  for (struct interned *i = interned_list; i != NULL; i = i->next) {
    if (strcmp(i->text, text) == 0) return (uschar *)i->text;
  }
  size_t len = strlen(text);
  if (interned_count >= MAX_INTERNED || interned_bytes + len > MAX_INTERNED_BYTES) {
    return (uschar *)"mtasts: too many distinct answers in this process (text not kept)";
  }
  struct interned *i = malloc(sizeof *i + len + 1);
  if (i == NULL) return (uschar *)"mtasts: out of memory";
  memcpy(i->text, text, len + 1);
  i->next = interned_list;
  interned_list = i;
  interned_count++;
  interned_bytes += len;
  return (uschar *)i->text;
}

/* Formats a message into kept storage. */
__attribute__((format(printf, 1, 2))) static uschar *keepf(const char *format, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, format);
  vsnprintf(buf, sizeof buf, format, ap);
  va_end(ap);
  return keep(buf);
}

/* The library's last error on this thread. */
static const char *last_error(void) {
  static char message[1024];
  size_t needed = 0;
  if (mtasts_last_error(message, sizeof message, &needed) != MTASTS_OK) return "(unknown)";
  return message;
}

/* ---- Exim's log ------------------------------------------------------------------------ */

typedef void log_write_fn(unsigned int selector, int flags, const char *format, ...);
static log_write_fn *exim_log_write;

/* The library's log messages go to Exim's main log (or stderr outside Exim). */
static void on_log(void *userdata, mtasts_log_level level, const char *message, size_t len) {
  (void)userdata;
  const char *what = level <= MTASTS_LOG_ERROR ? "error" : level == MTASTS_LOG_WARN ? "warning"
                                                                                    : "info";
  if (exim_log_write != NULL) {
    exim_log_write(0, LOG_MAIN, "mtasts %s: %.*s", what, (int)len, message);
  } else {
    fprintf(stderr, "mtasts %s: %.*s\n", what, (int)len, message);
  }
}

/* ---- Configuration and the resolver ---------------------------------------------------- */

static mtasts_resolver *resolver;
static char resolver_config[4096]; /* the configuration file it was made from ("" for none) */
/* The TLS-RPT reporter made from the same configuration (NULL when it cannot be: e.g.
 * `cache = memory`; reporter_problem says why, logged once by mtasts_event). */
static mtasts_reporter *reporter;
static char reporter_problem[1024];
static bool reporter_problem_logged;

/*
 * Applies the configuration file `path` (NULL: none) to `config`: the default cache first,
 * then the file, read by the library (mtasts_config_load_file: the one settings format of
 * every mtasts face; an unknown key or a bad value is an error naming the file and the line).
 * Returns NULL, or a message saying what is wrong.
 */
static uschar *apply_config_file(const char *path, mtasts_config *config) {
  if (mtasts_config_set_cache(config, DEFAULT_CACHE) != MTASTS_OK) {
    return keepf("mtasts: %s", last_error());
  }
  if (path != NULL && mtasts_config_load_file(config, path) != MTASTS_OK) {
    return keepf("mtasts: %s", last_error());
  }
  return NULL;
}

/*
 * The resolver for configuration file `path` (NULL: the default one). Sets *problem and
 * returns NULL when it cannot be made.
 */
static mtasts_resolver *get_resolver(const char *path, uschar **problem) {
  if (path == NULL) {
    const char *env = getenv("MTASTS_EXIM_CONFIG");
    FILE *f = NULL;
    if (env != NULL && *env != '\0') {
      path = env;
    } else if ((f = fopen(DEFAULT_CONFIG, "r")) != NULL) {
      fclose(f);
      path = DEFAULT_CONFIG;
    }
  }
  const char *key = path != NULL ? path : "";
  if (resolver != NULL && strcmp(resolver_config, key) == 0) return resolver;

  if (strlen(key) >= sizeof resolver_config) {
    *problem = keepf("mtasts: configuration file name too long: %s", key);
    return NULL;
  }
  /* Exim exports log_write() to dlfunc modules; outside Exim it is not found. (The POSIX way
   * to store a function pointer from dlsym.) */
  if (exim_log_write == NULL) *(void **)(&exim_log_write) = dlsym(RTLD_DEFAULT, "log_write");
  mtasts_config *config = NULL;
  if (mtasts_config_new(&config) != MTASTS_OK) {
    *problem = keepf("mtasts: %s", last_error());
    return NULL;
  }
  mtasts_log_level log_level = MTASTS_LOG_WARN;
  *problem = apply_config_file(path, config);
  mtasts_resolver *made = NULL;
  if (*problem == NULL && (mtasts_config_log_level(config, &log_level) != MTASTS_OK ||
                           mtasts_resolver_new(config, &made) != MTASTS_OK)) {
    *problem = keepf("mtasts: %s", last_error());
  }
  mtasts_reporter *made_reporter = NULL;
  if (made != NULL && mtasts_reporter_new(config, &made_reporter) != MTASTS_OK) {
    snprintf(reporter_problem, sizeof reporter_problem, "%s", last_error());
  }
  mtasts_config_free(config);
  if (made == NULL) return NULL;
  mtasts_set_log_callback(on_log, NULL, log_level);
  mtasts_reporter_free(reporter);
  reporter = made_reporter;
  reporter_problem_logged = false;
  if (made_reporter != NULL) reporter_problem[0] = '\0';

  mtasts_resolver_free(resolver); /* another configuration file was used before */
  resolver = made;
  snprintf(resolver_config, sizeof resolver_config, "%s", key);
  return resolver;
}

/* ---- The functions --------------------------------------------------------------------- */

/* ---- One lookup per domain per delivery process ---------------------------------------- */

/*
 * The answers of recent lookups, by domain: Exim expands the snippet's module calls about
 * seven times per MX host (router, port, three host lists, ciphers, SNI, events), and a
 * domain whose DNS or HTTPS is blackholed would otherwise cost the full deadline on every
 * call. A domain is resolved once; every later call for it (any MX host, any function) uses
 * the same resolution, so one delivery attempt costs at most one lookup's deadline. Answers
 * that say "cannot tell" are kept too: asking again would wait as long and most likely
 * answer the same. Bounded: MEMO_SIZE domains (the oldest entry makes room) and MEMO_TTL
 * seconds (60 s, the shortest recheck interval of R-CACHE-5), so a long-lived process never
 * keeps a stale answer longer than the library's own cache would. A delivery process forked
 * after routing inherits the answers its parent got.
 */
#define MEMO_SIZE 32
#define MEMO_TTL 60
#define MEMO_DOMAIN_MAX 256

struct memo {
  char domain[MEMO_DOMAIN_MAX]; /* as given ("" = unused slot) */
  time_t at;                    /* when it was resolved */
  int status;                   /* OK, or what resolve() returns */
  uschar *message;              /* for status != OK (kept storage) */
  mtasts_resolution *res;       /* for OK: owned here; NULL for a non-host-name domain */
};
static struct memo memos[MEMO_SIZE];
static mtasts_resolution *unkept; /* the answer for a domain too long to keep (freed next time) */

static void memo_clear(struct memo *m) {
  mtasts_resolution_free(m->res);
  memset(m, 0, sizeof *m);
}

/* Forgets every answer (the resolver changed: another configuration file). */
static void memo_forget_all(void) {
  for (size_t i = 0; i < MEMO_SIZE; i++) memo_clear(&memos[i]);
}

/* The current answer for `domain`, or NULL. */
static struct memo *memo_find(const char *domain, time_t now) {
  for (size_t i = 0; i < MEMO_SIZE; i++) {
    struct memo *m = &memos[i];
    if (m->domain[0] == '\0' || strcmp(m->domain, domain) != 0) continue;
    if (now - m->at >= 0 && now - m->at < MEMO_TTL) return m;
    memo_clear(m); /* expired (or the clock went back) */
    return NULL;
  }
  return NULL;
}

/* A slot for a new answer: an unused one, else the oldest. */
static struct memo *memo_slot(void) {
  struct memo *oldest = &memos[0];
  for (size_t i = 0; i < MEMO_SIZE; i++) {
    if (memos[i].domain[0] == '\0') return &memos[i];
    if (memos[i].at < oldest->at) oldest = &memos[i];
  }
  memo_clear(oldest);
  return oldest;
}

/*
 * Whether `res` says that the shared policy cache could not be read, so that whether a policy
 * applies cannot be told (MTASTS_SOURCE_CACHE_UNREADABLE, R-CACHE-7); then *message says so.
 * A source that cannot be read counts as cannot tell too.
 */
static bool cannot_tell(const mtasts_resolution *res, uschar **message) {
  mtasts_source source = MTASTS_SOURCE_NONE;
  const char *why = NULL;
  if (mtasts_resolution_source(res, &source) != MTASTS_OK) {
    why = last_error();
  } else if (source == MTASTS_SOURCE_CACHE_UNREADABLE) {
    mtasts_result code = MTASTS_OK;
    const char *result_type = NULL, *reason = NULL;
    mtasts_resolution_failure(res, &code, &result_type, &reason);
    why = reason != NULL ? reason : "the shared policy cache could not be read";
  } else {
    return false;
  }
  *message = keepf("cannot tell whether a policy applies, deferring (R-CACHE-7, fail closed): %s",
                   why);
  return true;
}

/*
 * Checks argc (`needed` arguments plus an optional configuration file) and resolves the
 * domain argv[0], once per domain (see above). Returns OK with *out set (NULL for a domain
 * that is not a host name, which has no policy), or the status to return with *yield set to
 * the message. *out is owned by the memo: valid until the next call, never freed by callers.
 */
static int resolve(const char *function, uschar **yield, int argc, uschar *argv[], int needed,
                   mtasts_resolution **out) {
  *out = NULL;
  if (argc < needed || argc > needed + 1) {
    *yield = keepf("mtasts: %s takes %d argument%s and an optional configuration file, not %d",
                   function, needed, needed == 1 ? "" : "s", argc);
    return FAIL;
  }
  uschar *problem = NULL;
  /* An empty configuration argument means "none given", so a macro may be left empty. */
  const char *file = argc > needed && argv[needed][0] != '\0' ? (const char *)argv[needed] : NULL;
  mtasts_resolver *before = resolver;
  mtasts_resolver *r = get_resolver(file, &problem);
  if (r == NULL) {
    *yield = problem;
    return DEFER;
  }
  if (r != before) memo_forget_all();
  const char *domain = (const char *)argv[0];
  time_t now = time(NULL);
  struct memo *m = strlen(domain) < MEMO_DOMAIN_MAX ? memo_find(domain, now) : NULL;
  if (m == NULL) {
    mtasts_resolution *res = NULL;
    int status = OK;
    uschar *message = NULL;
    mtasts_result rc = mtasts_resolver_resolve(r, domain, &res);
    if (rc != MTASTS_OK && rc != MTASTS_INVALID_DOMAIN) {
      message = keep(last_error());
      status = rc == MTASTS_INVALID_PARAMETER ? FAIL : ERROR;
      res = NULL;
    } else if (res != NULL && cannot_tell(res, &message)) {
      /* R-CACHE-7, fail closed: whether a policy applies cannot be told. Every function
       * answers DEFER (sts_tls_or_error "error: ...", sts_ignore_hosts "*"), so the snippet
       * defers the message: never a delivery as if the domain had no policy. */
      status = DEFER;
      mtasts_resolution_free(res);
      res = NULL;
    }
    if (strlen(domain) >= MEMO_DOMAIN_MAX) { /* not kept (no host name is that long) */
      mtasts_resolution_free(unkept);
      unkept = res;
      *out = res;
      if (status != OK) *yield = keepf("mtasts: %s: %s", function, message);
      return status;
    }
    m = memo_slot();
    snprintf(m->domain, sizeof m->domain, "%s", domain);
    m->at = now;
    m->status = status;
    m->message = message;
    m->res = res;
  }
  if (m->status != OK) {
    *yield = keepf("mtasts: %s: %s", function, m->message);
    return m->status;
  }
  *out = m->res;
  return OK;
}

/*
 * The verdict for MX host argv[1] under the policy of domain argv[0]. Returns OK with *kind
 * set, or the status to return.
 */
static int verdict(const char *function, uschar **yield, int argc, uschar *argv[],
                   mtasts_verdict_kind *kind) {
  mtasts_resolution *res = NULL;
  int status = resolve(function, yield, argc, argv, 2, &res);
  *kind = MTASTS_VERDICT_NO_REQUIREMENT;
  if (status != OK || res == NULL) return status;
  mtasts_verdict *v = NULL;
  bool requires_tls, may_use, reports;
  mtasts_result rc = mtasts_verdict_for_mx(res, (const char *)argv[1], &v);
  if (rc == MTASTS_OK) rc = mtasts_verdict_summary(v, kind, &requires_tls, &may_use, &reports);
  if (rc != MTASTS_OK) {
    *yield = keepf("mtasts: %s: %s", function, last_error());
    /* MTASTS_CACHE: whether a policy applies cannot be told (R-CACHE-7): defer. */
    status = rc == MTASTS_INVALID_PARAMETER ? FAIL : rc == MTASTS_CACHE ? DEFER : ERROR;
  }
  mtasts_verdict_free(v);
  return status;
}

int sts_mode(uschar **yield, int argc, uschar *argv[]) {
  mtasts_resolution *res = NULL;
  int status = resolve("sts_mode", yield, argc, argv, 1, &res);
  if (status != OK) return status;
  mtasts_mode mode = MTASTS_MODE_NONE;
  mtasts_result rc = res != NULL ? mtasts_resolution_mode(res, &mode) : MTASTS_OK;
  if (rc != MTASTS_OK) { /* never "none" for a mode that cannot be told (fail closed) */
    *yield = keepf("mtasts: sts_mode: %s", last_error());
    return rc == MTASTS_CACHE ? DEFER : ERROR;
  }
  /* mtasts_mode_str: static strings, valid for the life of the process. */
  *yield = (uschar *)mtasts_mode_str(mode);
  return OK;
}

int sts_mx_allowed(uschar **yield, int argc, uschar *argv[]) {
  mtasts_verdict_kind kind;
  int status = verdict("sts_mx_allowed", yield, argc, argv, &kind);
  if (status == OK) *yield = (uschar *)(kind == MTASTS_VERDICT_SKIP ? "no" : "yes");
  return status;
}

int sts_tls(uschar **yield, int argc, uschar *argv[]) {
  mtasts_verdict_kind kind;
  int status = verdict("sts_tls", yield, argc, argv, &kind);
  if (status != OK) return status;
  switch (kind) {
    case MTASTS_VERDICT_REQUIRE_TLS:
      *yield = (uschar *)"require-tls";
      break;
    case MTASTS_VERDICT_TESTING:
      *yield = (uschar *)"testing";
      break;
    case MTASTS_VERDICT_SKIP:
      *yield = (uschar *)"skip";
      break;
    default:
      *yield = (uschar *)"no-requirement";
      break;
  }
  return OK;
}

/* Writes "mtasts error: FUNCTION: REASON" to Exim's main log (stderr outside Exim). */
static void log_error(const char *function, const char *reason) {
  if (exim_log_write == NULL) *(void **)(&exim_log_write) = dlsym(RTLD_DEFAULT, "log_write");
  if (exim_log_write != NULL) {
    exim_log_write(0, LOG_MAIN, "mtasts error: %s: %s", function, reason);
  } else {
    fprintf(stderr, "mtasts error: %s: %s\n", function, reason);
  }
}

int sts_tls_or_error(uschar **yield, int argc, uschar *argv[]) {
  if (sts_tls(yield, argc, argv) == OK) return OK;
  /* An answer for every failure (DEFER, ERROR, FAIL): Exim ignores failed expansions of host
   * lists and of event_action, which would make the caller fail open. */
  const char *reason = *yield != NULL ? (const char *)*yield : "mtasts: (no message)";
  log_error("sts_tls_or_error", reason);
  *yield = keepf("error: %s", reason);
  return OK;
}

/*
 * Appends to `list` (an Exim host list being built, `used` bytes so far) a negated regular
 * expression matching exactly the host names that MX pattern `pattern` matches (R-MX-1,
 * R-MX-2): "mail.example.com" -> "!^mail\\.example\\.com$", "*.example.net" ->
 * "!^[^.]+\\.example\\.net$" (exactly one more label: Exim's own "*.example.net" host
 * pattern would match any number). Exim matches host-list regular expressions caselessly.
 * Patterns are lowercase LDH A-labels (R-POL-7): '.' is the only character to escape; anything
 * else is refused (false), so that no pattern can widen the expression.
 */
static bool append_pattern(char *list, size_t size, size_t *used, const char *pattern) {
  char re[600];
  size_t n = 0;
  const char *p = pattern;
  n += (size_t)snprintf(re, sizeof re, "!^");
  if (strncmp(p, "*.", 2) == 0) {
    n += (size_t)snprintf(re + n, sizeof re - n, "[^.]+\\.");
    p += 2;
  }
  for (; *p != '\0'; p++) {
    char c = *p;
    bool ldh = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.';
    if (!ldh || n + 3 >= sizeof re) return false;
    if (c == '.') re[n++] = '\\';
    re[n++] = c;
  }
  if (n + 2 >= sizeof re) return false;
  re[n++] = '$';
  re[n] = '\0';
  int wrote = snprintf(list + *used, size - *used, "%s : ", re);
  if (wrote < 0 || (size_t)wrote >= size - *used) return false;
  *used += (size_t)wrote;
  return true;
}

int sts_ignore_hosts(uschar **yield, int argc, uschar *argv[]) {
  mtasts_resolution *res = NULL;
  int status = resolve("sts_ignore_hosts", yield, argc, argv, 1, &res);
  if (status != OK) {
    /* Cannot tell: ignore every host (never a failed expansion: Exim would ignore none). */
    log_error("sts_ignore_hosts", *yield != NULL ? (const char *)*yield : "(no message)");
    *yield = (uschar *)"*";
    return OK;
  }
  mtasts_mode mode = MTASTS_MODE_NONE;
  if (res != NULL && mtasts_resolution_mode(res, &mode) != MTASTS_OK) {
    log_error("sts_ignore_hosts", last_error()); /* cannot tell: ignore every host */
    *yield = (uschar *)"*";
    return OK;
  }
  if (mode != MTASTS_MODE_ENFORCE) { /* R-APPLY-2, R-APPLY-3: every MX host may be used */
    *yield = (uschar *)"";
    return OK;
  }
  /* R-APPLY-1: under enforce, every host outside the policy's patterns is ignored. */
  char list[8192];
  size_t used = 0, count = 0;
  bool ok = mtasts_resolution_mx_count(res, &count) == MTASTS_OK;
  for (size_t i = 0; ok && i < count; i++) {
    const char *pattern = NULL;
    ok = mtasts_resolution_mx_get(res, i, &pattern) == MTASTS_OK && pattern != NULL &&
         append_pattern(list, sizeof list, &used, pattern);
  }
  if (!ok || used + 2 > sizeof list) {
    log_error("sts_ignore_hosts", "cannot write the policy's mx patterns as a host list");
    *yield = (uschar *)"*";
    return OK;
  }
  snprintf(list + used, sizeof list - used, "*");
  *yield = keep(list);
  return OK;
}

int sts_policy(uschar **yield, int argc, uschar *argv[]) {
  mtasts_resolution *res = NULL;
  int status = resolve("sts_policy", yield, argc, argv, 1, &res);
  if (status != OK) return status;
  if (res == NULL) {
    *yield = (uschar *)"mode=none source=none (not a domain name)";
    return OK;
  }
  char line[2048];
  size_t used = 0;
  mtasts_mode mode = MTASTS_MODE_NONE;
  mtasts_source source = MTASTS_SOURCE_NONE;
  bool has_policy = false;
  if (mtasts_resolution_mode(res, &mode) != MTASTS_OK ||
      mtasts_resolution_source(res, &source) != MTASTS_OK) {
    *yield = keepf("mtasts: sts_policy: %s", last_error());
    return DEFER;
  }
  mtasts_resolution_has_policy(res, &has_policy);
  used += (size_t)snprintf(line, sizeof line, "mode=%s source=%s", mtasts_mode_str(mode),
                           mtasts_source_str(source));
  if (has_policy) {
    const char *id = "";
    uint32_t max_age = 0;
    size_t count = 0;
    mtasts_resolution_policy_id(res, &id);
    mtasts_resolution_max_age(res, &max_age);
    mtasts_resolution_mx_count(res, &count);
    used += (size_t)snprintf(line + used, sizeof line - used, " id=%s max_age=%u mx=", id,
                             (unsigned)max_age);
    for (size_t i = 0; i < count && used < sizeof line; i++) {
      const char *pattern = "";
      mtasts_resolution_mx_get(res, i, &pattern);
      used += (size_t)snprintf(line + used, sizeof line - used, "%s%s", i > 0 ? "," : "",
                               pattern);
    }
  }
  mtasts_result code = MTASTS_OK;
  const char *result_type = NULL, *reason = NULL;
  mtasts_resolution_failure(res, &code, &result_type, &reason);
  if (code != MTASTS_OK && used < sizeof line) {
    snprintf(line + used, sizeof line - used, " failure=%s (%s)",
             result_type != NULL ? result_type : "-", reason);
  }
  *yield = keep(line);
  return OK;
}

/* ---- TLS reporting (RFC 8460) ---------------------------------------------------------- */

/*
 * What this process remembers per recipient domain and MX host address since its last
 * tcp:connect to that address: whether the
 * session was counted (smtp:ehlo, dane:fail, msg:host:defer), and the snippet's refusal of
 * the host's certificate (tls:cert), for the msg:host:defer that follows. Exim's transport
 * processes are single-threaded and try a handful of hosts; the oldest entry makes room.
 */
#define SEEN_SIZE 16
struct seen {
  char key[320]; /* "DOMAIN ADDRESS"; "" = unused */
  bool counted;
  char refusal[512];
};
static struct seen seen[SEEN_SIZE];
static size_t seen_next;

static struct seen *seen_find(const char *domain, const char *address, bool create) {
  char key[sizeof seen[0].key];
  int n = snprintf(key, sizeof key, "%s %s", domain, address);
  if (n < 0 || (size_t)n >= sizeof key) return NULL; /* not kept (no such names are valid) */
  for (size_t i = 0; i < SEEN_SIZE; i++) {
    if (strcmp(seen[i].key, key) == 0) return &seen[i];
  }
  if (!create) return NULL;
  struct seen *s = &seen[seen_next];
  seen_next = (seen_next + 1) % SEEN_SIZE;
  memset(s, 0, sizeof *s);
  memcpy(s->key, key, sizeof key);
  return s;
}

/* Forgets every domain's entry for `address` (a new connection to it). */
static void seen_forget(const char *address) {
  for (size_t i = 0; i < SEEN_SIZE; i++) {
    const char *space = strrchr(seen[i].key, ' ');
    if (space != NULL && strcmp(space + 1, address) == 0) memset(&seen[i], 0, sizeof seen[i]);
  }
}

/* Records `event` (an mtasts_mta_event) for the policy of `domain`; false when nothing was
 * recorded (not a TLS session outcome, or the reporter cannot be used: logged). */
static bool report(const char *function, const char *domain, const char *conf,
                   mtasts_mta_event event, const char *data, const char *host,
                   const char *address, const char *sending) {
  uschar *args[2] = {(uschar *)domain, (uschar *)conf};
  uschar *problem = NULL;
  mtasts_resolution *res = NULL;
  if (resolve(function, &problem, conf[0] != '\0' ? 2 : 1, args, 1, &res) != OK) {
    log_error(function, problem != NULL ? (const char *)problem : "(no message)");
    return false;
  }
  if (res == NULL) return false; /* not a host name (an address literal): no policy domain */
  if (reporter == NULL) {
    if (!reporter_problem_logged) {
      reporter_problem_logged = true;
      char what[128];
      snprintf(what, sizeof what, "%s (TLS-RPT sessions are not recorded)", function);
      log_error(what, reporter_problem);
    }
    return false;
  }
  bool recorded = false;
  if (mtasts_reporter_record_mta_event(reporter, res, (uint32_t)event, data, host, address,
                                       sending, NULL, &recorded) != MTASTS_OK) {
    log_error(function, last_error());
    return false;
  }
  return recorded;
}

int mtasts_event(uschar **yield, int argc, uschar *argv[]) {
  *yield = (uschar *)"";
  if (argc < 6 || argc > 7) {
    log_error("mtasts_event", "takes 6 arguments ($event_name, $event_data, $domain, $host, "
                              "\"$host_address $sending_ip_address\", \"$tls_out_certificate_"
                              "verified $tls_out_dane $tls_out_cipher\") and an optional "
                              "configuration file");
    return OK;
  }
  const char *name = (const char *)argv[0], *data = (const char *)argv[1],
             *domain = (const char *)argv[2], *host = (const char *)argv[3];
  const char *conf = argc > 6 ? (const char *)argv[6] : "";
  /* "ADDRESS SENDING": either may be empty. */
  char addresses[256];
  snprintf(addresses, sizeof addresses, "%s", (const char *)argv[4]);
  char *address = addresses, *sending = strchr(addresses, ' ');
  /* "VERIFIED DANE CIPHER": Exim writes ciphers without spaces; CIPHER empty without TLS. */
  char tls[512];
  snprintf(tls, sizeof tls, "%s", (const char *)argv[5]);
  char *verified = tls, *dane = strchr(tls, ' '), *cipher = NULL;
  if (dane != NULL) {
    *dane++ = '\0';
    cipher = strchr(dane, ' ');
    if (cipher != NULL) *cipher++ = '\0';
  }
  if (sending == NULL || dane == NULL || cipher == NULL) {
    log_error("mtasts_event", "the 5th and 6th arguments are not \"$host_address "
                              "$sending_ip_address\" and \"$tls_out_certificate_verified "
                              "$tls_out_dane $tls_out_cipher\"");
    return OK;
  }
  *sending++ = '\0';
  if (domain[0] == '\0') return OK;
  if (strcmp(name, "tcp:connect") == 0) {
    seen_forget(address);
  } else if (strcmp(name, "tls:cert") == 0) {
    /* $event_data is the snippet's refusal of this certificate ("" when accepted). */
    struct seen *s = data[0] != '\0' ? seen_find(domain, address, true) : NULL;
    if (s != NULL) snprintf(s->refusal, sizeof s->refusal, "%s", data);
  } else if (strcmp(name, "smtp:ehlo") == 0 && cipher[0] != '\0') {
    struct seen *s = seen_find(domain, address, true);
    if (s != NULL && s->counted) return OK;
    mtasts_mta_event event = strcmp(dane, "yes") == 0 ? MTASTS_MTA_EVENT_TLS_DANE
                             : strcmp(verified, "1") == 0 ? MTASTS_MTA_EVENT_TLS_VERIFIED
                                                          : MTASTS_MTA_EVENT_TLS_UNVERIFIED;
    if (report("mtasts_event", domain, conf, event, NULL, host, address, sending) && s != NULL) {
      s->counted = true;
    }
  } else if (strcmp(name, "dane:fail") == 0) {
    struct seen *s = seen_find(domain, address, true);
    if (s != NULL && s->counted) return OK;
    if (report("mtasts_event", domain, conf, MTASTS_MTA_EVENT_DANE_FAILED, data, host, address,
               sending) &&
        s != NULL) {
      s->counted = true;
    }
  } else if (strcmp(name, "msg:host:defer") == 0) {
    struct seen *s = seen_find(domain, address, true);
    if (s != NULL && s->counted) return OK;
    const char *why = s != NULL && s->refusal[0] != '\0' ? s->refusal : data;
    if (report("mtasts_event", domain, conf, MTASTS_MTA_EVENT_HOST_DEFERRED, why, host, address,
               sending) &&
        s != NULL) {
      s->counted = true;
    }
  } else if (strcmp(name, "msg:delivery") == 0 && cipher[0] == '\0' && host[0] != '\0') {
    report("mtasts_event", domain, conf, MTASTS_MTA_EVENT_DELIVERED_IN_CLEAR, NULL, host,
           address, sending);
  }
  return OK;
}

/* The separators of an MX host list: Exim's dnsdb gives newlines (or the `>x` separator). */
#define HOST_SEPARATORS ":, \t\r\n"
/* The domains of one message whose left-out MX hosts were counted: a message's recipients
 * are routed one by one, in their order, so a domain may come again after many others. */
#define SKIPPED_DOMAINS_MAX 1024
static char skipped_message[64];
static char *skipped_domains[SKIPPED_DOMAINS_MAX];
static size_t skipped_count;

/* True the first time `domain` comes for `message_id` in this process (and remembers it);
 * false when it came before, or cannot be remembered (then nothing is counted: never twice). */
static bool skipped_first(const char *message_id, const char *domain) {
  if (strcmp(skipped_message, message_id) != 0) {
    for (size_t i = 0; i < skipped_count; i++) free(skipped_domains[i]);
    skipped_count = 0;
    snprintf(skipped_message, sizeof skipped_message, "%s", message_id);
    if (strcmp(skipped_message, message_id) != 0) return false; /* no message id is longer */
  }
  for (size_t i = 0; i < skipped_count; i++) {
    if (strcmp(skipped_domains[i], domain) == 0) return false;
  }
  if (skipped_count == SKIPPED_DOMAINS_MAX) return false;
  char *copy = strdup(domain);
  if (copy == NULL) return false;
  skipped_domains[skipped_count++] = copy;
  return true;
}

int mtasts_mx_skipped(uschar **yield, int argc, uschar *argv[]) {
  *yield = (uschar *)"";
  if (argc < 3 || argc > 4) {
    log_error("mtasts_mx_skipped", "takes 3 arguments ($domain, $message_id, the MX host "
                                   "names) and an optional configuration file");
    return OK;
  }
  const char *domain = (const char *)argv[0], *message_id = (const char *)argv[1];
  const char *conf = argc > 3 ? (const char *)argv[3] : "";
  if (domain[0] == '\0' || message_id[0] == '\0') return OK; /* not a delivery (-bt) */
  char hosts[4096];
  int n = snprintf(hosts, sizeof hosts, "%s", (const char *)argv[2]);
  if (n < 0 || (size_t)n >= sizeof hosts) {
    log_error("mtasts_mx_skipped", "the MX host list is too long: not recorded");
    return OK;
  }
  /* No host names (the lookup found none, or failed): nothing to count, and nothing kept,
   * so a later address of the message at this domain may still count them. */
  if (hosts[strspn(hosts, HOST_SEPARATORS)] == '\0') return OK;
  /* Once per message and domain: each of its addresses at the domain is routed. */
  if (!skipped_first(message_id, domain)) return OK;
  char *state = NULL;
  for (char *host = strtok_r(hosts, HOST_SEPARATORS, &state); host != NULL;
       host = strtok_r(NULL, HOST_SEPARATORS, &state)) {
    /* The library decides: only a host outside an enforce policy is a failed session. */
    report("mtasts_mx_skipped", domain, conf, MTASTS_MTA_EVENT_MX_SKIPPED, NULL, host, "", "");
  }
  return OK;
}
