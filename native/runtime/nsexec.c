/*
 * berth-nsexec: carries out a plan compiled by berth-oci's TypeScript side.
 *
 * Node.js is multi-threaded, so it cannot unshare or setns itself: this small program
 * does the part between clone() and execve(). It has two stages:
 *   stage 0 (this process): join existing namespaces and cgroups, then clone() the
 *           container process into new namespaces, write its uid/gid maps, report
 *           its pid; then exit (detached) or wait for it and forward signals (foreground).
 *   child:  wait for "go" from the runtime, then run the remaining ops in order
 *           (mounts, pivot_root, devices, hostname, user, capabilities, seccomp...),
 *           report "ready", wait for `start` on the exec fifo, and execve().
 *
 * Environment: BERTH_PLAN_FD (plan, read to EOF), BERTH_SYNC_FD (a socket to the runtime); or,
 * under berth-shim, BERTH_HANDOFF_FD: the shim starts us before the plan exists, and sends both
 * fds over that socket once the daemon has sent the plan (see receive_launch).
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/*
 * Run from a sealed in-memory copy of this binary, so that a process inside a container
 * can never reach the host's binary through /proc/<pid>/exe and overwrite it
 * (CVE-2019-5736). The copy is tiny and lives only until the container's execve().
 */
static void ensure_sealed_copy(char **argv) {
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0) fail_errno("open /proc/self/exe");
  int seals = fcntl(self, F_GET_SEALS);
  if (seals >= 0 && (seals & F_SEAL_WRITE)) {
    close(self);
    return;
  }
  int copy = memfd_create("berth-nsexec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (copy < 0) fail_errno("memfd_create");
  struct stat st;
  if (fstat(self, &st) < 0) fail_errno("fstat /proc/self/exe");
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sendfile(copy, self, &off, (size_t)(st.st_size - off));
    if (n <= 0) fail_errno("copying berth-nsexec into memory");
  }
  close(self);
  if (fcntl(copy, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
    fail_errno("sealing the in-memory copy");
  fexecve(copy, argv, environ);
  fail_errno("fexecve of the sealed copy");
}

/* BERTH_NSEXEC_TRACE=1: each op with a timestamp on stderr, to see where start-up time goes. */
static int tracing;
static void trace_op(const char *stage, const struct plan_op *op) {
  if (!tracing) return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  dprintf(2, "[%ld.%06ld] %s %s %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000, stage, op->name, op->argc ? op->argv[0] : "");
}

/* One message from berth-shim: a byte, and the plan and the sync socket as SCM_RIGHTS. If the
   shim closes the socket instead, the start was given up: exit quietly. */
static void receive_launch(int handoff, int *plan_fd) {
  char byte, control[CMSG_SPACE(2 * sizeof(int))];
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  ssize_t n;
  do n = recvmsg(handoff, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  struct cmsghdr *cmsg = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
  if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS || cmsg->cmsg_len != CMSG_LEN(2 * sizeof(int))) _exit(1);
  int fds[2];
  memcpy(fds, CMSG_DATA(cmsg), sizeof fds);
  close(handoff);
  *plan_fd = fds[0];
  sync_fd = fds[1];
}

static int env_fd(const char *name) {
  const char *v = getenv(name);
  if (!v) return -1;
  return atoi(v);
}

static pid_t container_pid;

static void forward_signal(int sig) {
  if (container_pid > 0) kill(container_pid, sig);
}

/* Foreground mode: stay as the container's parent, forward signals, exit with its status. */
static void wait_for_container(void) {
  struct sigaction sa = {0};
  sa.sa_handler = forward_signal;
  sa.sa_flags = SA_RESTART;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD) continue;
    sigaction(sig, &sa, NULL);
  }
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) _exit(255);
    if (pid != container_pid) continue;
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
  }
}

/* bpf_devices CGROUP_DIR PROGRAM: load the device filter (cgroup v2) and attach it. The
   attachment lives with the cgroup, after this process is gone. */
static void attach_device_filter(const struct plan_op *op) {
  need_args(op, 2);
  static char log[8192];
  union bpf_attr load = {0};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = (uint64_t)(uintptr_t)op->argv[1];
  load.insn_cnt = (uint32_t)(op->argl[1] / sizeof(struct bpf_insn));
  load.license = (uint64_t)(uintptr_t) "Apache-2.0";
  load.log_buf = (uint64_t)(uintptr_t)log;
  load.log_size = sizeof log;
  load.log_level = 1;
  int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
  if (prog < 0) fail_errno("load device filter (%.200s)", log);
  int dir = open(op->argv[0], O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dir < 0) fail_errno("open cgroup %s", op->argv[0]);
  union bpf_attr attach = {0};
  attach.target_fd = (uint32_t)dir;
  attach.attach_bpf_fd = (uint32_t)prog;
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) < 0) fail_errno("attach device filter to %s", op->argv[0]);
  close(dir);
  close(prog);
}

static void write_id_map(pid_t pid, const char *file, const char *map, size_t len) {
  if (len == 0) return;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
  if (write_file(path, map, len) < 0) fail_errno("writing %s", path);
}

