/*
 * Option parsing shared by the examples: the options of `mtasts` that configure a resolver.
 *
 *   --nameserver IP:PORT (repeatable)   --trust-roots system|bundled|FILE.pem
 *   --cache LOCATION                    --timeout SECONDS    --policy-port PORT (tests only)
 */
#ifndef MTASTS_EXAMPLE_ARGS_H
#define MTASTS_EXAMPLE_ARGS_H

#include <mtasts.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints this thread's last mtasts error after `what` on stderr. */
static inline void example_error(const char *program, const char *what, mtasts_result rc) {
  char message[512];
  size_t needed = 0;
  mtasts_last_error(message, sizeof message, &needed);
  fprintf(stderr, "%s: %s: %s (%s)\n", program, what, message, mtasts_result_str(rc));
}

/*
 * Applies the options at the start of argv to a new config. Returns the config (free it with
 * mtasts_config_free) and sets *first to the index of the first argument that is not an
 * option; NULL on a bad option (after printing why).
 */
static inline mtasts_config *example_config(const char *program, int argc, char **argv,
                                            int *first) {
  mtasts_config *config = NULL;
  mtasts_result rc = mtasts_config_new(&config);
  if (rc != MTASTS_OK) {
    example_error(program, "configuration", rc);
    return NULL;
  }
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i += 2) {
    const char *arg = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (value == NULL) {
      fprintf(stderr, "%s: %s needs a value\n", program, arg);
      mtasts_config_free(config);
      return NULL;
    }
    if (strcmp(arg, "--nameserver") == 0) {
      rc = mtasts_config_add_nameserver(config, value);
    } else if (strcmp(arg, "--trust-roots") == 0) {
      rc = mtasts_config_set_trust_roots(config, value);
    } else if (strcmp(arg, "--cache") == 0) {
      rc = mtasts_config_set_cache(config, value);
    } else if (strcmp(arg, "--timeout") == 0) {
      rc = mtasts_config_set_fetch_timeout_ms(config, strtoull(value, NULL, 10) * 1000);
    } else if (strcmp(arg, "--policy-port") == 0) {
      rc = mtasts_config_set_policy_port(config, (uint16_t)strtoul(value, NULL, 10));
    } else {
      fprintf(stderr, "%s: unknown option %s\n", program, arg);
      mtasts_config_free(config);
      return NULL;
    }
    if (rc != MTASTS_OK) {
      example_error(program, arg, rc);
      mtasts_config_free(config);
      return NULL;
    }
  }
  *first = i;
  return config;
}

#endif /* MTASTS_EXAMPLE_ARGS_H */
