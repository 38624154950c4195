/* The C batch interface against a world: a resolver from a settings file (a fresh memory
 * cache), then one mtasts_resolver_resolve_many() over the domains of DOMAINS_FILE at the
 * given concurrency, timed (wall, and this process's user+sys CPU around the call).
 *
 *   resolve-many CONFIG CONCURRENCY DOMAINS_FILE
 *
 * Prints one JSON line: {"n", "ok", "wall", "cpu"}; "ok" counts fetched enforce policies.
 * Exit status 0, or 1 when the call or the set-up failed (the reason on stderr). Built with
 * -Wall -Wextra -Werror against the installed mtasts.h and libmtasts.so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <mtasts.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int fail(const char *step, mtasts_result rc) {
  char message[512];
  size_t needed = 0;
  mtasts_last_error(message, sizeof message, &needed);
  fprintf(stderr, "resolve-many: %s: %s: %s\n", step, mtasts_result_str(rc), message);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: resolve-many CONFIG CONCURRENCY DOMAINS_FILE\n");
    return 2;
  }
  unsigned long concurrency = strtoul(argv[2], NULL, 10);
  FILE *f = fopen(argv[3], "r");
  if (f == NULL) {
    perror(argv[3]);
    return 1;
  }
  size_t count = 0, cap = 1024;
  char **domains = malloc(cap * sizeof *domains);
  char line[512];
  while (domains != NULL && fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0')
      continue;
    if (count == cap) {
      cap *= 2;
      char **grown = realloc(domains, cap * sizeof *domains);
      if (grown == NULL)
        break;
      domains = grown;
    }
    domains[count++] = strdup(line);
  }
  fclose(f);
  mtasts_resolution **res = calloc(count ? count : 1, sizeof *res);
  mtasts_result *codes = calloc(count ? count : 1, sizeof *codes);
  if (domains == NULL || res == NULL || codes == NULL) {
    fprintf(stderr, "resolve-many: out of memory\n");
    return 1;
  }

  mtasts_config *config = NULL;
  mtasts_resolver *resolver = NULL;
  mtasts_result rc = mtasts_config_new(&config);
  if (rc != MTASTS_OK)
    return fail("mtasts_config_new", rc);
  if ((rc = mtasts_config_load_file(config, argv[1])) != MTASTS_OK)
    return fail("mtasts_config_load_file", rc);
  rc = mtasts_resolver_new(config, &resolver);
  mtasts_config_free(config);
  if (rc != MTASTS_OK)
    return fail("mtasts_resolver_new", rc);

  double cpu0 = cpu(), t0 = now();
  rc = mtasts_resolver_resolve_many(resolver, (const char *const *)domains, count,
                                    (uint32_t)concurrency, res, codes);
  double wall = now() - t0, used = cpu() - cpu0;
  if (rc != MTASTS_OK)
    return fail("mtasts_resolver_resolve_many", rc);

  size_t ok = 0;
  for (size_t i = 0; i < count; i++) {
    mtasts_source source;
    mtasts_mode mode;
    if (codes[i] == MTASTS_OK && res[i] != NULL &&
        mtasts_resolution_source(res[i], &source) == MTASTS_OK &&
        source == MTASTS_SOURCE_FETCHED &&
        mtasts_resolution_mode(res[i], &mode) == MTASTS_OK && mode == MTASTS_MODE_ENFORCE)
      ok++;
    mtasts_resolution_free(res[i]);
    free(domains[i]);
  }
  printf("{\"n\": %zu, \"ok\": %zu, \"wall\": %.6f, \"cpu\": %.6f}\n", count, ok, wall, used);
  mtasts_resolver_free(resolver);
  free(res);
  free(codes);
  free(domains);
  return 0;
}
