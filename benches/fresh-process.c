/* The fresh-process path as Exim pays it: a new process dlopen()s libmtasts, makes a resolver
 * from a settings file (the shared SQLite cache it names is opened), answers one lookup from
 * that cache and exits. benches/compare starts it many times, interleaved with /bin/true, and
 * prints the difference.
 *
 *   fresh-process LIBMTASTS.so CONFIG DOMAIN
 *
 * Exit status 0 when the answer came from the cache with an enforce policy, 1 otherwise (the
 * reason on stderr). Built with -Wall -Wextra -Werror against the installed mtasts.h. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <mtasts.h>

static void *lib;

static void *need(const char *name) {
  void *sym = dlsym(lib, name);
  if (sym == NULL) {
    fprintf(stderr, "fresh-process: %s: %s\n", name, dlerror());
    exit(1);
  }
  return sym;
}

#define LOAD(name) __typeof__(&name) p_##name = (__typeof__(&name))need(#name)

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: fresh-process LIBMTASTS.so CONFIG DOMAIN\n");
    return 2;
  }
  lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "fresh-process: %s\n", dlerror());
    return 1;
  }
  LOAD(mtasts_config_new);
  LOAD(mtasts_config_load_file);
  LOAD(mtasts_config_free);
  LOAD(mtasts_resolver_new);
  LOAD(mtasts_resolver_free);
  LOAD(mtasts_resolver_resolve);
  LOAD(mtasts_resolution_source);
  LOAD(mtasts_resolution_mode);
  LOAD(mtasts_resolution_free);
  LOAD(mtasts_last_error);

  mtasts_config *config = NULL;
  mtasts_resolver *resolver = NULL;
  mtasts_resolution *res = NULL;
  mtasts_source source = MTASTS_SOURCE_NONE;
  mtasts_mode mode = MTASTS_MODE_NONE;
  const char *step = "mtasts_config_new";
  mtasts_result rc = p_mtasts_config_new(&config);
  if (rc == MTASTS_OK) {
    step = "mtasts_config_load_file";
    rc = p_mtasts_config_load_file(config, argv[2]);
  }
  if (rc == MTASTS_OK) {
    step = "mtasts_resolver_new";
    rc = p_mtasts_resolver_new(config, &resolver);
  }
  p_mtasts_config_free(config);
  if (rc == MTASTS_OK) {
    step = "mtasts_resolver_resolve";
    rc = p_mtasts_resolver_resolve(resolver, argv[3], &res);
  }
  if (rc == MTASTS_OK) {
    step = "mtasts_resolution_source";
    rc = p_mtasts_resolution_source(res, &source);
  }
  if (rc == MTASTS_OK) {
    step = "mtasts_resolution_mode";
    rc = p_mtasts_resolution_mode(res, &mode);
  }
  int status = 0;
  if (rc != MTASTS_OK) {
    char message[512];
    size_t needed = 0;
    p_mtasts_last_error(message, sizeof message, &needed);
    fprintf(stderr, "fresh-process: %s: code %u: %s\n", step, (unsigned)rc, message);
    status = 1;
  } else if (source != MTASTS_SOURCE_CACHE || mode != MTASTS_MODE_ENFORCE) {
    fprintf(stderr, "fresh-process: %s: source %d, mode %d (expected a cached enforce policy)\n",
            argv[3], (int)source, (int)mode);
    status = 1;
  }
  p_mtasts_resolution_free(res);
  p_mtasts_resolver_free(resolver);
  return status;
}
