/*
 * Process ops of the container stage: hooks, console, identity, capabilities, limits,
 * seccomp, and finally waiting for `start` and execve().
 */
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

char *state_json;
size_t state_json_len;

/*
 * The state JSON that hooks read on stdin: "go <len>\n<json>" from the runtime, which sends it
 * as soon as it knows our pid. Read only when a hook or a sync needs it, so that a container
 * without hooks never waits for the runtime's round trip.
 */
static void ensure_state(void) {
  if (state_json) return;
  char line[64];
  sync_read_line(line, sizeof line);
  if (strncmp(line, "go ", 3) != 0) _exit(1);
  state_json_len = (size_t)strtoul(line + 3, NULL, 10);
  state_json = malloc(state_json_len + 1);
  sync_read_exact(state_json, state_json_len);
  state_json[state_json_len] = '\0';
}

static int console_socket = -1;
static int exec_fifo = -1;
static char *resolved_exec;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* hook PATH TIMEOUT_SECONDS ARGV ENV: run with the state JSON on stdin; must exit 0. */
static void do_hook(const struct plan_op *op) {
  need_args(op, 4);
  ensure_state();
  char **argv = plan_split_list(op->argv[2], op->argl[2]);
  char **envp = plan_split_list(op->argv[3], op->argl[3]);
  int64_t timeout = arg_i64(op, 1);
  int in[2];
  if (pipe2(in, O_CLOEXEC) < 0) fail_errno("pipe for hook");
  pid_t pid = fork();
  if (pid < 0) fail_errno("fork hook %s", op->argv[0]);
  if (pid == 0) {
    dup2(in[0], 0);
    execve(op->argv[0], argv[0] ? argv : (char *[]){op->argv[0], NULL}, envp);
    dprintf(2, "hook %s: %s\n", op->argv[0], strerror(errno));
    _exit(127);
  }
  close(in[0]);
  signal(SIGPIPE, SIG_IGN);
  if (write(in[1], state_json, state_json_len) < 0 && errno != EPIPE) fail_errno("write state to hook");
  close(in[1]);
  int64_t deadline = timeout > 0 ? now_ms() + timeout * 1000 : 0;
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, timeout > 0 ? WNOHANG : 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail_errno("wait for hook %s", op->argv[0]);
    if (r == pid) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
      if (WIFEXITED(status)) fail("hook %s exited with status %d", op->argv[0], WEXITSTATUS(status));
      fail("hook %s killed by signal %d", op->argv[0], WTERMSIG(status));
    }
    if (deadline && now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      fail("hook %s timed out after %lld s", op->argv[0], (long long)timeout);
    }
    usleep(1000);
  }
}

/* sync NAME: let the runtime do its part (e.g. createRuntime hooks), wait for "ok". */
static void do_sync(const struct plan_op *op) {
  need_args(op, 1);
  ensure_state();
  sync_send("sync %s\n", op->argv[0]);
  char line[256];
  sync_read_line(line, sizeof line);
  if (strcmp(line, "ok") != 0) _exit(1); /* the runtime reported the error itself */
}

static void do_console_connect(const struct plan_op *op) {
  need_args(op, 1);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (op->argl[0] >= sizeof addr.sun_path) fail("console socket path too long: %s", op->argv[0]);
  strcpy(addr.sun_path, op->argv[0]);
  console_socket = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (console_socket < 0 || connect(console_socket, (struct sockaddr *)&addr, sizeof addr) < 0)
    fail_errno("connect to console socket %s", op->argv[0]);
}

