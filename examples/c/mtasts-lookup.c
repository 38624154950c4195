/*
 * mtasts-lookup: print the MTA-STS policy of each domain, like `mtasts lookup`.
 *
 *   mtasts-lookup [--nameserver IP:PORT]... [--trust-roots system|bundled|FILE.pem]
 *                 [--cache LOCATION] [--timeout SECONDS] [--policy-port PORT] DOMAIN...
 *
 * Exit status: 0 every domain has a policy or publishes none, 1 a failure occurred (DNS,
 * fetch, invalid policy), 2 usage or configuration error.
 *
 * Build: cc -Wall -Wextra -Werror mtasts-lookup.c $(pkg-config --cflags --libs mtasts)
 */
#include <mtasts.h>

#include <stdio.h>

#include "args.h"

static int usage(void) {
  fprintf(stderr,
          "usage: mtasts-lookup [--nameserver IP:PORT]... [--trust-roots R] [--cache LOC]\n"
          "                     [--timeout SECONDS] [--policy-port PORT] DOMAIN...\n");
  return 2;
}

/* Prints one domain's line (and its failure); returns 1 when something failed, 2 for a domain
 * that is not a host name. */
static int lookup(const mtasts_resolver *resolver, const char *domain) {
  mtasts_resolution *res = NULL;
  mtasts_result rc = mtasts_resolver_resolve(resolver, domain, &res);
  if (rc != MTASTS_OK) {
    example_error("mtasts-lookup", domain, rc);
    return rc == MTASTS_INVALID_DOMAIN || rc == MTASTS_INVALID_PARAMETER ? 2 : 1;
  }
  const char *name = NULL, *id = "-", *result_type = NULL, *reason = NULL;
  mtasts_mode mode = MTASTS_MODE_NONE;
  mtasts_source source = MTASTS_SOURCE_NONE;
  mtasts_result failure = MTASTS_OK;
  bool has_policy = false;
  mtasts_resolution_domain(res, &name);
  /* MTASTS_CACHE: whether a policy applies cannot be told (the shared cache could not be
   * read): an MTA defers the message; never treat the domain as having no policy. */
  bool cannot_tell = mtasts_resolution_mode(res, &mode) != MTASTS_OK;
  mtasts_resolution_source(res, &source);
  mtasts_resolution_has_policy(res, &has_policy);
  mtasts_resolution_failure(res, &failure, &result_type, &reason);

  printf("%-28s %-8s %-20s ", name, cannot_tell ? "unknown" : mtasts_mode_str(mode),
         mtasts_source_str(source));
  if (has_policy) {
    uint32_t max_age = 0;
    size_t count = 0;
    mtasts_resolution_policy_id(res, &id);
    mtasts_resolution_max_age(res, &max_age);
    mtasts_resolution_mx_count(res, &count);
    printf("%-16s %-8u ", id, (unsigned)max_age);
    for (size_t i = 0; i < count; i++) {
      const char *pattern = NULL;
      mtasts_resolution_mx_get(res, i, &pattern);
      printf("%s%s", i > 0 ? "," : "", pattern);
    }
    if (count == 0) printf("-");
  } else {
    printf("%-16s %-8s -", "-", "-");
  }
  printf("\n");
  if (failure != MTASTS_OK) {
    printf("  failure: %s: %s\n", result_type != NULL ? result_type : "-", reason);
  }
  if (cannot_tell) printf("  cannot tell whether a policy applies: defer mail to %s\n", name);
  mtasts_resolution_free(res);
  return failure != MTASTS_OK;
}

int main(int argc, char **argv) {
  int first = argc;
  mtasts_config *config = example_config("mtasts-lookup", argc, argv, &first);
  if (config == NULL) return usage();
  if (first >= argc) {
    mtasts_config_free(config);
    return usage();
  }

  mtasts_resolver *resolver = NULL;
  mtasts_result rc = mtasts_resolver_new(config, &resolver);
  mtasts_config_free(config); /* the resolver holds a copy */
  if (rc != MTASTS_OK) {
    example_error("mtasts-lookup", "resolver", rc);
    return 2;
  }
  printf("%-28s %-8s %-20s %-16s %-8s %s\n", "DOMAIN", "MODE", "SOURCE", "ID", "MAX_AGE",
         "MX");
  int status = 0;
  for (int i = first; i < argc; i++) {
    int s = lookup(resolver, argv[i]);
    if (s > status) status = s;
  }
  mtasts_resolver_free(resolver);
  return status;
}
