/* Shared by the native command-line clients; see served.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "served.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *msg) __attribute__((noreturn));
static void die(const char *msg) {
  fprintf(stderr, "%s: %s\n", msg, strerror(errno));
  exit(1);
}

void served_init(struct served *s, const char *bundle_name, char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) die("cannot find this program's path");
  self[n] = '\0';
  for (int up = 0; up < 3; up++) { /* <root>/native/build/<program> */
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
  }
  snprintf(s->boot, sizeof s->boot, "%s/dist/boot.cjs", self);
  snprintf(s->bundle, sizeof s->bundle, "%s/dist/%.64s", self, bundle_name);
  s->sock[0] = '\0';
  s->argv = argv;
  s->accepted = 0;
  sigprocmask(SIG_BLOCK, NULL, &s->caller_mask);
  /* Closed stdio would be taken by our sockets (and so, for a child, by nothing). */
  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0) open("/dev/null", O_RDWR);
}

void served_run_in_node(const struct served *s) {
  int argc = 0;
  while (s->argv[argc]) argc++;
  char **node_argv = calloc((size_t)argc + 3, sizeof *node_argv);
  if (!node_argv) die("out of memory");
  node_argv[0] = "node";
  node_argv[1] = (char *)s->boot;
  node_argv[2] = (char *)s->bundle;
  for (int i = 1; i < argc; i++) node_argv[i + 2] = s->argv[i];
  /* No TLS connections are made: certificates would cost every Node start ~90 ms. */
  unsetenv("NODE_EXTRA_CA_CERTS");
  sigprocmask(SIG_SETMASK, &s->caller_mask, NULL);
  execvp("node", node_argv);
  die("cannot run node");
}

static int ns_ino(const char *name, unsigned long long *ino) {
  char path[64];
  struct stat st;
  snprintf(path, sizeof path, "/proc/self/ns/%s", name);
  if (stat(path, &st) < 0) return -1;
  *ino = (unsigned long long)st.st_ino;
  return 0;
}

int served_socket_path(struct served *s, const char *dir) {
  struct stat st;
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) return -1;
  if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) return -1;
  unsigned long long mnt, pid;
  if (stat(s->bundle, &st) < 0 || ns_ino("mnt", &mnt) || ns_ino("pid", &pid)) return -1;
  int n = snprintf(s->sock, sizeof s->sock, "%s/%llx.%lx-%llx-m%llx-p%llx.sock", dir, (unsigned long long)st.st_mtim.tv_sec,
                   st.st_mtim.tv_nsec, (unsigned long long)st.st_ino, mnt, pid);
  return n > 0 && (size_t)n < sizeof s->sock ? 0 : -1;
}

