/*
 * berth: the Docker-compatible command line, as a small client of the berth CLI server
 * (src/cli/server.ts), a Node process of the same user that runs the commands of many
 * invocations, so that each costs this exec and a round trip instead of a Node start (~40 ms
 * here, plus ~20 ms of loading the CLI).
 *
 * The server runs the commands src/cli/served.ts allows; it answers "fallback" to the rest,
 * which run in Node here as before, as does every command when no server is up (one is
 * started in the background for the commands to come), when BERTH_CLI_SERVER=0, or when no
 * private directory is there for its socket: /run/berth-cli for root,
 * $XDG_RUNTIME_DIR/berth-cli for other users (BERTH_CLI_SERVER_DIR overrides).
 *
 * A command that reads input (run -i, exec -it, attach, a prune's question) gets ours: once the
 * server says "stdin" we send what we read as "in <n>" messages and our end of input as
 * "in-end" (paused and resumed by "stdin-pause" and "stdin-resume"). "raw 1" and "raw 0" put
 * our terminal in raw mode (as Node's setRawMode does) and back; it is restored however we end.
 * Our terminal's new size goes on SIGWINCH as "size <rows> <columns>".
 *
 * Signals end this process as they would have ended Node's, with two exceptions. A command
 * that runs until Ctrl-C (logs -f, events, stats) says with what status it then ends
 * ("interrupt-exit N"); the server sees us go and gives the command up. A command that proxies
 * signals to its container (run and attach without a terminal, as docker's --sig-proxy) says
 * "sig-proxy 1": from then until "sig-proxy 0", SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and
 * SIGUSR2 go to the server as "signal <number>" instead of ending us.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "served.h"

#define SERVE_FLAG "--berth-cli-serve" /* src/cli/main.ts */

extern char **environ;

/* Our terminal's modes before "raw 1", while it is raw. */
static struct termios saved_modes;
static volatile sig_atomic_t raw_mode;

static void restore_terminal(void) {
  if (raw_mode) tcsetattr(0, TCSADRAIN, &saved_modes);
  raw_mode = 0;
}

/* Raw as libuv makes it (UV_TTY_MODE_RAW), which is what the command does in Node. */
static void set_raw(int on) {
  if (!on) return restore_terminal();
  if (raw_mode || !isatty(0) || tcgetattr(0, &saved_modes) < 0) return;
  struct termios t = saved_modes;
  t.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
  t.c_oflag |= ONLCR;
  t.c_cflag |= CS8;
  t.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (tcsetattr(0, TCSADRAIN, &t) == 0) raw_mode = 1;
}

/* A signal that ends us: the terminal back as it was, then the signal's own end. */
static void on_fatal(int signo) {
  restore_terminal();
  signal(signo, SIG_DFL);
  raise(signo);
}

static int interrupt_status;
static void on_interrupt(int signo) {
  (void)signo;
  restore_terminal();
  _exit(interrupt_status);
}

static volatile sig_atomic_t resized;
static void on_winch(int signo) {
  (void)signo;
  resized = 1;
}

/* The mask ppoll waits with: the caller's, with SIGWINCH (and proxied signals) let through. */
static sigset_t waiting_mask;

/* Signals passed on to the server while it proxies them (see the top of this file). */
static const int proxied_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define NPROXIED (sizeof proxied_signals / sizeof *proxied_signals)
static volatile sig_atomic_t proxied_pending[NPROXIED];
static void on_proxied(int signo) {
  for (size_t i = 0; i < NPROXIED; i++)
    if (proxied_signals[i] == signo) proxied_pending[i] = 1;
}

/* Proxying on: the signals are caught, blocked but inside ppoll, and sent on from the main
   loop; off: they end us again, as before. */
