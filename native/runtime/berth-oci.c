/*
 * berth-oci: the runtime's command line, as a small client of the berth-oci server
 * (src/runtime/cli/server.ts), which runs the command in a Node process started once instead
 * of once per command. Node's start alone (~40 ms here) is as long as runc's whole `run`.
 *
 * This program only does what must happen in the caller's process tree: it forks
 * berth-nsexec when the server says so (so the container descends from whoever ran
 * berth-oci, as with runc), keeps the caller's stdio and preserved fds for it, forwards
 * signals to it and reports its exit. The server does the rest and sends the output.
 *
 * Without a server (none yet, not root, BERTH_OCI_SERVER=0, or it answers "fallback"), it
 * runs the command in Node itself, as `node dist/boot.cjs dist/berth-oci.cjs ARGS`; with none
 * yet, it first starts one in the background for the commands to come. The protocol is
 * described in server.ts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SERVE_FLAG "--berth-oci-serve" /* cli.ts, SERVE_FLAG */
#define DEFAULT_DIR "/run/berth-oci-server"

static char boot_path[PATH_MAX + 32], bundle_path[PATH_MAX + 32]; /* dist/boot.cjs, dist/berth-oci.cjs */
static char **args;             /* our argv */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("berth-oci: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* Runs the command in Node, in this process (what bin/berth-oci did before this client). */
static void __attribute__((noreturn)) run_in_node(void) {
  int argc = 0;
  while (args[argc]) argc++;
  char **node_argv = calloc((size_t)argc + 3, sizeof *node_argv);
  if (!node_argv) die("out of memory");
  node_argv[0] = "node";
  node_argv[1] = boot_path;
  node_argv[2] = bundle_path;
  for (int i = 1; i < argc; i++) node_argv[i + 2] = args[i];
  /* The runtime makes no TLS connections: certificates would cost every start ~90 ms. */
  unsetenv("NODE_EXTRA_CA_CERTS");
  execvp("node", node_argv);
  die("cannot run node: %s", strerror(errno));
}

/* The package root from our own path: <root>/native/build/berth-oci. */
static void find_bundle(void) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) die("cannot find this program's path: %s", strerror(errno));
  self[n] = '\0';
  for (int up = 0; up < 3; up++) {
    char *slash = strrchr(self, '/');
    if (!slash) die("unexpected path %s", self);
    *slash = '\0';
  }
  snprintf(boot_path, sizeof boot_path, "%s/dist/boot.cjs", self);
  snprintf(bundle_path, sizeof bundle_path, "%s/dist/berth-oci.cjs", self);
}

static int ns_ino(const char *name, unsigned long long *ino) {
  char path[64];
  struct stat st;
  snprintf(path, sizeof path, "/proc/self/ns/%s", name);
  if (stat(path, &st) < 0) return -1;
  *ino = (unsigned long long)st.st_ino;
  return 0;
}

/* The same string as server.ts's ownIdentity(): the server serves only its own namespaces and root. */
static int identity(char *buf, size_t len) {
  unsigned long long mnt, pid, user, cgroup, net;
  struct stat root;
  if (ns_ino("mnt", &mnt) || ns_ino("pid", &pid) || ns_ino("user", &user) || ns_ino("cgroup", &cgroup) || ns_ino("net", &net) || stat("/", &root))
    return -1;
  snprintf(buf, len, "mnt:%llu pid:%llu user:%llu cgroup:%llu net:%llu root:%llu:%llu", mnt, pid, user, cgroup, net,
           (unsigned long long)root.st_dev, (unsigned long long)root.st_ino);
  return 0;
}

/*
 * The server's socket: one per build of the bundle (its inode and mtime) and per mount and pid
 * namespace, in a directory that only root may enter. Returns -1 when no server is to be used.
 */
static int socket_path(char *buf, size_t len, char *dir, size_t dirlen) {
  const char *v = getenv("BERTH_OCI_SERVER");
  if ((v && !strcmp(v, "0")) || geteuid() != 0) return -1;
  const char *d = getenv("BERTH_OCI_SERVER_DIR");
  snprintf(dir, dirlen, "%s", d && *d ? d : DEFAULT_DIR);
  struct stat st;
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) return -1;
  if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) return -1;
  unsigned long long mnt, pid;
  if (stat(bundle_path, &st) < 0 || ns_ino("mnt", &mnt) || ns_ino("pid", &pid)) return -1;
  int n = snprintf(buf, len, "%s/%llx.%lx-%llx-m%llx-p%llx.sock", dir, (unsigned long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                   (unsigned long long)st.st_ino, mnt, pid);
  return n > 0 && (size_t)n < len && (size_t)n < sizeof(((struct sockaddr_un *)0)->sun_path) ? 0 : -1;
}

static int connect_to(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int send_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static void write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* the reader went away: the rest is lost, as it would be for Node */
    p += n;
    len -= (size_t)n;
  }
}