/* console_setup ROWS COLS: a pty from the container's devpts; master to the socket, slave as stdio. */
static void do_console_setup(const struct plan_op *op) {
  need_args(op, 2);
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) fail_errno("open /dev/ptmx");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) fail_errno("unlock pty");
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0) fail_errno("open pty peer");
  unsigned rows = (unsigned)arg_u64(op, 0), cols = (unsigned)arg_u64(op, 1);
  if (rows && cols) {
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    ioctl(slave, TIOCSWINSZ, &ws);
  }
  unsigned ptyno = 0;
  ioctl(master, TIOCGPTN, &ptyno);
  char name[64];
  int namelen = snprintf(name, sizeof name, "/dev/pts/%u", ptyno);
  /* Send the master with its name, as runc does (go-runc's console receiver reads both). */
  char cbuf[CMSG_SPACE(sizeof(int))] = {0};
  struct iovec iov = {.iov_base = name, .iov_len = (size_t)namelen};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &master, sizeof(int));
  if (console_socket < 0) fail("console_setup without console_connect");
  if (sendmsg(console_socket, &msg, 0) < 0) fail_errno("send pty master to console socket");
  close(master);
  close(console_socket);
  console_socket = -1;
  if (ioctl(slave, TIOCSCTTY, 0) < 0) fail_errno("make the pty our controlling terminal");
  for (int fd = 0; fd < 3; fd++)
    if (dup2(slave, fd) < 0) fail_errno("dup pty to fd %d", fd);
  if (slave > 2) close(slave);
}

static int cap_last;

static void set_capabilities(const struct plan_op *op) {
  /* caps LAST BOUNDING EFFECTIVE PERMITTED INHERITABLE AMBIENT (64-bit masks) */
  need_args(op, 6);
  cap_last = (int)arg_u64(op, 0);
  uint64_t bounding = arg_u64(op, 1), eff = arg_u64(op, 2), perm = arg_u64(op, 3);
  uint64_t inh = arg_u64(op, 4), amb = arg_u64(op, 5);
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct cur[2];
  /* After setuid to a non-root user (with keepcaps) only the permitted set is left: raise it
   * to effective so that CAP_SETPCAP allows dropping from the bounding set. */
  if (syscall(SYS_capget, &hdr, cur) == 0) {
    cur[0].effective = cur[0].permitted;
    cur[1].effective = cur[1].permitted;
    syscall(SYS_capset, &hdr, cur);
  }
  for (int cap = 0; cap <= cap_last; cap++)
    if (!(bounding & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      fail_errno("drop capability %d from the bounding set", cap);
  struct __user_cap_data_struct data[2] = {
      {.effective = (uint32_t)eff, .permitted = (uint32_t)perm, .inheritable = (uint32_t)inh},
      {.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32), .inheritable = (uint32_t)(inh >> 32)},
  };
  if (syscall(SYS_capset, &hdr, data) < 0) fail_errno("capset");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    fail_errno("clear ambient capabilities");
  /* As runc: an ambient capability that is not also inheritable cannot be raised; not fatal. */
  for (int cap = 0; cap <= cap_last; cap++)
    if (amb & (1ULL << cap)) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
}

/* user UID GID GROUPS(comma-separated) SETGROUPS(0|1) */
static void set_user(const struct plan_op *op) {
  need_args(op, 4);
  uid_t uid = (uid_t)arg_u64(op, 0);
  gid_t gid = (gid_t)arg_u64(op, 1);
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) fail_errno("keep capabilities across setuid");
  if (arg_u64(op, 3)) {
    gid_t groups[256];
    size_t n = 0;
    char *list = strdup(op->argv[2]);
    for (char *tok = strtok(list, ","); tok && n < 256; tok = strtok(NULL, ","))
      groups[n++] = (gid_t)strtoul(tok, NULL, 10);
    free(list);
    if (setgroups(n, groups) < 0) fail_errno("setgroups");
  }
  if (setresgid(gid, gid, gid) < 0) fail_errno("setgid %u", gid);
  if (setresuid(uid, uid, uid) < 0) fail_errno("setuid %u", uid);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) fail_errno("reset keepcaps");
}

static void load_seccomp(const struct plan_op *op) {
  need_args(op, 2);
  if (op->argl[1] % sizeof(struct sock_filter) != 0) fail("seccomp filter has a partial instruction");
  struct sock_fprog prog = {
      .len = (unsigned short)(op->argl[1] / sizeof(struct sock_filter)),
      .filter = (struct sock_filter *)op->argv[1],
  };
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)arg_u64(op, 0), &prog) < 0)
    fail_errno("load seccomp filter");
}

