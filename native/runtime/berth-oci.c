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
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../client/served.h"

#define SERVE_FLAG "--berth-oci-serve" /* cli.ts, SERVE_FLAG */
#define DEFAULT_DIR "/run/berth-oci-server"

static struct served served;

static pid_t child = -1; /* the berth-nsexec we started, while it runs */

/* "spawn <token> <planFd> <syncFd> <path>": start berth-nsexec with the plan and sync sockets. */
static void spawn_stage0(int conn, const char *sock, char *line) {
  char token[80], path[PATH_MAX];
  int plan_fd_no, sync_fd_no;
  char msg[PATH_MAX + 64];
  if (sscanf(line, "spawn %79s %d %d %4095[^\n]", token, &plan_fd_no, &sync_fd_no, path) != 4 || plan_fd_no < 3 || sync_fd_no != plan_fd_no + 1) {
    served_send_all(conn, "spawnerror bad spawn message\n", 29);
    return;
  }
  int plan = served_connect(sock), sync = served_connect(sock);
  int n1 = snprintf(msg, sizeof msg, "plan %s\n", token);
  if (plan < 0 || sync < 0 || served_send_all(plan, msg, (size_t)n1) < 0) goto fail;
  int n2 = snprintf(msg, sizeof msg, "sync %s\n", token);
  if (served_send_all(sync, msg, (size_t)n2) < 0) goto fail;
  pid_t pid = fork();
  if (pid < 0) goto fail;
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &served.caller_mask, NULL);
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
  served_send_all(conn, msg, (size_t)n);
  return;
fail:
  n1 = snprintf(msg, sizeof msg, "spawnerror %s\n", strerror(errno));
  if (plan >= 0) close(plan);
  if (sync >= 0) close(sync);
  served_send_all(conn, msg, (size_t)n1);
}

/* Reaps berth-nsexec and tells the server how it ended. */
static void reap(int conn) {
  int status;
  if (child <= 0 || waitpid(child, &status, WNOHANG) != child) return;
  char msg[64];
  int n = snprintf(msg, sizeof msg, "status %d %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 0, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  served_send_all(conn, msg, (size_t)n);
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
  served_lost(&served, "berth-oci");
}

int main(int argc, char **argv) {
  (void)argc;
  served_init(&served, "berth-oci.cjs", argv);
  const char *off = getenv("BERTH_OCI_SERVER"), *dir = getenv("BERTH_OCI_SERVER_DIR");
  int served_here = !(off && !strcmp(off, "0")) && geteuid() == 0;
  int conn = served_open(&served, served_here ? (dir && *dir ? dir : DEFAULT_DIR) : NULL, SERVE_FLAG, 1);

  /* The request: cwd and identity, then argv. */
  char cwd[PATH_MAX], id[256];
  if (!getcwd(cwd, sizeof cwd) || served_identity(id, sizeof id, 0) < 0) served_run_in_node(&served);
  const char *fields[] = {cwd, id};
  if (served_send_request(conn, fields, 2, argv) < 0) served_run_in_node(&served);

  /* Signals come through a signalfd, so that one loop waits for them and for the server. */
  sigset_t mask;
  sigemptyset(&mask);
  int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaddset(&mask, forwarded[i]);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sigfd < 0) {
    perror("berth-oci: signalfd");
    return 1;
  }

  for (;;) {
    char line[PATH_MAX + 256];
    while (served_next_line(line, sizeof line)) {
      int handled = served_message(&served, conn, line);
      if (handled < 0) server_lost();
      if (!handled && !strncmp(line, "spawn ", 6)) spawn_stage0(conn, served.sock, line);
    }
    struct pollfd fds[2] = {{.fd = conn, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      perror("berth-oci: poll");
      return 1;
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sigfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) reap(conn);
        else on_signal((int)si.ssi_signo);
      }
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && !served_fill(conn)) server_lost();
  }
}