/* Moves this process to the root cgroup of every hierarchy, best effort: a server started by a
   containerd shim or conmon must not keep their cgroups (or a container's) from being removed. */
static void move_to_root_cgroups(void) {
  DIR *d = opendir("/sys/fs/cgroup");
  if (!d) return;
  struct dirent *e;
  char path[PATH_MAX];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/sys/fs/cgroup/%s/cgroup.procs", e->d_name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      (void)!write(fd, "0", 1);
      close(fd);
    }
  }
  closedir(d);
  int fd = open("/sys/fs/cgroup/cgroup.procs", O_WRONLY | O_CLOEXEC); /* a pure cgroup v2 host */
  if (fd >= 0) {
    (void)!write(fd, "0", 1);
    close(fd);
  }
}

/* Starts a server on sock in the background: a new session, cwd /, the root cgroups, no fds of ours. */
static void start_server(const char *sock) {
  pid_t pid = fork();
  if (pid < 0) return;
  if (pid > 0) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return;
  }
  setsid();
  if (fork() != 0) _exit(0);
  /* Not the caller's directory: a server living there would keep its mount busy. */
  if (chdir("/") < 0) _exit(127);
  move_to_root_cgroups();
  int null = open("/dev/null", O_RDWR);
  char logpath[PATH_MAX + 8];
  snprintf(logpath, sizeof logpath, "%s.log", sock);
  struct stat st;
  int trunc = stat(logpath, &st) == 0 && st.st_size > (1 << 20) ? O_TRUNC : 0;
  int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | trunc, 0600);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
  }
  dup2(log >= 0 ? log : null, 2);
  syscall(SYS_close_range, 3, ~0U, 0);
  unsetenv("NODE_EXTRA_CA_CERTS");
  execlp("node", "node", "--max-semi-space-size=2", boot_path, bundle_path, SERVE_FLAG, sock, (char *)NULL);
  _exit(127);
}

/* Buffered reading of the server's messages. */
static char inbuf[65536];
static size_t inlen;

/* Reads more from fd into inbuf; 0 at EOF. */
static int fill(int fd) {
  if (inlen == sizeof inbuf) die("message from the berth-oci server too long");
  ssize_t n;
  do n = read(fd, inbuf + inlen, sizeof inbuf - inlen);
  while (n < 0 && errno == EINTR);
  if (n < 0) return 0;
  inlen += (size_t)n;
  return n > 0;
}

static void consume(size_t n) {
  memmove(inbuf, inbuf + n, inlen - n);
  inlen -= n;
}

static pid_t child = -1;   /* the berth-nsexec we started, while it runs */
static sigset_t old_mask;  /* restored in that child */

/* "spawn <token> <planFd> <syncFd> <path>": start berth-nsexec with the plan and sync sockets. */
static void spawn_stage0(int conn, const char *sock, char *line) {
  char token[80], path[PATH_MAX];
  int plan_fd_no, sync_fd_no;
  char msg[PATH_MAX + 64];
  if (sscanf(line, "spawn %79s %d %d %4095[^\n]", token, &plan_fd_no, &sync_fd_no, path) != 4 || plan_fd_no < 3 || sync_fd_no != plan_fd_no + 1) {
    send_all(conn, "spawnerror bad spawn message\n", 29);
    return;
  }
  int plan = connect_to(sock), sync = connect_to(sock);
  int n1 = snprintf(msg, sizeof msg, "plan %s\n", token);
  if (plan < 0 || sync < 0 || send_all(plan, msg, (size_t)n1) < 0) goto fail;
  int n2 = snprintf(msg, sizeof msg, "sync %s\n", token);
  if (send_all(sync, msg, (size_t)n2) < 0) goto fail;
  pid_t pid = fork();
  if (pid < 0) goto fail;
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    /* Above every target first, so that neither dup2 closes the other socket. */
    int p = fcntl(plan, F_DUPFD_CLOEXEC, sync_fd_no + 1), s = fcntl(sync, F_DUPFD_CLOEXEC, sync_fd_no + 1);
    if (p < 0 || s < 0 || dup2(p, plan_fd_no) < 0 || dup2(s, sync_fd_no) < 0) _exit(127);
    /* Only stdio, the preserved fds and these two go to berth-nsexec, as from Node's spawn. */
    syscall(SYS_close_range, sync_fd_no + 1, ~0U, 0);
    char env_plan[32], env_sync[32];
    snprintf(env_plan, sizeof env_plan, "BERTH_PLAN_FD=%d", plan_fd_no);
    snprintf(env_sync, sizeof env_sync, "BERTH_SYNC_FD=%d", sync_fd_no);
    char *envp[] = {env_plan, env_sync, getenv("BERTH_NSEXEC_TRACE") ? "BERTH_NSEXEC_TRACE=1" : NULL, NULL};
    char *argv[] = {path, NULL};
    execve(path, argv, envp);
    _exit(127);
  }
  close(plan);
  close(sync);
  child = pid;
  int n = snprintf(msg, sizeof msg, "pid %d\n", pid);
  send_all(conn, msg, (size_t)n);
  return;