/* resolve_exec NAME PATH: find the program now, so a typo fails `create`, not `start`. */
static void resolve_program(const struct plan_op *op) {
  need_args(op, 2);
  const char *name = op->argv[0];
  if (strchr(name, '/')) {
    /* runc's (Go's) wording, lower case: docker run maps "no such file or directory" to exit
       127 and "permission denied" to 126 by matching these words. */
    if (access(name, X_OK) < 0) {
      char reason[128];
      snprintf(reason, sizeof reason, "%s", strerror(errno));
      reason[0] = (char)tolower((unsigned char)reason[0]);
      if (errno == ENOENT) fail("exec: \"%s\": stat %s: %s", name, name, reason);
      fail("exec: \"%s\": %s", name, reason);
    }
    /* A directory passes access(X_OK), and execve() would refuse it only at start: refuse it
       now, in runc's words for it (docker run maps them to 126). */
    struct stat st;
    if (stat(name, &st) == 0 && S_ISDIR(st.st_mode)) fail("exec: \"%s\": permission denied", name);
    resolved_exec = strdup(name);
    return;
  }
  char *path = strdup(op->argv[1]);
  for (char *dir = strtok(path, ":"); dir; dir = strtok(NULL, ":")) {
    char candidate[4096];
    snprintf(candidate, sizeof candidate, "%s/%s", *dir ? dir : ".", name);
    struct stat st;
    if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0) {
      resolved_exec = strdup(candidate);
      free(path);
      return;
    }
  }
  fail("exec: \"%s\": executable file not found in $PATH", name);
}

/* home_from_passwd UID: HOME for an environment without one, as runc sets it: the user's home
   in the container's /etc/passwd (read now, after pivot_root and before the user changes), or
   "/" when the user has none. do_exec appends it. */
static char *home_env;
static void home_from_passwd(const struct plan_op *op) {
  need_args(op, 1);
  unsigned long uid = (unsigned long)arg_u64(op, 0);
  char home[4096] = "/";
  char line[8192];
  /* The image's file: only a regular one (a FIFO would block, /dev/zero never end), and only
     its first 4 MiB. */
  FILE *passwd = NULL;
  int fd = open("/etc/passwd", O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) passwd = fdopen(fd, "r");
  else if (fd >= 0) close(fd);
  size_t seen = 0;
  while (passwd && seen < (4u << 20) && fgets(line, sizeof line, passwd)) {
    seen += strlen(line) + 1;
    /* name:password:uid:gid:gecos:home:shell */
    char *field[7] = {0};
    int n = 0;
    for (char *rest = line, *f; n < 7 && (f = strsep(&rest, ":\n")); ) field[n++] = f;
    if (n < 6 || !*field[2]) continue;
    char *end;
    if (strtoul(field[2], &end, 10) != uid || *end) continue;
    snprintf(home, sizeof home, "%s", field[5]);
    break;
  }
  if (passwd) fclose(passwd);
  if (asprintf(&home_env, "HOME=%s", home) < 0) fail("out of memory");
}

/* wait_start: block until `berth-oci start` opens the fifo for reading. */
static void wait_for_start(void) {
  if (exec_fifo < 0) return;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", exec_fifo);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail_errno("open exec fifo");
  if (write(fd, "0", 1) != 1) fail_errno("write exec fifo");
  /* fd stays open until execve closes it (O_CLOEXEC): `start` reads EOF once the user's
     program runs, so poststart hooks run after it, as the spec requires. */
  close(exec_fifo);
  exec_fifo = -1;
}

