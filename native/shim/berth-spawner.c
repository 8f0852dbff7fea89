/*
 * berth-spawner: starts berth-shim processes for the daemon.
 *
 *   berth-spawner SHIM NSEXEC     (started once per daemon by src/shim/spawner.ts)
 *
 * Why it exists: Node's child_process.spawn forks the whole daemon (its page tables are tens of
 * MB) and blocks the event loop until the child has exec'd: ~3 ms of every container start on
 * a 2-CPU VM. This process is tiny, so its fork is cheap, and the daemon only writes a request
 * and goes on with the container's cgroups and plan while the shim starts.
 *
 * It also makes one sealed in-memory copy of berth-nsexec when it starts, and every shim gets
 * it as fd 4 (BERTH_NSEXEC_FD) and executes it: berth-nsexec then finds itself sealed and skips
 * making a copy of its own (CVE-2019-5736, see nsexec.c), one exec less per container. Nobody
 * can write to a sealed memfd, so one copy shared by all containers is as safe as one each.
 *
 * Requests on stdin, in the plan wire format (native/runtime/plan.h):
 *   spawn DIR KEY=VALUE...   fork; the child starts a session of its own and executes
 *                            SHIM DIR with exactly this environment plus BERTH_NSEXEC,
 *                            BERTH_NSEXEC_FD=4 and BERTH_SHIM_NOTIFY_FD=3; its fds 0-2 are
 *                            /dev/null and fd 3 is our stdout, where the shim reports
 *                            "listening PID" or "failed PID MESSAGE" (berth-shim.c)
 *   netns                    fork; the child makes a network namespace of its own, says
 *                            "netns-ready PID" (or "netns-failed PID MESSAGE") and waits to be
 *                            killed: the daemon opens /proc/PID/ns/net first, and gives that
 *                            namespace, made ahead of time, to a container (Runtime's netns
 *                            pool): a new network namespace is most of the cost of clone()
 * Lines on stdout (each shorter than PIPE_BUF, so no line of ours or of a shim's is split):
 *   pid N                    the answer to a spawn or netns, in request order; "pid 0 MESSAGE"
 *                            if the fork failed
 *   exit N STATUS            a child we started has exited (STATUS: its code, or 128 + signal)
 * Every shim is reaped here as soon as it exits: the VM's init reaps orphans only every few
 * seconds, and meanwhile a zombie shim would look alive to kill(pid, 0).
 *
 * At the end of stdin (the daemon exited or was killed) we exit and leave the shims running:
 * they outlive us as they outlive the daemon, and init (or a sub-reaper) inherits them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 64
#define MAX_REQUEST (1u << 20)

static const char *shim_path, *nsexec_path;
static int nsexec_fd = -1; /* the sealed copy, or -1: shims then execute NSEXEC by path */

/* One line on stdout, in a single write (lines of shims go to the same pipe). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  if (write(1, line, (size_t)n) < 0) _exit(0); /* the daemon is gone */
}

