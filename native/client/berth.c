/*
 * berth: the Docker-compatible command line, as a small client of the berth CLI server
 * (src/cli/server.ts), a Node process of the same user that runs the commands of many
 * invocations, so that each costs this exec and a round trip instead of a Node start (~40 ms
 * here, plus ~20 ms of loading the CLI).
 *
 * The server runs only commands that read no input and need no terminal (src/cli/served.ts);
 * it answers "fallback" to the rest, which run in Node here as before, as does every command
 * when no server is up (one is started in the background for the commands to come), when
 * BERTH_CLI_SERVER=0, or when no private directory is there for its socket: /run/berth-cli
 * for root, $XDG_RUNTIME_DIR/berth-cli for other users (BERTH_CLI_SERVER_DIR overrides).
 *
 * Signals are not forwarded (the Node command line does not forward them either): they end
 * this process as they would have ended Node's. A command that runs until Ctrl-C (logs -f,
 * events, stats) says with what status it then ends ("interrupt-exit N"); the server sees us
 * go and gives the command up.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "served.h"

#define SERVE_FLAG "--berth-cli-serve" /* src/cli/main.ts */

extern char **environ;

static int interrupt_status;
static void on_interrupt(int signo) {
  (void)signo;
  _exit(interrupt_status);
}

/* "<isatty> <columns>" of fd, as the server's stand-ins for our stdout and stderr report. */
static void terminal_of(int fd, char *buf, size_t len) {
  struct winsize ws = {0};
  int tty = isatty(fd);
  if (tty) ioctl(fd, TIOCGWINSZ, &ws);
  snprintf(buf, len, "%d %u", tty, (unsigned)ws.ws_col);
}

int main(int argc, char **argv) {
  (void)argc;
  struct served s;
  served_init(&s, "berth.cjs", argv);
  const char *off = getenv("BERTH_CLI_SERVER"), *dir = getenv("BERTH_CLI_SERVER_DIR");
  char dirbuf[PATH_MAX];
  if (!dir || !*dir) {
    const char *runtime_dir = getenv("XDG_RUNTIME_DIR");
    if (geteuid() == 0) dir = "/run/berth-cli";
    else if (runtime_dir && *runtime_dir && snprintf(dirbuf, sizeof dirbuf, "%s/berth-cli", runtime_dir) < (int)sizeof dirbuf) dir = dirbuf;
  }
  int conn = served_open(&s, off && !strcmp(off, "0") ? NULL : dir, SERVE_FLAG, 0);

  /* The request: cwd, identity, our stdout's and stderr's terminals, the environment, argv. */
  char cwd[PATH_MAX], id[1024], out_tty[32], err_tty[32], env_count[16];
  if (!getcwd(cwd, sizeof cwd) || served_identity(id, sizeof id, 1) < 0) served_run_in_node(&s);
  terminal_of(1, out_tty, sizeof out_tty);
  terminal_of(2, err_tty, sizeof err_tty);
  int nenv = 0;
  while (environ[nenv]) nenv++;
  snprintf(env_count, sizeof env_count, "%d", nenv);
  const char **fields = calloc((size_t)nenv + 5, sizeof *fields);
  if (!fields) served_run_in_node(&s);
  fields[0] = cwd;
  fields[1] = id;
  fields[2] = out_tty;
  fields[3] = err_tty;
  fields[4] = env_count;
  for (int i = 0; i < nenv; i++) fields[5 + i] = environ[i];
  if (served_send_request(conn, fields, nenv + 5, argv) < 0) served_run_in_node(&s);
  free(fields);

  for (;;) {
    char line[256];
    while (served_next_line(line, sizeof line)) {
      int handled = served_message(&s, conn, line);
      if (handled < 0) served_lost(&s, "berth");
      if (!handled && sscanf(line, "interrupt-exit %d", &interrupt_status) == 1) {
        struct sigaction sa = {.sa_handler = on_interrupt};
        sigaction(SIGINT, &sa, NULL);
      }
    }
    if (!served_fill(conn)) served_lost(&s, "berth");
  }
}