/* exec ARGV ENV PRESERVE_FDS */
static void do_exec(const struct plan_op *op) {
  need_args(op, 3);
  char **argv = plan_split_list(op->argv[0], op->argl[0]);
  char **envp = plan_split_list(op->argv[1], op->argl[1]);
  if (home_env) {
    size_t n = 0;
    while (envp[n]) n++;
    envp = realloc(envp, (n + 2) * sizeof(char *));
    if (!envp) fail("out of memory");
    envp[n] = home_env;
    envp[n + 1] = NULL;
  }
  unsigned preserve = (unsigned)arg_u64(op, 2);
  /* Everything beyond stdio and the preserved fds stays out of the container. */
  if (syscall(SYS_close_range, 3 + preserve, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0) {
    for (int fd = 3 + (int)preserve; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  signal(SIGPIPE, SIG_DFL);
  execve(resolved_exec ? resolved_exec : argv[0], argv, envp);
  fail_errno("exec %s", argv[0]);
}

/* loopback_up: the network namespace's lo up, as Docker's network sandboxes have it (asked for by
   the engine's annotation; runc leaves lo as the namespace has it). */
static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail_errno("socket for lo");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail_errno("get the flags of lo");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail_errno("set lo up");
  close(s);
}

int run_process_op(const struct plan_op *op) {
  const char *n = op->name;
  if (!strcmp(n, "hook")) do_hook(op);
  else if (!strcmp(n, "sync")) do_sync(op);
  else if (!strcmp(n, "console_connect")) do_console_connect(op);
  else if (!strcmp(n, "console_setup")) do_console_setup(op);
  else if (!strcmp(n, "loopback_up")) loopback_up();
  else if (!strcmp(n, "sethostname")) {
    need_args(op, 1);
    if (sethostname(op->argv[0], op->argl[0]) < 0) fail_errno("sethostname");
  } else if (!strcmp(n, "setdomainname")) {
    need_args(op, 1);
    if (setdomainname(op->argv[0], op->argl[0]) < 0) fail_errno("setdomainname");
  } else if (!strcmp(n, "write")) {
    need_args(op, 2);
    if (write_file(op->argv[0], op->argv[1], op->argl[1]) < 0) fail_errno("write %s", op->argv[0]);
  } else if (!strcmp(n, "rlimit")) {
    need_args(op, 3);
    int64_t soft = arg_i64(op, 1), hard = arg_i64(op, 2);
    struct rlimit rl = {.rlim_cur = soft < 0 ? RLIM_INFINITY : (rlim_t)soft,
                        .rlim_max = hard < 0 ? RLIM_INFINITY : (rlim_t)hard};
    if (prlimit(0, (int)arg_u64(op, 0), &rl, NULL) < 0) fail_errno("setrlimit %s", op->argv[0]);
  } else if (!strcmp(n, "chdir")) {
    need_args(op, 1);
    if (chdir(op->argv[0]) < 0) {
      /* runc's words, which engines and their users know: Go's lower-case error text. */
      char reason[128];
      snprintf(reason, sizeof reason, "%s", strerror(errno));
      reason[0] = (char)tolower((unsigned char)reason[0]);
      fail("chdir to cwd (\"%s\") set in config.json failed: %s", op->argv[0], reason);
    }
  } else if (!strcmp(n, "umask")) {
    need_args(op, 1);
    umask((mode_t)arg_u64(op, 0));
  } else if (!strcmp(n, "no_new_privs")) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail_errno("set no_new_privs");
  } else if (!strcmp(n, "seccomp")) load_seccomp(op);
  else if (!strcmp(n, "user")) set_user(op);
  else if (!strcmp(n, "caps")) set_capabilities(op);
  else if (!strcmp(n, "exec_fifo")) {
    need_args(op, 1);
    exec_fifo = open(op->argv[0], O_PATH | O_CLOEXEC);
    if (exec_fifo < 0) fail_errno("open exec fifo %s", op->argv[0]);
  } else if (!strcmp(n, "resolve_exec")) resolve_program(op);
  else if (!strcmp(n, "home_from_passwd")) home_from_passwd(op);
  else if (!strcmp(n, "load_state")) ensure_state(); /* before "ready" closes the socket, for later hooks */
  else if (!strcmp(n, "ready")) {
    sync_send("ready\n");
    close(sync_fd);
    sync_fd = -1;
  } else if (!strcmp(n, "wait_start")) wait_for_start();
  else if (!strcmp(n, "exec")) do_exec(op);
  else return 0;
  return 1;
}