/* A sealed memfd holding NSEXEC, kept on a high fd; -1 if that fails (shims fall back to the path). */
static int sealed_copy(const char *path) {
  int self = open(path, O_RDONLY | O_CLOEXEC);
  int copy = memfd_create("berth-nsexec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  struct stat st;
  int ok = self >= 0 && copy >= 0 && fstat(self, &st) == 0;
  for (off_t off = 0; ok && off < st.st_size;) ok = sendfile(copy, self, &off, (size_t)(st.st_size - off)) > 0;
  ok = ok && fcntl(copy, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0;
  if (self >= 0) close(self);
  int high = ok ? fcntl(copy, F_DUPFD_CLOEXEC, 10) : -1;
  if (copy >= 0) close(copy);
  return high;
}

/* bin/berthd raised the daemon's soft open-files limit to its hard one and left the limit it was
   started with in BERTH_ORIGINAL_NOFILE: shims, and so containers and execs, get that one back,
   as Go (1.21 and later) gives the children of dockerd. The spawner needs few descriptors itself. */
static void restore_original_nofile(void) {
  const char *original = getenv("BERTH_ORIGINAL_NOFILE");
  if (!original || !*original) return;
  char *end;
  errno = 0;
  unsigned long long soft = strtoull(original, &end, 10);
  struct rlimit limit;
  if (errno || *end || getrlimit(RLIMIT_NOFILE, &limit) < 0 || soft > limit.rlim_max) {
    fprintf(stderr, "berth-spawner: BERTH_ORIGINAL_NOFILE=%s ignored\n", original);
    return;
  }
  limit.rlim_cur = (rlim_t)soft;
  if (setrlimit(RLIMIT_NOFILE, &limit) < 0) fprintf(stderr, "berth-spawner: setrlimit(RLIMIT_NOFILE, %llu): %s\n", soft, strerror(errno));
}

/* The child of a spawn: becomes the shim. Nothing here returns. */
static void exec_shim(char **args, int argc, const sigset_t *mask) {
  sigprocmask(SIG_SETMASK, mask, NULL);
  setsid(); /* out of the daemon's session and process group: its signals are not ours */
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  /* fd 3: our stdout, for the shim's "listening" line; fd 4: the sealed berth-nsexec. */
  if (null < 0 || dup2(1, 3) < 0 || (nsexec_fd >= 0 && dup2(nsexec_fd, 4) < 0) || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) _exit(127);
  char *env[MAX_ARGS + 4];
  int n = 0;
  char nsexec_env[4096];
  snprintf(nsexec_env, sizeof nsexec_env, "BERTH_NSEXEC=%s", nsexec_path);
  env[n++] = nsexec_env;
  env[n++] = "BERTH_SHIM_NOTIFY_FD=3";
  if (nsexec_fd >= 0) env[n++] = "BERTH_NSEXEC_FD=4";
  for (int i = 1; i < argc; i++) env[n++] = args[i];
  env[n] = NULL;
  char *argv[] = {"berth-shim", args[0], NULL};
  execve(shim_path, argv, env);
  dprintf(3, "failed %d exec %s: %s\n", getpid(), shim_path, strerror(errno));
  _exit(127);
}

/* The child of a netns request: a network namespace of its own, held until we are killed (by
   the daemon, once it holds the namespace open; or with the spawner). Nothing here returns. */
static pid_t spawner_pid;

static void hold_netns(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* The spawner may have died before that took effect (then nobody kills us); and the daemon
     opens the namespace within milliseconds: a minute is a generous bound. */
  if (getppid() != spawner_pid) _exit(0);
  alarm(60);
  if (unshare(CLONE_NEWNET) < 0) {
    dprintf(1, "netns-failed %d unshare: %s\n", getpid(), strerror(errno));
    _exit(1);
  }
  dprintf(1, "netns-ready %d\n", getpid());
  for (int fd = 0; fd < 1024; fd++) close(fd);
  for (;;) pause();
}

/* Parses one request at the start of buf: "spawn <argc>\n" then argc times "<len>\n<bytes>\n",
   or "netns 0\n". Returns its length, 0 if incomplete (nothing is changed then: it is parsed
   again when more has come), -1 if malformed. A complete request's arguments are NUL-terminated
   in place; *argc is 0 for netns. */
static long parse_request(char *buf, size_t len, char **args, int *argc) {
  char *end = memchr(buf, '\n', len);
  if (!end) return len > 64 ? -1 : 0;
  int n;
  if (strncmp(buf, "netns 0\n", 8) == 0) {
    *argc = 0;
    return 8;
  }
  if (sscanf(buf, "spawn %d\n", &n) != 1 || n < 1 || n > MAX_ARGS) return -1;
  size_t pos = (size_t)(end - buf) + 1, lens[MAX_ARGS];
  for (int i = 0; i < n; i++) {
    char *nl = memchr(buf + pos, '\n', len - pos);
    if (!nl) return len - pos > 16 ? -1 : 0;
    lens[i] = strtoul(buf + pos, NULL, 10);
    pos = (size_t)(nl - buf) + 1;
    if (lens[i] > MAX_REQUEST) return -1;
    if (len - pos < lens[i] + 1) return 0;
    if (buf[pos + lens[i]] != '\n' || memchr(buf + pos, '\0', lens[i])) return -1;
    args[i] = buf + pos;
    pos += lens[i] + 1;
  }
  for (int i = 0; i < n; i++) args[i][lens[i]] = '\0';
  *argc = n;
  return (long)pos;
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    say("exit %d %d", pid, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: berth-spawner SHIM NSEXEC (started by berthd)\n");
    return 2;
  }
  shim_path = argv[1];
  nsexec_path = argv[2];
  /* If the daemon dies, so do we (stdin's end tells us too; this covers a stuck pipe). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  nsexec_fd = sealed_copy(nsexec_path);
  spawner_pid = getpid();
  restore_original_nofile();

  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return 1;

  static char buf[MAX_REQUEST + 4096];
  size_t len = 0;
  for (;;) {
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return 1;
    if (fds[1].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {}
      reap();
    }
    if (!fds[0].revents) continue;
    ssize_t n = read(0, buf + len, sizeof buf - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0; /* the daemon is gone: the shims stay */
    len += (size_t)n;
    for (;;) {
      char *args[MAX_ARGS];
      int nargs = 0;
      long used = parse_request(buf, len, args, &nargs);
      if (used < 0) {
        say("pid 0 malformed request");
        return 1;
      }
      if (used == 0) break;
      pid_t pid = fork();
      if (pid == 0 && nargs == 0) hold_netns();
      if (pid == 0) exec_shim(args, nargs, &old);
      if (pid < 0) say("pid 0 fork: %s", strerror(errno));
      else say("pid %d", pid);
      memmove(buf, buf + used, len - (size_t)used);
      len -= (size_t)used;
    }
  }
}