static void set_proxy(int on) {
  struct sigaction sa = {.sa_handler = on ? on_proxied : on_fatal};
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < NPROXIED; i++) {
    sigaction(proxied_signals[i], &sa, NULL);
    sigaddset(&set, proxied_signals[i]);
    if (on) sigdelset(&waiting_mask, proxied_signals[i]);
  }
  sigprocmask(on ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static void send_pending_signals(int conn) {
  for (size_t i = 0; i < NPROXIED; i++) {
    if (!proxied_pending[i]) continue;
    proxied_pending[i] = 0;
    char msg[32];
    int n = snprintf(msg, sizeof msg, "signal %d\n", proxied_signals[i]);
    served_send_all(conn, msg, (size_t)n);
  }
}

/* "<isatty> <columns> <rows>" of fd, as the server's stand-ins for our stdout and stderr report. */
static void terminal_of(int fd, char *buf, size_t len) {
  struct winsize ws = {0};
  int tty = isatty(fd);
  if (tty) ioctl(fd, TIOCGWINSZ, &ws);
  snprintf(buf, len, "%d %u %u", tty, (unsigned)ws.ws_col, (unsigned)ws.ws_row);
}

static void send_size(int conn) {
  struct winsize ws = {0};
  char msg[64];
  if (!isatty(1) || ioctl(1, TIOCGWINSZ, &ws) < 0) return;
  int n = snprintf(msg, sizeof msg, "size %u %u\n", (unsigned)ws.ws_row, (unsigned)ws.ws_col);
  served_send_all(conn, msg, (size_t)n);
}

/* Input for the command, while the server reads it. */
static struct {
  int wanted, paused, ended;
} input;

/* One read of our stdin, sent on: "in <n>" and the bytes, or "in-end" at its end. */
static void forward_input(int conn) {
  static char buf[65536];
  ssize_t n = read(0, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    input.ended = 1;
    served_send_all(conn, "in-end\n", 7);
    return;
  }
  char head[32];
  int h = snprintf(head, sizeof head, "in %zd\n", n);
  if (served_send_all(conn, head, (size_t)h) == 0) served_send_all(conn, buf, (size_t)n);
}

/* The messages of the berth CLI server beyond those every command server sends. */
static void handle(const char *line) {
  if (sscanf(line, "interrupt-exit %d", &interrupt_status) == 1) {
    struct sigaction sa = {.sa_handler = on_interrupt};
    sigaction(SIGINT, &sa, NULL);
  } else if (!strcmp(line, "stdin")) {
    input.wanted = 1;
  } else if (!strcmp(line, "stdin-pause")) {
    input.paused = 1;
  } else if (!strcmp(line, "stdin-resume")) {
    input.paused = 0;
  } else if (!strcmp(line, "raw 1") || !strcmp(line, "raw 0")) {
    set_raw(line[4] == '1');
  } else if (!strcmp(line, "sig-proxy 1") || !strcmp(line, "sig-proxy 0")) {
    set_proxy(line[10] == '1');
  }
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

  /* The request: cwd, identity, whether our stdin is a terminal, our stdout's and stderr's
     terminals, the environment, argv. */
  char cwd[PATH_MAX], id[1024], in_tty[8], out_tty[48], err_tty[48], env_count[16];
  if (!getcwd(cwd, sizeof cwd) || served_identity(id, sizeof id, 1) < 0) served_run_in_node(&s);
  snprintf(in_tty, sizeof in_tty, "%d", isatty(0));
  terminal_of(1, out_tty, sizeof out_tty);
  terminal_of(2, err_tty, sizeof err_tty);
  int nenv = 0;
  while (environ[nenv]) nenv++;
  snprintf(env_count, sizeof env_count, "%d", nenv);
  const char **fields = calloc((size_t)nenv + 6, sizeof *fields);
  if (!fields) served_run_in_node(&s);
  fields[0] = cwd;
  fields[1] = id;
  fields[2] = in_tty;
  fields[3] = out_tty;
  fields[4] = err_tty;
  fields[5] = env_count;
  for (int i = 0; i < nenv; i++) fields[6 + i] = environ[i];

  /* However we end, a raw terminal goes back as it was (signal handlers do not survive the
     exec into Node of a fallback; the signal mask is the caller's again there). SIGWINCH is
     taken only inside ppoll. */
  atexit(restore_terminal);
  struct sigaction fatal = {.sa_handler = on_fatal}, winch = {.sa_handler = on_winch};
  const int fatal_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++) sigaction(fatal_signals[i], &fatal, NULL);
  sigaction(SIGWINCH, &winch, NULL);
  sigset_t with_winch;
  sigemptyset(&with_winch);
  sigaddset(&with_winch, SIGWINCH);
  sigprocmask(SIG_BLOCK, &with_winch, &waiting_mask);
  sigdelset(&waiting_mask, SIGWINCH);

  if (served_send_request(conn, fields, nenv + 6, argv) < 0) served_run_in_node(&s);
  free(fields);

  for (;;) {
    char line[256];
    while (served_next_line(line, sizeof line)) {
      int handled = served_message(&s, conn, line);
      if (handled < 0) served_lost(&s, "berth");
      if (!handled) handle(line);
    }
    if (resized && s.accepted) send_size(conn);
    resized = 0;
    send_pending_signals(conn);
    struct pollfd fds[2] = {{.fd = conn, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    nfds_t nfds = input.wanted && !input.paused && !input.ended ? 2 : 1;
    if (ppoll(fds, nfds, NULL, &waiting_mask) < 0) {
      if (errno == EINTR) continue;
      served_lost(&s, "berth");
    }
    if (nfds == 2 && fds[1].revents) forward_input(conn);
    if (fds[0].revents && !served_fill(conn)) served_lost(&s, "berth");
  }
}
