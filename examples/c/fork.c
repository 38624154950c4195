/*
 * fork: a resolver made before fork() keeps working in the children, as in Exim, which forks
 * a process per delivery (scenario S-41).
 *
 *   fork [OPTIONS] PARENT_DOMAIN CHILD_DOMAIN
 *
 * The parent resolves PARENT_DOMAIN, then forks 3 children. Each child resolves PARENT_DOMAIN
 * again (from the cache the parent filled) and CHILD_DOMAIN (new to it), checks both have an
 * enforce policy, and exits. With a shared cache (--cache FILE), the parent then finds
 * CHILD_DOMAIN in the cache the children wrote. Every wait is bounded: a child that hangs is
 * killed and counts as a failure. OPTIONS as for mtasts-lookup (see args.h).
 *
 * Exit status 0 when every process saw the expected answers, 1 otherwise, 2 for usage errors.
 */
#define _POSIX_C_SOURCE 200809L
#include <mtasts.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

#define CHILDREN 3
#define WAIT_SECONDS 60

/* Resolves `domain`; returns its source, or -1 unless it has an enforce policy. */
static int enforce_source(const mtasts_resolver *resolver, const char *domain) {
  mtasts_resolution *res = NULL;
  if (mtasts_resolver_resolve(resolver, domain, &res) != MTASTS_OK) return -1;
  mtasts_mode mode = MTASTS_MODE_NONE;
  mtasts_source source = MTASTS_SOURCE_NONE;
  mtasts_resolution_mode(res, &mode);
  mtasts_resolution_source(res, &source);
  mtasts_resolution_free(res);
  return mode == MTASTS_MODE_ENFORCE ? (int)source : -1;
}

/* Waits for `pid` at most WAIT_SECONDS; kills it when it hangs. True when it exited 0. */
static bool wait_child(pid_t pid) {
  struct timespec pause = {0, 20 * 1000 * 1000};
  for (int i = 0; i < WAIT_SECONDS * 50; i++) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (done < 0) return false;
    nanosleep(&pause, NULL);
  }
  fprintf(stderr, "fork: child %ld hung; killed\n", (long)pid);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return false;
}

int main(int argc, char **argv) {
  int first = argc;
  mtasts_config *config = example_config("fork", argc, argv, &first);
  if (config == NULL || argc - first != 2) {
    fprintf(stderr, "usage: fork [OPTIONS] PARENT_DOMAIN CHILD_DOMAIN\n");
    mtasts_config_free(config);
    return 2;
  }
  const char *parent_domain = argv[first];
  const char *child_domain = argv[first + 1];
  mtasts_resolver *resolver = NULL;
  mtasts_result rc = mtasts_resolver_new(config, &resolver);
  mtasts_config_free(config);
  if (rc != MTASTS_OK) {
    example_error("fork", "resolver", rc);
    return 2;
  }

  int failures = 0;
  int source = enforce_source(resolver, parent_domain);
  if (source != MTASTS_SOURCE_FETCHED) {
    fprintf(stderr, "fork: parent: %s not fetched (%d)\n", parent_domain, source);
    failures++;
  }
  fflush(NULL);

  pid_t children[CHILDREN];
  for (int i = 0; i < CHILDREN; i++) {
    children[i] = fork();
    if (children[i] < 0) {
      perror("fork");
      return 1;
    }
    if (children[i] == 0) {
      /* The child: the parent's resolver, its cache and its DNS configuration. */
      int ok = enforce_source(resolver, parent_domain) == MTASTS_SOURCE_CACHE &&
               enforce_source(resolver, child_domain) >= 0;
      if (!ok) fprintf(stderr, "fork: child %d: unexpected answer\n", i);
      fflush(NULL);
      /* _exit: no atexit handlers or stdio flushing of the parent's state. */
      _exit(ok ? 0 : 1);
    }
  }
  for (int i = 0; i < CHILDREN; i++) {
    if (!wait_child(children[i])) failures++;
  }
  /* The parent still works after its children are gone. */
  if (enforce_source(resolver, parent_domain) != MTASTS_SOURCE_CACHE) failures++;
  int child_source = enforce_source(resolver, child_domain);
  if (child_source < 0) failures++;
  printf("fork: %d children; parent sees %s as %s; %d failures\n", CHILDREN, child_domain,
         child_source >= 0 ? mtasts_source_str((uint32_t)child_source) : "(error)", failures);
  mtasts_resolver_free(resolver);
  return failures == 0 ? 0 : 1;
}
