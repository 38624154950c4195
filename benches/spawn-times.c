/* Starts commands the way an MTA starts its delivery processes, fork() then execv(), and
 * times each from before fork() to after waitpid(): wall time (CLOCK_MONOTONIC) and the
 * child's user+sys CPU (rusage). The commands are interleaved (round i starts with command
 * i mod N), so drift of the machine hits every command alike.
 *
 *   spawn-times RUNS CMDFILE
 *
 * CMDFILE holds one command per line, its arguments separated by TABs (the first an absolute
 * path). Every child has stdin and stdout on /dev/null, keeps stderr, and is killed by SIGALRM
 * after 10 s. Prints one line per run: "INDEX WALL_US CPU_US EXIT_STATUS". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 32
#define MAX_ARGS 32

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: spawn-times RUNS CMDFILE\n");
    return 2;
  }
  long runs = strtol(argv[1], NULL, 10);
  if (runs < 1 || runs > 100000) {
    fprintf(stderr, "spawn-times: RUNS must be 1..100000\n");
    return 2;
  }
  FILE *f = fopen(argv[2], "r");
  if (f == NULL) {
    perror(argv[2]);
    return 2;
  }
  static char *cmds[MAX_CMDS][MAX_ARGS + 1];
  int ncmds = 0;
  char line[8192];
  while (ncmds < MAX_CMDS && fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == '\0')
      continue;
    int nargs = 0;
    for (char *save = NULL, *arg = strtok_r(line, "\t", &save); arg != NULL && nargs < MAX_ARGS;
         arg = strtok_r(NULL, "\t", &save))
      cmds[ncmds][nargs++] = strdup(arg);
    cmds[ncmds][nargs] = NULL;
    ncmds++;
  }
  fclose(f);
  if (ncmds == 0) {
    fprintf(stderr, "spawn-times: no command in %s\n", argv[2]);
    return 2;
  }
  int devnull = open("/dev/null", O_RDWR);
  if (devnull < 0) {
    perror("/dev/null");
    return 1;
  }
  for (long round = 0; round < runs; round++) {
    for (int k = 0; k < ncmds; k++) {
      int i = (int)((round + k) % ncmds);
      long long t0 = now_us();
      pid_t pid = fork();
      if (pid < 0) {
        perror("fork");
        return 1;
      }
      if (pid == 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        alarm(10);
        execv(cmds[i][0], cmds[i]);
        perror(cmds[i][0]);
        _exit(127);
      }
      int status = 0;
      struct rusage ru;
      if (wait4(pid, &status, 0, &ru) < 0) {
        perror("wait4");
        return 1;
      }
      long long t1 = now_us();
      long long cpu = (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
                      (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      printf("%d %lld %lld %d\n", i, t1 - t0, cpu, code);
    }
  }
  return 0;
}