fail:
  n1 = snprintf(msg, sizeof msg, "spawnerror %s\n", strerror(errno));
  if (plan >= 0) close(plan);
  if (sync >= 0) close(sync);
  send_all(conn, msg, (size_t)n1);
}

/* Reaps berth-nsexec and tells the server how it ended. */
static void reap(int conn) {
  int status;
  if (child <= 0 || waitpid(child, &status, WNOHANG) != child) return;
  char msg[64];
  int n = snprintf(msg, sizeof msg, "status %d %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 0, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  send_all(conn, msg, (size_t)n);
  child = -1;
}

/* A signal to us goes to berth-nsexec (which passes it to the container), as runc forwards it;
   with no berth-nsexec running, it does to us what it would have done. */
static void on_signal(int signo) {
  if (child > 0) {
    kill(child, signo);
    return;
  }
  if (signo == SIGWINCH) return;
  signal(signo, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  sigprocmask(SIG_UNBLOCK, &one, NULL);
  raise(signo);
}

/* The server is gone mid-command: wait for a foreground berth-nsexec still running, else fail. */
static void __attribute__((noreturn)) server_lost(void) {
  if (child > 0) {
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  die("lost the berth-oci server during the command (see its log in the server directory)");
}

int main(int argc, char **argv) {
  (void)argc;
  args = argv;
  find_bundle();
  /* Closed stdio would be taken by our sockets (and so, for berth-nsexec, by nothing). */
  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0) open("/dev/null", O_RDWR);

  char dir[PATH_MAX], sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
  if (socket_path(sock, sizeof sock, dir, sizeof dir) < 0) run_in_node();
  int conn = connect_to(sock);
  if (conn < 0) {
    start_server(sock);
    run_in_node();
  }

  /* The request: "request <n>\n" then cwd, identity and argv, each ending with a NUL. */
  char cwd[PATH_MAX], id[256];
  if (!getcwd(cwd, sizeof cwd) || identity(id, sizeof id) < 0) run_in_node();
  size_t len = strlen(cwd) + 1 + strlen(id) + 1;
  for (int i = 1; argv[i]; i++) len += strlen(argv[i]) + 1;
  char *req = malloc(len + 32);
  if (!req) die("out of memory");
  size_t off = (size_t)sprintf(req, "request %zu\n", len);
  size_t start = off;
  off += (size_t)sprintf(req + off, "%s", cwd) + 1;
  off += (size_t)sprintf(req + off, "%s", id) + 1;
  for (int i = 1; argv[i]; i++) off += (size_t)sprintf(req + off, "%s", argv[i]) + 1;
  if (off - start != len || send_all(conn, req, off) < 0) run_in_node();
  free(req);

  /* Signals come through a signalfd, so that one loop waits for them and for the server. */
  sigset_t mask;
  sigemptyset(&mask);
  int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaddset(&mask, forwarded[i]);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, &old_mask);
  int sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sigfd < 0) die("signalfd: %s", strerror(errno));

  int accepted = 0;
  for (;;) {
    /* Whole messages first. */
    char *nl;
    while ((nl = memchr(inbuf, '\n', inlen))) {
      size_t line_len = (size_t)(nl - inbuf);
      char line[PATH_MAX + 256];
      if (line_len >= sizeof line) die("bad message from the berth-oci server");
      memcpy(line, inbuf, line_len);
      line[line_len] = '\0';
      size_t data_len;
      if (sscanf(line, "out %zu", &data_len) == 1 || sscanf(line, "err %zu", &data_len) == 1) {
        /* Output for our stdout or stderr, passed on as it comes. */
        int out = line[0] == 'o' ? 1 : 2;
        consume(line_len + 1);
        while (data_len > 0) {
          if (inlen == 0 && !fill(conn)) server_lost();
          size_t n = inlen < data_len ? inlen : data_len;
          write_all(out, inbuf, n);
          consume(n);
          data_len -= n;
        }
        continue;
      }
      consume(line_len + 1);
      if (!strcmp(line, "ok")) {
        accepted = 1;
      } else if (!strncmp(line, "fallback", 8)) {
        close(conn);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        run_in_node();
      } else if (!strncmp(line, "spawn ", 6)) {
        spawn_stage0(conn, sock, line);
      } else if (!strncmp(line, "exit ", 5)) {
        exit(atoi(line + 5));
      }
    }
    struct pollfd fds[2] = {{.fd = conn, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll: %s", strerror(errno));
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) reap(conn);
        else on_signal((int)si.ssi_signo);
        break;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (!fill(conn)) {
        if (!accepted) { /* it never took the command: nothing was done */
          sigprocmask(SIG_SETMASK, &old_mask, NULL);
          run_in_node();
        }
        server_lost();
      }
    }
  }
}