int served_connect(const char *path) {
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

/* Moves this process to the root cgroup of every hierarchy, best effort: a runtime server
   started by a containerd shim or conmon must not keep their cgroups from being removed. */
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

int served_open(struct served *s, const char *dir, const char *serve_flag, int root_cgroups) {
  if (!dir || served_socket_path(s, dir) < 0) served_run_in_node(s);
  int conn = served_connect(s->sock);
  if (conn < 0) {
    served_start_server(s, serve_flag, root_cgroups);
    served_run_in_node(s);
  }
  return conn;
}

void served_start_server(const struct served *s, const char *serve_flag, int root_cgroups) {
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
  if (root_cgroups) move_to_root_cgroups();
  int null = open("/dev/null", O_RDWR);
  char logpath[sizeof s->sock + 8];
  snprintf(logpath, sizeof logpath, "%s.log", s->sock);
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
  execlp("node", "node", "--max-semi-space-size=2", s->boot, s->bundle, serve_flag, s->sock, (char *)NULL);
  _exit(127);
}

int served_send_all(int fd, const void *buf, size_t len) {
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

int served_send_request(int conn, const char *const *fields, int nfields, char **argv) {
  size_t len = 0;
  for (int i = 0; i < nfields; i++) len += strlen(fields[i]) + 1;
  for (int i = 1; argv[i]; i++) len += strlen(argv[i]) + 1;
  char *req = malloc(len + 32);
  if (!req) return -1;
  size_t off = (size_t)sprintf(req, "request %zu\n", len);
  for (int i = 0; i < nfields; i++) {
    size_t n = strlen(fields[i]) + 1;
    memcpy(req + off, fields[i], n);
    off += n;
  }
  for (int i = 1; argv[i]; i++) {
    size_t n = strlen(argv[i]) + 1;
    memcpy(req + off, argv[i], n);
    off += n;
  }
  int r = served_send_all(conn, req, off);
  free(req);
  return r;
}

static int cmp_gid(const void *a, const void *b) {
  gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;
  return x < y ? -1 : x > y;
}

int served_identity(char *buf, size_t len, int with_user) {
  unsigned long long mnt, pid, user, cgroup, net;
  struct stat root;
  if (ns_ino("mnt", &mnt) || ns_ino("pid", &pid) || ns_ino("user", &user) || ns_ino("cgroup", &cgroup) || ns_ino("net", &net) || stat("/", &root))
    return -1;
  int n = snprintf(buf, len, "mnt:%llu pid:%llu user:%llu cgroup:%llu net:%llu root:%llu:%llu", mnt, pid, user, cgroup, net,
                   (unsigned long long)root.st_dev, (unsigned long long)root.st_ino);
  if (n < 0 || (size_t)n >= len) return -1;
  if (!with_user) return 0;
  /* As Node's process.getgroups(): the supplementary groups and the effective gid, here sorted. */
  gid_t groups[NGROUPS_MAX + 1];
  int count = getgroups(NGROUPS_MAX, groups);
  if (count < 0) return -1;
  int has_egid = 0;
  for (int i = 0; i < count; i++) has_egid |= groups[i] == getegid();
  if (!has_egid) groups[count++] = getegid();
  qsort(groups, (size_t)count, sizeof *groups, cmp_gid);
  n += snprintf(buf + n, len - (size_t)n, " uid:%u gid:%u groups:", (unsigned)geteuid(), (unsigned)getegid());
  for (int i = 0; i < count && (size_t)n < len; i++) {
    if (i > 0 && groups[i] == groups[i - 1]) continue;
    n += snprintf(buf + n, len - (size_t)n, "%s%u", buf[n - 1] == ':' ? "" : ",", (unsigned)groups[i]);
  }
  return (size_t)n < len ? 0 : -1;
}

/* Buffered reading of the server's messages. */
static char inbuf[65536];
static size_t inlen;

static void consume(size_t n) {
  memmove(inbuf, inbuf + n, inlen - n);
  inlen -= n;
}

int served_fill(int conn) {
  if (inlen == sizeof inbuf) return 0; /* a line longer than the buffer: not from our server */
  ssize_t n;
  do n = read(conn, inbuf + inlen, sizeof inbuf - inlen);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return 0;
  inlen += (size_t)n;
  return 1;
}

int served_next_line(char *line, size_t len) {
  char *nl = memchr(inbuf, '\n', inlen);
  if (!nl) return 0;
  size_t line_len = (size_t)(nl - inbuf);
  if (line_len >= len) line_len = len - 1;
  memcpy(line, inbuf, line_len);
  line[line_len] = '\0';
  consume((size_t)(nl - inbuf) + 1);
  return 1;
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

int served_pass_on(int conn, int fd, size_t n) {
  while (n > 0) {
    if (inlen == 0 && !served_fill(conn)) return 0;
    size_t k = inlen < n ? inlen : n;
    write_all(fd, inbuf, k);
    consume(k);
    n -= k;
  }
  return 1;
}

int served_message(struct served *s, int conn, const char *line) {
  size_t n;
  if (sscanf(line, "out %zu", &n) == 1 || sscanf(line, "err %zu", &n) == 1) return served_pass_on(conn, line[0] == 'o' ? 1 : 2, n) ? 1 : -1;
  if (!strcmp(line, "ok")) {
    s->accepted = 1;
    return 1;
  }
  if (!strncmp(line, "fallback", 8)) {
    close(conn);
    served_run_in_node(s);
  }
  if (!strncmp(line, "exit ", 5)) exit(atoi(line + 5));
  return 0;
}

void served_lost(struct served *s, const char *program) {
  if (!s->accepted) served_run_in_node(s); /* it never took the command: nothing was done */
  fprintf(stderr, "%s: lost its server during the command (see the log beside its socket)\n", program);
  exit(1);
}