static void run_child(const struct plan *plan, int first, int new_user, int release_fd) {
  /* Wait until stage 0 has written our id maps (a byte, or EOF if it died). */
  char byte;
  if (read(release_fd, &byte, 1) != 1) _exit(1);
  close(release_fd);
  if (new_user) {
    /* Become root of the new user namespace now that the maps are written (if 0 is mapped). */
    if (setresgid(0, 0, 0) < 0 && errno != EINVAL) fail_errno("setresgid(0) in the user namespace");
    if (setresuid(0, 0, 0) < 0 && errno != EINVAL) fail_errno("setresuid(0) in the user namespace");
  }
  if (setsid() < 0) fail_errno("setsid");
  for (int i = first; i < plan->nops; i++) {
    const struct plan_op *op = &plan->ops[i];
    trace_op("child", op);
    if (run_mount_op(op) || run_process_op(op)) continue;
    fail("unknown plan op in container stage: %s", op->name);
  }
  fail("plan ended without exec");
}

int main(int argc, char **argv) {
  (void)argc;
  sync_fd = env_fd("BERTH_SYNC_FD");
  ensure_sealed_copy(argv);
  /* Nothing else in the container may ptrace or open the /proc entries of this process. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  tracing = getenv("BERTH_NSEXEC_TRACE") != NULL;
  int plan_fd = env_fd("BERTH_PLAN_FD");
  int handoff = env_fd("BERTH_HANDOFF_FD");
  if (handoff >= 0) receive_launch(handoff, &plan_fd);
  if (plan_fd < 0) fail("BERTH_PLAN_FD is not set: berth-nsexec is started by berth-oci, not by hand");
  fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
  struct plan plan;
  char err[256];
  if (plan_read(plan_fd, &plan, err, sizeof err) < 0) fail("%s", err);
  close(plan_fd);

  for (int i = 0; i < plan.nops; i++) {
    const struct plan_op *op = &plan.ops[i];
    trace_op("stage0", op);
    if (!strcmp(op->name, "setns")) {
      need_args(op, 2);
      int fd = open(op->argv[0], O_RDONLY | O_CLOEXEC);
      if (fd < 0) fail_errno("open namespace %s", op->argv[0]);
      if (setns(fd, (int)arg_u64(op, 1)) < 0) fail_errno("setns %s", op->argv[0]);
      close(fd);
    } else if (!strcmp(op->name, "unshare")) {
      need_args(op, 1);
      if (unshare((int)arg_u64(op, 0)) < 0) fail_errno("unshare(%s)", op->argv[0]);
    } else if (!strcmp(op->name, "write")) {
      need_args(op, 2);
      if (write_file(op->argv[0], op->argv[1], op->argl[1]) < 0) fail_errno("write %s", op->argv[0]);
    } else if (!strcmp(op->name, "bpf_devices")) {
      attach_device_filter(op);
    } else if (!strcmp(op->name, "try_write")) {
      need_args(op, 2);
      write_file(op->argv[0], op->argv[1], op->argl[1]); /* best effort, as runc for named/unified cgroups */
    } else if (!strcmp(op->name, "mkfifo")) {
      need_args(op, 2);
      /* chmod after mkfifo: the umask must not take the others-write bit that a
         user-namespaced container root (an unprivileged uid here) needs. */
      if (mkfifo(op->argv[0], 0600) < 0 || chmod(op->argv[0], (mode_t)arg_u64(op, 1)) < 0)
        fail_errno("mkfifo %s", op->argv[0]);
    } else if (!strcmp(op->name, "console_connect") || !strcmp(op->name, "exec_fifo")) {
      /* Host paths, opened before any setns or clone; the child inherits the fds. */
      run_process_op(op);
    } else if (!strcmp(op->name, "clone")) {
      /* clone FLAGS UID_MAP GID_MAP foreground|detach */
      need_args(op, 4);
      uint64_t flags = arg_u64(op, 0);
      int foreground = !strcmp(op->argv[3], "foreground");
      int release[2];
      if (pipe2(release, O_CLOEXEC) < 0) fail_errno("pipe");
      /* A fork-like raw clone: the child runs on a copy of this stack. */
      pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(flags | SIGCHLD), 0, 0, 0, 0);
      if (pid < 0) fail_errno("clone");
      if (pid == 0) {
        close(release[1]);
        run_child(&plan, i + 1, (flags & CLONE_NEWUSER) != 0, release[0]);
      }
      close(release[0]);
      container_pid = pid;
      write_id_map(pid, "uid_map", op->argv[1], op->argl[1]);
      write_id_map(pid, "gid_map", op->argv[2], op->argl[2]);
      if (write(release[1], "m", 1) != 1) fail_errno("release the container process");
      close(release[1]);
      sync_send("pid %d\n", pid);
      close(sync_fd);
      sync_fd = -1;
      if (foreground) wait_for_container();
      _exit(0);
    } else {
      fail("unknown plan op before clone: %s", op->name);
    }
  }
  fail("plan has no clone op");
}
