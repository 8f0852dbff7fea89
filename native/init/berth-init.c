/*
 * berth-init: a minimal init for containers (`docker run --init`), in the manner of tini.
 *
 *   berth-init [--] PROGRAM [ARG...]
 *
 * A container's PID 1 has two duties its program rarely knows about: the kernel delivers it
 * no signal it has not set a handler for (so SIGTERM from `docker stop` does nothing), and it
 * inherits every orphaned process in the namespace, which stay zombies unless it reaps them.
 * berth-init runs PROGRAM as its child, passes on the signals it gets, reaps every child, and
 * exits with PROGRAM's status (128+N if signal N ended it) as soon as PROGRAM exits; the
 * kernel then ends whatever else runs in the pid namespace.
 *
 * It is built statically: the engine bind-mounts it into images whatever their libc.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Signals the kernel raises for a fault of this process itself, left at their defaults. */
static const int synchronous[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS};

int main(int argc, char **argv) {
  int first = 1;
  if (first < argc && !strcmp(argv[first], "--")) first++;
  if (first >= argc) {
    dprintf(2, "usage: berth-init [--] PROGRAM [ARG...]\n");
    return 2;
  }

  /* Every other signal is blocked and taken with sigwaitinfo: blocked signals reach even a
     namespace's PID 1, which ignores those it has no handler for. SIGTTIN and SIGTTOU stay
     blocked so that the child may take the terminal's foreground below. */
  sigset_t all, old;
  sigfillset(&all);
  for (size_t i = 0; i < sizeof synchronous / sizeof *synchronous; i++) sigdelset(&all, synchronous[i]);
  sigprocmask(SIG_SETMASK, &all, &old);

  /* Outside a pid namespace of our own, orphans would go past us: ask for them. */
  if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  pid_t child = fork();
  if (child < 0) {
    dprintf(2, "berth-init: fork: %s\n", strerror(errno));
    return 1;
  }
  if (child == 0) {
    /* Its own process group, in the foreground of the terminal if there is one: ^C from the
       terminal reaches it (and its children) once, not also through us. */
    setpgid(0, 0);
    tcsetpgrp(0, getpgrp()); /* ENOTTY without a terminal: fine */
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(argv[first], argv + first);
    int err = errno;
    dprintf(2, "berth-init: exec %s: %s\n", argv[first], strerror(err));
    _exit(err == ENOENT ? 127 : 126);
  }

  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue; /* EINTR */
    if (sig != SIGCHLD) {
      /* Ours to pass on. If the child is already gone, the next SIGCHLD ends us anyway. */
      kill(child, sig);
      continue;
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != child) continue; /* a zombie reaped, nothing more */
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return WEXITSTATUS(status);
    }
  }
}
