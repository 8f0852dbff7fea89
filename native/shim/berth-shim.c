/*
 * berth-shim: one small process per container, the parent of the container's PID 1.
 *
 *   berth-shim DIR      (BERTH_PLAN_FD, BERTH_SYNC_FD, BERTH_NSEXEC in the environment)
 *
 * It becomes a child sub-reaper, leaves the daemon's session, and starts berth-nsexec with
 * the plan pipe and sync socket it was given (it reads neither: the daemon speaks the
 * protocol of src/runtime/launch.ts with berth-nsexec as before) and with pipes as the
 * container's stdout and stderr. Then, in DIR, it
 *   - copies the container's output into log.json (Docker's json-file lines, log.c);
 *   - reaps every child; when the container's PID 1 exits, writes exit.json
 *     {"status":N,"signal":S,"finished":"RFC3339"} (temp + rename; N is 128+S for a signal);
 *   - serves shim.sock, one command per connection, one line each:
 *       state          -> {"shim":P,"pid":N,"status":"creating|running|stopped"[,"exit":{...}]}
 *       wait           -> the exit.json line, once the container has exited
 *       kill SIGNAL    -> ok | error ...
 *       attach         -> ok, then each new log line until the container exits
 *       resize R C     -> error (no terminal yet)
 *       shutdown       -> ok; exit as soon as the container has exited (no linger)
 *   - after the exit, lingers BERTH_SHIM_LINGER_MS (default 10 s) for late clients, then
 *     removes shim.sock and shim.pid and exits. The daemon may die at any time meanwhile.
 *
 * Which child is PID 1: berth-nsexec's stage 0 (our child) clones the container process
 * and exits. The kernel moves its children to us (the sub-reaper) before stage 0 can be
 * reaped, and until then we have no other child; so right after reaping stage 0 the one
 * pid in /proc/thread-self/children is the container's PID 1 (alive, or a zombie we have
 * not reaped yet). No message from the daemon is needed, which matters when it is gone.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_CLIENTS 32

struct client {
  int fd;
  size_t len;
  char line[128];
  int waiting, attached;
};

static int report_fd = -1; /* the sync socket, until berth-nsexec has it: errors go there */
static pid_t stage0_pid, init_pid;
static int stage0_reaped, setup_failed, exited, exit_status, exit_signal, shutdown_requested;
static char exit_line[128];
static long long linger_until;
static struct client clients[MAX_CLIENTS];
static struct log_stream streams[2] = {{.name = "stdout", .fd = -1}, {.name = "stderr", .fd = -1}};

/* Before berth-nsexec runs, an error goes to the daemon as berth-nsexec's own would. */
static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (report_fd >= 0) dprintf(report_fd, "error shim: %s\n", msg);
  dprintf(2, "berth-shim: %s\n", msg);
  _exit(1);
}
#define fail_errno(fmt, ...) fail(fmt ": %s", ##__VA_ARGS__, strerror(errno))

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int env_fd(const char *name) {
  const char *v = getenv(name);
  return v && *v ? atoi(v) : -1;
}

/* Writes a small file whole or not at all: a temporary, then rename. */
static int write_atomic(const char *name, const char *data) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, ".%s.tmp", name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(data);
  int ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp, name) < 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* ---- clients of shim.sock ---- */

static void drop(struct client *c) {
  close(c->fd);
  c->fd = -1;
}

/* Replies are small and clients read them: a client that cannot take a line is dropped. */
static int send_to(struct client *c, const char *data, size_t len) {
  if (send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len) return 0;
  drop(c);
  return -1;
}

static void reply(struct client *c, const char *line) {
  if (send_to(c, line, strlen(line)) == 0) drop(c);
}

static void tee_to_attached(const char *entry, size_t len) {
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd >= 0 && clients[i].attached) send_to(&clients[i], entry, len);
}

