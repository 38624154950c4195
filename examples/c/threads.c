/*
 * threads: one resolver shared by many threads, as in a multithreaded MTA.
 *
 *   threads [OPTIONS] DOMAIN=MODE...
 *
 * Starts 8 threads; each resolves every DOMAIN 25 times through the one resolver and checks
 * that the mode in effect is MODE (enforce, testing or none), and that an MX host outside the
 * policy gets a SKIP verdict under enforce. Concurrent lookups of one uncached domain make a
 * single fetch (scenario S-42). OPTIONS as for mtasts-lookup (see args.h).
 *
 * Exit status 0 when every thread saw the expected answers, 1 otherwise, 2 for usage errors.
 */
#include <mtasts.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

#define THREADS 8
#define ROUNDS 25
#define MAX_DOMAINS 16

struct expectation {
  char domain[256];
  const char *mode;
};

struct job {
  const mtasts_resolver *resolver; /* shared: const handles are thread-safe */
  const struct expectation *expected;
  int count;
  int errors;
};

static void *worker(void *arg) {
  struct job *job = arg;
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < job->count; i++) {
      const struct expectation *e = &job->expected[i];
      mtasts_resolution *res = NULL;
      if (mtasts_resolver_resolve(job->resolver, e->domain, &res) != MTASTS_OK) {
        job->errors++;
        continue;
      }
      mtasts_mode mode = MTASTS_MODE_NONE;
      mtasts_resolution_mode(res, &mode);
      if (strcmp(mtasts_mode_str(mode), e->mode) != 0) {
        fprintf(stderr, "threads: %s: mode %s, expected %s\n", e->domain,
                mtasts_mode_str(mode), e->mode);
        job->errors++;
      }
      /* An MX host no policy names: skipped under enforce, usable otherwise. */
      mtasts_verdict *verdict = NULL;
      if (mtasts_verdict_for_mx(res, "evil.example", &verdict) == MTASTS_OK) {
        mtasts_verdict_kind kind;
        bool requires_tls, may_use, reports;
        mtasts_verdict_summary(verdict, &kind, &requires_tls, &may_use, &reports);
        if (may_use == (mode == MTASTS_MODE_ENFORCE)) job->errors++;
        mtasts_verdict_free(verdict);
      } else {
        job->errors++;
      }
      mtasts_resolution_free(res);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  int first = argc;
  mtasts_config *config = example_config("threads", argc, argv, &first);
  if (config == NULL || first >= argc || argc - first > MAX_DOMAINS) {
    fprintf(stderr, "usage: threads [OPTIONS] DOMAIN=MODE...\n");
    mtasts_config_free(config);
    return 2;
  }
  struct expectation expected[MAX_DOMAINS];
  int count = 0;
  for (int i = first; i < argc; i++, count++) {
    const char *eq = strchr(argv[i], '=');
    size_t len = eq != NULL ? (size_t)(eq - argv[i]) : 0;
    if (eq == NULL || len == 0 || len >= sizeof expected[count].domain) {
      fprintf(stderr, "threads: expected DOMAIN=MODE, got %s\n", argv[i]);
      mtasts_config_free(config);
      return 2;
    }
    memcpy(expected[count].domain, argv[i], len);
    expected[count].domain[len] = '\0';
    expected[count].mode = eq + 1;
  }

  mtasts_resolver *resolver = NULL;
  mtasts_result rc = mtasts_resolver_new(config, &resolver);
  mtasts_config_free(config);
  if (rc != MTASTS_OK) {
    example_error("threads", "resolver", rc);
    return 2;
  }

  pthread_t threads[THREADS];
  struct job jobs[THREADS];
  for (int t = 0; t < THREADS; t++) {
    jobs[t] = (struct job){resolver, expected, count, 0};
    if (pthread_create(&threads[t], NULL, worker, &jobs[t]) != 0) {
      fprintf(stderr, "threads: pthread_create failed\n");
      return 1;
    }
  }
  int errors = 0;
  for (int t = 0; t < THREADS; t++) {
    pthread_join(threads[t], NULL);
    errors += jobs[t].errors;
  }
  mtasts_resolver_free(resolver);
  printf("threads: %d threads x %d rounds x %d domains, %d errors\n", THREADS, ROUNDS, count,
         errors);
  return errors == 0 ? 0 : 1;
}