static void command(struct client *c, char *line) {
  char out[256];
  if (!strcmp(line, "state")) {
    const char *status = exited ? "stopped" : init_pid ? "running" : "creating";
    snprintf(out, sizeof out, "{\"shim\":%d,\"pid\":%d,\"status\":\"%s\"%s%.*s}\n", getpid(), init_pid, status,
             exited ? ",\"exit\":" : "", exited ? (int)strlen(exit_line) - 1 : 0, exit_line);
    reply(c, out);
  } else if (!strcmp(line, "wait")) {
    if (exited) reply(c, exit_line);
    else c->waiting = 1;
  } else if (!strncmp(line, "kill ", 5)) {
    char *end;
    long sig = strtol(line + 5, &end, 10);
    if (*end || sig < 1 || sig >= NSIG) reply(c, "error bad signal\n");
    else if (!init_pid || exited) reply(c, "error container not running\n");
    else if (kill(init_pid, (int)sig) < 0) snprintf(out, sizeof out, "error kill: %s\n", strerror(errno)), reply(c, out);
    else reply(c, "ok\n");
  } else if (!strcmp(line, "attach")) {
    if (exited) {
      reply(c, "ok\n");
    } else if (send_to(c, "ok\n", 3) == 0) {
      c->attached = 1;
    }
  } else if (!strncmp(line, "resize ", 7)) {
    reply(c, "error the container has no terminal\n");
  } else if (!strcmp(line, "shutdown")) {
    shutdown_requested = 1;
    reply(c, "ok\n");
  } else {
    reply(c, "error unknown command\n");
  }
}

static void accept_clients(int listen_fd) {
  int fd;
  while ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
    struct client *c = NULL;
    for (int i = 0; i < MAX_CLIENTS && !c; i++)
      if (clients[i].fd < 0) c = &clients[i];
    if (!c) {
      close(fd);
      continue;
    }
    *c = (struct client){.fd = fd};
  }
}

static void read_client(struct client *c) {
  ssize_t n = recv(c->fd, c->line + c->len, sizeof c->line - 1 - c->len, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0 || c->waiting || c->attached) { /* gone, or talking when it should listen */
    drop(c);
    return;
  }
  c->len += (size_t)n;
  char *nl = memchr(c->line, '\n', c->len);
  if (!nl) {
    if (c->len == sizeof c->line - 1) reply(c, "error line too long\n");
    return;
  }
  *nl = 0;
  command(c, c->line);
}

/* ---- the container ---- */

/* After stage 0 is reaped, our only child is the container's PID 1 (see the top). */
static pid_t only_child(void) {
  char buf[64] = {0};
  int fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 ? (pid_t)atoi(buf) : -1;
}

static void container_exited(int status) {
  /* What it wrote before exiting is in the pipes: log it before anyone learns of the exit. */
  for (int i = 0; i < 2; i++) {
    for (int reads = 0; reads < 64 && streams[i].fd >= 0 && log_read(&streams[i]) == 2; reads++) {}
    if (streams[i].fd >= 0) log_flush(&streams[i]);
  }
  exited = 1;
  exit_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + exit_signal;
  char finished[40];
  log_time(finished, sizeof finished);
  snprintf(exit_line, sizeof exit_line, "{\"status\":%d,\"signal\":%d,\"finished\":\"%s\"}\n", exit_status, exit_signal, finished);
  if (write_atomic("exit.json", exit_line) < 0) dprintf(2, "berth-shim: writing exit.json: %s\n", strerror(errno));
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (clients[i].fd < 0) continue;
    if (clients[i].waiting) reply(&clients[i], exit_line);
    else if (clients[i].attached) drop(&clients[i]);
  }
}

static void reap(long long linger_ms) {
  int status;
  if (!stage0_reaped) {
    /* Until stage 0 is gone it is our only child: reap nothing else before it. */
    if (waitpid(stage0_pid, &status, WNOHANG) != stage0_pid) return;
    stage0_reaped = 1;
    init_pid = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? only_child() : -1;
    if (init_pid <= 0) { /* setup failed; berth-nsexec told the daemon why */
      init_pid = 0;
      setup_failed = 1;
      linger_until = now_ms();
      return;
    }
  }
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == init_pid && !exited) {
      container_exited(status);
      linger_until = now_ms() + linger_ms;
    }
  }
}

static void start_nsexec(int plan_fd, int sync_fd, int stdout_fd, int stderr_fd, int cwd, const sigset_t *mask) {
  const char *nsexec = getenv("BERTH_NSEXEC");
  if (!nsexec) fail("BERTH_NSEXEC is not set: berth-shim is started by berth, not by hand");
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) fail_errno("open /dev/null");
  stage0_pid = fork();
  if (stage0_pid < 0) fail_errno("fork");
  if (stage0_pid == 0) {
    sigprocmask(SIG_SETMASK, mask, NULL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    if (fchdir(cwd) < 0) fail_errno("fchdir");
    /* dup2 leaves the new fds open across exec; everything of ours is O_CLOEXEC. */
    if (dup2(null, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0) fail_errno("dup2");
    char *argv[] = {"berth-nsexec", NULL};
    execve(nsexec, argv, environ);
    fail_errno("exec %s", nsexec);
  }
  close(null);
  close(plan_fd);
  close(sync_fd);
  report_fd = -1;
}

int main(int argc, char **argv) {
  int plan_fd = env_fd("BERTH_PLAN_FD"), sync_fd = env_fd("BERTH_SYNC_FD");
  report_fd = sync_fd;
  if (argc != 2 || plan_fd < 3 || sync_fd < 3) fail("usage: berth-shim DIR, with BERTH_PLAN_FD and BERTH_SYNC_FD (started by berth)");
  const char *linger = getenv("BERTH_SHIM_LINGER_MS");
  long long linger_ms = linger ? atoll(linger) : 10000;

  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) fail_errno("PR_SET_CHILD_SUBREAPER");
  setsid(); /* fails only if we lead a process group already, which is as good */
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;

  int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cwd < 0) fail_errno("open .");
  /* Working in DIR keeps the socket's path short, whatever DIR is. */
  if (chdir(argv[1]) < 0) fail_errno("chdir %s", argv[1]);
  if (log_open("log.json") < 0) fail_errno("open %s/log.json", argv[1]);
  log_tee = tee_to_attached;

  int listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX, .sun_path = "shim.sock"};
  unlink("shim.sock");
  if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listen_fd, 16) < 0)
    fail_errno("listen on %s/shim.sock", argv[1]);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) fail_errno("pipe");
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  streams[0].fd = out[0];
  streams[1].fd = err[0];

  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) fail_errno("signalfd");

  start_nsexec(plan_fd, sync_fd, out[1], err[1], cwd, &old);
  close(out[1]);
  close(err[1]);
  close(cwd);
  char pid[16];
  snprintf(pid, sizeof pid, "%d", getpid());
  if (write_atomic("shim.pid", pid) < 0) dprintf(2, "berth-shim: writing shim.pid: %s\n", strerror(errno));

  long long partial_since = 0; /* when output without a newline started waiting */
  for (;;) {
    if ((exited || setup_failed) && (shutdown_requested || now_ms() >= linger_until)) break;
    struct pollfd fds[4 + MAX_CLIENTS];
    int nfds = 0;
    fds[nfds++] = (struct pollfd){.fd = sfd, .events = POLLIN};
    fds[nfds++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    for (int i = 0; i < 2; i++) fds[nfds++] = (struct pollfd){.fd = streams[i].fd, .events = POLLIN};
    for (int i = 0; i < MAX_CLIENTS; i++) fds[nfds++] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN};

    int timeout = -1;
    if (exited || setup_failed) timeout = (int)(linger_until - now_ms());
    if (streams[0].len || streams[1].len) {
      long long left = partial_since + 100 - now_ms();
      if (timeout < 0 || left < timeout) timeout = (int)left;
    }
    if (timeout < -1) timeout = 0;
    if (poll(fds, (nfds_t)nfds, timeout) < 0 && errno != EINTR) fail_errno("poll");

    if (fds[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {}
      reap(linger_ms);
    }
    for (int i = 0; i < 2; i++) {
      if (!fds[2 + i].revents || streams[i].fd < 0) continue;
      int had_partial = streams[i].len > 0;
      log_read(&streams[i]);
      if (!had_partial && streams[i].len) partial_since = now_ms();
    }
    /* A line left unfinished for 100 ms (a prompt, say) is logged as it is. */
    if ((streams[0].len || streams[1].len) && now_ms() >= partial_since + 100) {
      log_flush(&streams[0]);
      log_flush(&streams[1]);
      partial_since = now_ms(); /* what is left is half a character: give it time */
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
      if (clients[i].fd >= 0 && fds[4 + i].revents) read_client(&clients[i]);
    if (fds[1].revents) accept_clients(listen_fd);
  }
  unlink("shim.sock");
  unlink("shim.pid");
  return 0;
}
