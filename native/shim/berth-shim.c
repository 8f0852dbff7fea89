/*
 * berth-shim: one small process per container (or per exec'd process), its parent.
 *
 *   berth-shim DIR      (started by berth-spawner, see berth-spawner.c and src/shim/spawner.ts)
 *
 * Options, from the environment:
 *   BERTH_NSEXEC=PATH           berth-nsexec
 *   BERTH_NSEXEC_FD=N           a sealed in-memory copy of it, executed instead of PATH
 *   BERTH_SHIM_NOTIFY_FD=N      where to say "listening PID" once shim.sock takes connections
 *                               (or "failed PID MESSAGE"); closed after that
 *   BERTH_SHIM_TTY=1            the plan has console_connect DIR/console.sock: listen there,
 *                               take the pty master, read output from it and write stdin to it
 *   BERTH_SHIM_STDIN=1          without a tty, stdin is a pipe whose write end we hold
 *                               (else /dev/null)
 *   BERTH_SHIM_HOLD=1           read no output until the first `stream` client (or `shutdown`)
 *                               comes, and from then on only as fast as stream clients take it
 *                               (none is dropped for being slow); for exec
 *   BERTH_SHIM_HOLD_MS=N        read no output until the first `stream` client, a `release` or
 *                               `shutdown`, or N ms after the launch, whichever comes first;
 *                               not paced. For a container started at once with an attach client
 *                               on its way (docker run), so that the client has its first output
 *                               without a start step; the limit keeps a daemon that died meanwhile
 *                               from blocking the container for good
 *   BERTH_SHIM_NO_LOG=1         no log.json (exec)
 *   BERTH_SHIM_LOG_PATH=FILE    the log file instead of DIR/log.json (the engine keeps logs in its
 *                               data root, so they outlive a reboot; DIR may be on a tmpfs)
 *   BERTH_SHIM_LOG_MAX_SIZE=N   rotate log.json once it holds N bytes (json-file max-size)
 *   BERTH_SHIM_LOG_MAX_FILES=N  log.json, log.json.1 ... log.json.(N-1) (json-file max-file)
 *   BERTH_SHIM_LOG_ATTRS=JSON   an object each log line carries as "attrs" (json-file labels/env/tag)
 *   BERTH_SHIM_LINGER_MS=N      how long to serve shim.sock after the exit (default 10 s)
 *
 * It becomes a child sub-reaper, leaves the daemon's session, listens on DIR/shim.sock and
 * waits for the daemon's first connection there: "launch LEN [HOLD_MS]\n" and LEN bytes of plan. It then
 * starts berth-nsexec with that plan (in a memfd) and with the connection itself as the sync
 * socket, which it does not read: the daemon speaks the protocol of src/runtime/launch.ts with
 * berth-nsexec through it, as if it had started berth-nsexec itself. (A "shutdown" instead of
 * a launch makes it exit.) Once berth-nsexec's stage 0 is reaped, the shim adds its own line,
 * "init PID" (the container's PID 1, as found below; "init 0" if setup failed), and closes its
 * copy of the connection. The container's stdout and stderr are pipes to the shim. Then, in DIR, it
 *   - copies the container's output into log.json (Docker's json-file lines, log.c);
 *   - reaps every child; when the container's PID 1 exits, reads what is left of its output,
 *     then writes exit.json {"status":N,"signal":S,"finished":"RFC3339"} (temp + rename; N is
 *     128+S for a signal);
 *   - serves shim.sock, one command per connection, one line each:
 *       state          -> {"shim":P,"pid":N,"status":"creating|running|stopped"[,"exit":{...}]}
 *       wait           -> the exit.json line, once the container has exited
 *       kill SIGNAL    -> ok | error ...
 *       attach         -> ok, then each new log line until the container exits
 *       stream [stdin] [once]
 *                      -> ok, then the output from now on in Docker's multiplexed frames
 *                         ([stream 1|2, 0, 0, 0, length u32 BE] + bytes; a tty's is all 1)
 *                         until the container exits. With stdin, what the client sends goes
 *                         to the container's stdin; with once, the client's end of input
 *                         closes the container's stdin (a pipe is closed; a tty gets its EOF
 *                         character, ^D, as if typed)
 *       resize ROWS COLS -> ok | error (TIOCSWINSZ on the pty master)
 *       release        -> ok; a hold ends (the attach client it waited for is not coming)
 *       shutdown       -> ok; exit as soon as the container has exited (no linger)
 *   - after the exit, lingers for late clients, then removes shim.sock and shim.pid and exits.
 *     The daemon may die at any time meanwhile.
 *
 * Which child is PID 1: berth-nsexec's stage 0 (our child) clones the container process
 * and exits. The kernel moves its children to us (the sub-reaper) before stage 0 can be
 * reaped, and until then we have no other child; so right after reaping stage 0 the one
 * pid in /proc/thread-self/children is the container's PID 1 (alive, or a zombie we have
 * not reaped yet). No message from the daemon is needed, which matters when it is gone.
 * The same holds for an exec'd process: stage 0 joins the namespaces but stays in ours.
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_CLIENTS 32
#define CHUNK 16384

enum kind { COMMAND, WAITING, ATTACHED, STREAMING };

struct client {
  int fd;
  enum kind kind;
  int takes_stdin, once, input_ended, hung_up;
  size_t len;
  char line[128];
  char *pend; /* the part of our frames the socket has not taken yet */
  size_t pend_len, pend_off;
};

/* The container's output: its stdout and stderr pipes, and the pty master once it came. */
struct source {
  int fd;
  unsigned char stream; /* in frames: 1 stdout, 2 stderr */
  struct log_stream log;
};
enum { OUT, ERR, PTY, NSOURCES };
static struct source sources[NSOURCES] = {
    {.fd = -1, .stream = 1, .log = {.name = "stdout"}},
    {.fd = -1, .stream = 2, .log = {.name = "stderr"}},
    {.fd = -1, .stream = 1, .log = {.name = "stdout"}}, /* Docker logs a tty as stdout */
};

/* Where an error goes before berth-nsexec runs: the spawner's pipe until we listen ("failed PID
   MESSAGE"), then the launch connection ("error shim: MESSAGE", as berth-nsexec would say it). */
static int notify_fd = -1, report_fd = -1;
/* Our copy of the launch connection, until the "init PID" line is written on it. */
static int launch_fd = -1;
static pid_t stage0_pid, init_pid;
static int stage0_reaped, setup_failed, init_reaped, init_wait_status, exited, shutdown_requested;
static int hold; /* BERTH_SHIM_HOLD(_MS), until the first stream client */
static long long hold_until; /* BERTH_SHIM_HOLD_MS: the hold ends then at the latest (0: no limit) */
static int paced; /* output goes only as fast as stream clients take it (hold mode) */
static int drain_reads; /* reads left to drain the output after the exit */
static char exit_line[128];
/* The container's mount namespace, held from its start until its exit is told: PID 1's exit
   would otherwise tear the namespace down (every mount unmounted, RCU waits) before its parent
   hears of it, 0.2-0.5 ms on every container's exit here. We let it go after the answers. */
static int held_mount_ns = -1;
static long long linger_until;
static struct client clients[MAX_CLIENTS];

static int console_listen = -1, console_conn = -1, pty = -1;
/* Bytes for the container's stdin, written to stdin_fd (a pipe) or the pty master. */
static int stdin_fd = -1, stdin_closed, stdin_close_asked, stdin_eof_pending;
static char stdin_buf[8192];
static size_t stdin_len, stdin_off;
static char chunk[CHUNK];

/* Before berth-nsexec runs, an error goes to the daemon as berth-nsexec's own would. */
static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (*p == '\n') *p = ' ';
  if (notify_fd >= 0) dprintf(notify_fd, "failed %d %s\n", getpid(), msg);
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

static long long env_num(const char *name, long long dflt) {
  const char *v = getenv(name);
  return v && *v ? atoll(v) : dflt;
}

/* Writes a small file whole or not at all: a temporary, then rename. No fsync: the rename is
   atomic for every process (the daemon, killed or not, reads the old file or the new one); only
   a power loss could lose it, and after a reboot the container is gone anyway. An fsync here
   cost several ms of every container's start (shim.pid) and exit (exit.json). */
static int write_atomic(const char *name, const char *data) {
  char tmp[64];
  snprintf(tmp, sizeof tmp, ".%s.tmp", name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(data);
  int ok = write(fd, data, len) == (ssize_t)len;
  close(fd);
  if (!ok || rename(tmp, name) < 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* mkdir -p, mode 0755. */
static int mkdir_p(const char *dir) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return errno = ENAMETOOLONG, -1;
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char c = *p;
    *p = '\0';
    if (mkdir(path, 0755) < 0 && errno != EEXIST) return -1;
    if (!(*p = c)) return 0;
  }
}

/* What we leave in DIR while we run. */
/* shim.pid last: once it is gone, so is everything of ours (the daemon may then start another
   shim in this directory). */
static void cleanup_files(void) {
  unlink("shim.sock");
  unlink("console.sock");
  unlink("shim.pid");
}

/* ---- clients of shim.sock ---- */

static void drop(struct client *c) {
  close(c->fd);
  free(c->pend);
  *c = (struct client){.fd = -1};
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
    if (clients[i].fd >= 0 && clients[i].kind == ATTACHED) send_to(&clients[i], entry, len);
}

static int keep_pending(struct client *c, const char *data, size_t len) {
  char *p = realloc(c->pend, c->pend_len + len);
  if (!p) return -1;
  memcpy(p + c->pend_len, data, len);
  c->pend = p;
  c->pend_len += len;
  return 0;
}

/* Sends one frame without blocking. What the socket does not take waits in c->pend; a client
   still behind at the next frame is dropped, unless output is paced by the clients. */
static void send_frame(struct client *c, unsigned char stream, const char *data, size_t len) {
  unsigned char head[8] = {stream, 0, 0, 0, (unsigned char)(len >> 24), (unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len};
  size_t total = sizeof head + len, sent = 0;
  if (c->pend_len > c->pend_off) {
    if (!paced) {
      drop(c);
      return;
    }
  } else {
    struct iovec iov[2] = {{head, sizeof head}, {(void *)data, len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN) {
      drop(c);
      return;
    }
    sent = n < 0 ? 0 : (size_t)n;
    free(c->pend);
    c->pend = NULL, c->pend_len = c->pend_off = 0;
  }
  if (sent == total) return;
  if ((sent < sizeof head && keep_pending(c, (char *)head + sent, sizeof head - sent) < 0) ||
      keep_pending(c, data + (sent > sizeof head ? sent - sizeof head : 0), len - (sent > sizeof head ? sent - sizeof head : 0)) < 0)
    drop(c);
}

static int behind(const struct client *c) {
  return c->fd >= 0 && c->pend_len > c->pend_off;
}

/* Input the client sent that nobody will read is discarded first: closing a unix socket with
   unread data would make the client see a reset instead of the end of the output. */
static void close_stream(struct client *c) {
  shutdown(c->fd, SHUT_WR);
  for (int i = 0; i < 16 && recv(c->fd, chunk, sizeof chunk, MSG_DONTWAIT) > 0; i++) {}
  drop(c);
}

/* A stream client is closed once it has all the output of a container that has exited. */
static void flush_pending(struct client *c) {
  if (behind(c)) {
    ssize_t n = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN) {
      drop(c);
      return;
    }
    if (n > 0) c->pend_off += (size_t)n;
  }
  if (!behind(c) && exited) close_stream(c);
}

static int any_behind(void) {
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].kind == STREAMING && behind(&clients[i])) return 1;
  return 0;
}

/* Whether to read the container's output now: not while held for the first stream client,
   nor, when paced, while a stream client has not taken the last chunk. */
static int may_read_output(void) {
  return !hold && !(paced && any_behind());
}

/* ---- the container's stdin ---- */

static int stdin_target(void) {
  return stdin_closed ? -1 : pty >= 0 ? pty : stdin_fd;
}

static void close_stdin(void) {
  if (stdin_fd >= 0) close(stdin_fd);
  stdin_fd = -1;
  stdin_closed = 1;
  stdin_len = stdin_off = 0;
  stdin_eof_pending = stdin_close_asked = 0;
}

/* Writes what is buffered; the pipe or pty may take only part of it. */
static void write_stdin(void) {
  int fd = stdin_target();
  if (fd < 0) {
    stdin_len = stdin_off = 0;
    return;
  }
  while (stdin_off < stdin_len) {
    ssize_t n = write(fd, stdin_buf + stdin_off, stdin_len - stdin_off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) { /* the reader is gone (EPIPE; EIO from a pty without its other side) */
      close_stdin();
      return;
    }
    stdin_off += (size_t)n;
  }
  stdin_len = stdin_off = 0;
  if (stdin_eof_pending) { /* the EOF character is written: no more input for the tty */
    stdin_eof_pending = 0;
    stdin_closed = 1;
    return;
  }
  if (!stdin_close_asked) return;
  stdin_close_asked = 0;
  if (pty < 0) {
    close_stdin();
    return;
  }
  /* A pty cannot be closed from our side without hanging up on the container: send the EOF
     character, which ends input for a reader in canonical mode, as a user typing ^D. */
  struct termios t;
  stdin_buf[0] = tcgetattr(pty, &t) == 0 && t.c_cc[VEOF] ? (char)t.c_cc[VEOF] : 4;
  stdin_len = 1;
  stdin_eof_pending = 1;
  write_stdin();
}

static void ask_close_stdin(void) {
  if (stdin_closed) return;
  stdin_close_asked = 1;
  if (!stdin_len) write_stdin();
}

static void read_stream_client(struct client *c) {
  /* Input waits in the socket while the last input is not written yet (back pressure). */
  int to_stdin = c->takes_stdin && stdin_target() >= 0;
  if (to_stdin && stdin_len) return;
  char *buf = to_stdin ? stdin_buf : chunk;
  size_t size = to_stdin ? sizeof stdin_buf : sizeof chunk;
  ssize_t n = recv(c->fd, buf, size, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n < 0) {
    drop(c);
    return;
  }
  if (n == 0) { /* the client shut down its side; it still gets the output */
    c->input_ended = 1;
    if (c->takes_stdin && c->once) ask_close_stdin();
    return;
  }
  if (!to_stdin) return; /* input without a stdin to go to is dropped */
  stdin_len = (size_t)n;
  stdin_off = 0;
  write_stdin();
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
    else c->kind = WAITING;
  } else if (!strncmp(line, "kill ", 5)) {
    char *end;
    long sig = strtol(line + 5, &end, 10);
    if (*end || sig < 1 || sig >= NSIG) reply(c, "error bad signal\n");
    else if (!init_pid || init_reaped) reply(c, "error container not running\n");
    else if (kill(init_pid, (int)sig) < 0) snprintf(out, sizeof out, "error kill: %s\n", strerror(errno)), reply(c, out);
    else reply(c, "ok\n");
  } else if (!strcmp(line, "attach")) {
    if (exited) reply(c, "ok\n");
    else if (send_to(c, "ok\n", 3) == 0) c->kind = ATTACHED;
  } else if (!strcmp(line, "stream") || !strncmp(line, "stream ", 7)) {
    int in = 0, once = 0;
    for (char *save, *word = strtok_r(line + 6, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
      if (!strcmp(word, "stdin")) in = 1;
      else if (!strcmp(word, "once")) once = 1;
      else {
        reply(c, "error stream takes stdin and once\n");
        return;
      }
    }
    hold = 0;
    if (exited) {
      reply(c, "ok\n");
      return;
    }
    if (send_to(c, "ok\n", 3) < 0) return;
    /* Room for bursts, so that a client that reads is not dropped for a moment's lag. */
    int size = 1 << 20;
    if (!paced && setsockopt(c->fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
      setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    c->kind = STREAMING, c->takes_stdin = in, c->once = once;
  } else if (!strncmp(line, "resize ", 7)) {
    unsigned rows, cols;
    char extra;
    struct winsize ws = {0};
    if (sscanf(line + 7, "%u %u%c", &rows, &cols, &extra) != 2 || rows > USHRT_MAX || cols > USHRT_MAX) {
      reply(c, "error usage: resize ROWS COLS\n");
      return;
    }
    if (pty < 0) {
      reply(c, "error the container has no terminal\n");
      return;
    }
    ws.ws_row = (unsigned short)rows, ws.ws_col = (unsigned short)cols;
    if (ioctl(pty, TIOCSWINSZ, &ws) < 0) snprintf(out, sizeof out, "error resize: %s\n", strerror(errno)), reply(c, out);
    else reply(c, "ok\n");
  } else if (!strcmp(line, "release")) {
    hold = 0;
    reply(c, "ok\n");
  } else if (!strcmp(line, "shutdown")) {
    shutdown_requested = 1;
    hold = 0; /* nobody is coming for the output */
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
  if (c->kind == STREAMING) {
    read_stream_client(c);
    return;
  }
  /* Peek, then take the command line only: what a stream client sends after it is stdin. */
  ssize_t n = recv(c->fd, c->line + c->len, sizeof c->line - 1 - c->len, MSG_DONTWAIT | MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0 || c->kind != COMMAND) {
    drop(c);
    return;
  } /* gone, or talking when it should listen */
  char *nl = memchr(c->line + c->len, '\n', (size_t)n);
  if (nl) n = nl - (c->line + c->len) + 1;
  if (recv(c->fd, c->line + c->len, (size_t)n, MSG_DONTWAIT) != n) {
    drop(c);
    return;
  }
  c->len += (size_t)n;
  if (!nl) {
    if (c->len == sizeof c->line - 1) reply(c, "error line too long\n");
    return;
  }
  *nl = 0;
  command(c, c->line);
}

/* ---- the container ---- */

/* One read from an output source into the log and to stream clients. Returns the bytes read,
   0 at its end (EOF; EIO from a pty master once no one has the terminal open), -1 for none now. */
static ssize_t pump(struct source *s) {
  ssize_t n = read(s->fd, chunk, sizeof chunk);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return -1;
  if (n <= 0) {
    log_end(&s->log);
    if (s->fd != pty) close(s->fd); /* the master stays for stdin and resize */
    s->fd = -1;
    return 0;
  }
  log_feed(&s->log, chunk, (size_t)n);
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd >= 0 && clients[i].kind == STREAMING) send_frame(&clients[i], s->stream, chunk, (size_t)n);
  return n;
}

/* The pty master arrives over console.sock with SCM_RIGHTS, as for runc's --console-socket. */
static void receive_console(void) {
  char name[64];
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {name, sizeof name};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  ssize_t n = recvmsg(console_conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  struct cmsghdr *cmsg = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
  if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS && cmsg->cmsg_len == CMSG_LEN(sizeof(int))) {
    memcpy(&pty, CMSG_DATA(cmsg), sizeof pty);
    fcntl(pty, F_SETFL, O_NONBLOCK);
    sources[PTY].fd = pty;
    if (stdin_len) write_stdin();
  }
  /* One terminal per container: the socket has done its work (or setup failed first). */
  close(console_conn);
  close(console_listen);
  console_conn = console_listen = -1;
  unlink("console.sock");
}

/* After stage 0 is reaped, our only child is the container's PID 1 (see the top). */
static pid_t only_child(void) {
  char buf[64] = {0};
  int fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 ? (pid_t)atoi(buf) : -1;
}

/* PID 1 has exited: once what it wrote before is read (and, when held or paced, taken by
   the stream clients), record the exit. Nobody learns of it before its output is logged.
   Readers are bounded: a process that survived PID 1 (no pid namespace) may keep writing. */
static void finish_exit(long long linger_ms) {
  for (int i = 0; i < NSOURCES; i++) {
    while (sources[i].fd >= 0 && drain_reads > 0) {
      if (!may_read_output()) return; /* back here when the clients have caught up */
      if (pump(&sources[i]) <= 0) break;
      drain_reads--;
    }
    log_end(&sources[i].log);
  }
  int status = init_wait_status;
  exited = 1;
  int signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + signal;
  char finished[40];
  log_time(finished, sizeof finished);
  snprintf(exit_line, sizeof exit_line, "{\"status\":%d,\"signal\":%d,\"finished\":\"%s\"}\n", code, signal, finished);
  if (write_atomic("exit.json", exit_line) < 0) dprintf(2, "berth-shim: writing exit.json: %s\n", strerror(errno));
  close_stdin();
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (clients[i].fd < 0) continue;
    if (clients[i].kind == WAITING) reply(&clients[i], exit_line);
    else if (clients[i].kind == ATTACHED) drop(&clients[i]);
    else if (clients[i].kind == STREAMING) flush_pending(&clients[i]);
  }
  if (held_mount_ns >= 0) close(held_mount_ns);
  held_mount_ns = -1;
  linger_until = now_ms() + linger_ms;
}

static void reap(void) {
  int status;
  if (!stage0_reaped) {
    /* Until stage 0 is gone it is our only child: reap nothing else before it. */
    if (waitpid(stage0_pid, &status, WNOHANG) != stage0_pid) return;
    stage0_reaped = 1;
    init_pid = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? only_child() : -1;
    if (init_pid <= 0) init_pid = 0;
    if (init_pid) {
      char ns[64];
      snprintf(ns, sizeof ns, "/proc/%d/ns/mnt", (int)init_pid);
      held_mount_ns = open(ns, O_RDONLY | O_CLOEXEC); /* -1: not held, no harm */
    }
    /* The daemon learns PID 1 from us at once, rather than by asking (see the top). */
    if (launch_fd >= 0) {
      dprintf(launch_fd, "init %d\n", init_pid);
      close(launch_fd);
      launch_fd = -1;
    }
    if (!init_pid) { /* setup failed; berth-nsexec told the daemon why */
      setup_failed = 1;
      linger_until = now_ms();
      return;
    }
  }
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == init_pid && !init_reaped) {
      init_reaped = 1;
      init_wait_status = status;
      drain_reads = 64 * NSOURCES;
    }
  }
}

/*
 * Starts berth-nsexec's stage 0 before the plan exists, so that its fork and exec happen while
 * the daemon is still making the cgroups and the plan. It waits on the returned socket for the
 * plan and the sync socket (BERTH_HANDOFF_FD, see nsexec.c). A failure here is not reported:
 * stage 0 just exits, and the launch finds it gone.
 */
static int start_nsexec(int stdin_rd, int stdout_fd, int stderr_fd, int cwd, const sigset_t *mask) {
  const char *nsexec = getenv("BERTH_NSEXEC");
  int nsexec_fd = (int)env_num("BERTH_NSEXEC_FD", -1);
  if (!nsexec) fail("BERTH_NSEXEC is not set: berth-shim is started by berth, not by hand");
  int handoff[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, handoff) < 0) fail_errno("socketpair");
  stage0_pid = fork();
  if (stage0_pid < 0) fail_errno("fork");
  if (stage0_pid == 0) {
    sigprocmask(SIG_SETMASK, mask, NULL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    /* dup and dup2 leave the new fds open across exec; everything of ours is O_CLOEXEC. */
    int fd = dup(handoff[1]);
    char fd_env[16];
    snprintf(fd_env, sizeof fd_env, "%d", fd);
    if (fchdir(cwd) < 0 || dup2(stdin_rd, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0 || fd < 0 || setenv("BERTH_HANDOFF_FD", fd_env, 1) < 0) _exit(127);
    /* The spawner's sealed copy (close-on-exec, as it must not reach the container), else the file. */
    char *argv[] = {"berth-nsexec", NULL};
    if (nsexec_fd >= 0) fexecve(nsexec_fd, argv, environ);
    execve(nsexec, argv, environ);
    _exit(127);
  }
  if (nsexec_fd >= 0) close(nsexec_fd);
  close(handoff[1]);
  return handoff[0];
}

/* The start was given up before the launch: stage 0 sees its handoff socket close and exits. */
static void __attribute__((noreturn)) give_up(int handoff, int code) {
  close(handoff);
  waitpid(stage0_pid, NULL, 0); /* ours to reap: init would leave it a zombie for a while */
  cleanup_files();
  _exit(code);
}

/*
 * The first connection to shim.sock is the daemon's "launch LEN [HOLD_MS]\n" with LEN bytes of
 * plan (HOLD_MS: as BERTH_SHIM_HOLD_MS, for a shim started before the daemon knew it): the
 * plan goes into a memfd (berth-nsexec reads it to its end), and it and the connection, which
 * becomes berth-nsexec's sync socket, are handed to stage 0. Returns the connection (we keep a
 * copy for the "init" line). "shutdown" instead ends the shim (the daemon gave up the start).
 * Without either in LAUNCH_WAIT_MS, the daemon is gone: exit.
 */
#define LAUNCH_WAIT_MS 60000
static long long launch_hold_ms; /* HOLD_MS of the launch line, 0 if none */
static int await_launch(int listen_fd, int handoff) {
  long long deadline = now_ms() + LAUNCH_WAIT_MS;
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) give_up(handoff, 1);
    struct pollfd p = {.fd = listen_fd, .events = POLLIN};
    if (poll(&p, 1, (int)left) <= 0) continue;
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    /* A client that sends nothing must not keep us from the daemon's launch for long. */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char line[64];
    size_t n = 0;
    while (n < sizeof line - 1 && read(fd, line + n, 1) == 1 && line[n] != '\n') n++;
    line[n] = '\0';
    unsigned long len, hold_ms = 0;
    char extra;
    if (!strcmp(line, "shutdown")) {
      dprintf(fd, "ok\n");
      give_up(handoff, 0);
    }
    int fields = sscanf(line, "launch %lu %lu%c", &len, &hold_ms, &extra);
    if ((fields != 1 && fields != 2) || len > (64u << 20) || hold_ms > 3600000) {
      dprintf(fd, "error expected launch\n");
      close(fd);
      continue;
    }
    report_fd = fd;
    int mem = memfd_create("berth-plan", MFD_CLOEXEC);
    if (mem < 0) fail_errno("memfd_create");
    for (unsigned long got = 0; got < len;) {
      ssize_t r = read(fd, chunk, len - got < sizeof chunk ? len - got : sizeof chunk);
      if (r <= 0) fail("the plan ended early");
      if (write(mem, chunk, (size_t)r) != r) fail_errno("writing the plan");
      got += (size_t)r;
    }
    if (lseek(mem, 0, SEEK_SET) < 0) fail_errno("lseek");
    launch_hold_ms = (long long)hold_ms;
    tv.tv_sec = 0; /* berth-nsexec may wait long on it (hooks) */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* One message: a byte, and the plan and the connection as SCM_RIGHTS. */
    int fds[2] = {mem, fd};
    char control[CMSG_SPACE(sizeof fds)] = {0};
    struct iovec iov = {.iov_base = "l", .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
    if (sendmsg(handoff, &msg, MSG_NOSIGNAL) != 1) fail("berth-nsexec did not start");
    close(handoff);
    close(mem);
    report_fd = -1;
    return fd;
  }
}

/* A listening unix socket in the current directory (DIR: keeps the path short). */
static int listen_on(const char *name, const char *dir) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strcpy(addr.sun_path, name);
  unlink(name);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 16) < 0) fail_errno("listen on %s/%s", dir, name);
  return fd;
}

/* poll() entries, rebuilt each turn; watch() returns the index to look up revents by. */
static struct pollfd fds[8 + NSOURCES + MAX_CLIENTS];
static int nfds;
static int watch(int fd, short events) {
  if (fd < 0) return -1;
  fds[nfds] = (struct pollfd){.fd = fd, .events = events};
  return nfds++;
}
static short revents(int index) {
  return index < 0 ? 0 : fds[index].revents;
}

int main(int argc, char **argv) {
  notify_fd = (int)env_num("BERTH_SHIM_NOTIFY_FD", -1);
  if (argc != 2) fail("usage: berth-shim DIR (started by berth-spawner)");
  long long linger_ms = env_num("BERTH_SHIM_LINGER_MS", 10000);
  int tty = env_num("BERTH_SHIM_TTY", 0) != 0, want_stdin = env_num("BERTH_SHIM_STDIN", 0) != 0;
  hold = paced = env_num("BERTH_SHIM_HOLD", 0) != 0;
  long long hold_ms = env_num("BERTH_SHIM_HOLD_MS", 0);
  if (!hold && hold_ms > 0) hold = 1;
  /* Ours only: nothing we start may inherit them. */
  if (notify_fd >= 0) fcntl(notify_fd, F_SETFD, FD_CLOEXEC);
  if (env_num("BERTH_NSEXEC_FD", -1) >= 0) fcntl((int)env_num("BERTH_NSEXEC_FD", -1), F_SETFD, FD_CLOEXEC);

  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) fail_errno("PR_SET_CHILD_SUBREAPER");
  setsid(); /* fails only if we lead a process group already, which is as good */
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;

  int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cwd < 0) fail_errno("open .");
  /* DIR and its first files are made here rather than by the daemon: on a slow disk they cost
     ~1 ms each, and the daemon meanwhile makes the container's cgroups and plan. */
  if (mkdir_p(argv[1]) < 0) fail_errno("mkdir %s", argv[1]);
  /* Working in DIR keeps the socket's path short, whatever DIR is. */
  if (chdir(argv[1]) < 0) fail_errno("chdir %s", argv[1]);
  /* What an earlier run in DIR left (shim.sock goes when we bind it). */
  unlink("exit.json");
  unlink("shim.pid");
  unlink("console.sock");
  const char *log_file = getenv("BERTH_SHIM_LOG_PATH");
  if (!log_file || !*log_file) log_file = "log.json";
  if (strlen(log_file) >= PATH_MAX) fail("BERTH_SHIM_LOG_PATH is too long");
  if (!env_num("BERTH_SHIM_NO_LOG", 0) && log_open(log_file, env_num("BERTH_SHIM_LOG_MAX_SIZE", 0), (int)env_num("BERTH_SHIM_LOG_MAX_FILES", 1)) < 0)
    fail_errno("open %s (in %s)", log_file, argv[1]);
  if (log_set_attrs(getenv("BERTH_SHIM_LOG_ATTRS")) < 0) fail("BERTH_SHIM_LOG_ATTRS is not a one-line JSON object of less than %d bytes", LOG_ATTRS_MAX);
  log_tee = tee_to_attached;

  int listen_fd = listen_on("shim.sock", argv[1]);
  /* Before berth-nsexec: its stage 0 connects to it first thing. */
  if (tty) console_listen = listen_on("console.sock", argv[1]);

  int in[2], out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) fail_errno("pipe");
  if (want_stdin && !tty) {
    if (pipe2(in, O_CLOEXEC) < 0) fail_errno("pipe");
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    stdin_fd = in[1];
  } else if ((in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
    fail_errno("open /dev/null");
  }
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  sources[OUT].fd = out[0];
  sources[ERR].fd = err[0];

  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) fail_errno("signalfd");

  if (notify_fd >= 0) {
    dprintf(notify_fd, "listening %d\n", getpid());
    close(notify_fd);
    notify_fd = -1;
  }
  /* While the daemon sends the plan: shim.pid tells a restarted daemon that we run. */
  char pid[16];
  snprintf(pid, sizeof pid, "%d", getpid());
  if (write_atomic("shim.pid", pid) < 0) dprintf(2, "berth-shim: writing shim.pid: %s\n", strerror(errno));

  int handoff = start_nsexec(in[0], out[1], err[1], cwd, &old);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  close(cwd);
  launch_fd = await_launch(listen_fd, handoff);
  if (launch_hold_ms > 0 && !paced) {
    hold = 1;
    hold_ms = launch_hold_ms;
  }
  if (hold && !paced && hold_ms > 0) hold_until = now_ms() + hold_ms;

  long long partial_since = 0; /* when output without a newline started waiting */
  for (;;) {
    if (hold && hold_until && now_ms() >= hold_until) hold = 0;
    if (init_reaped && !exited) finish_exit(linger_ms);
    /* Stream clients that are behind keep us until the linger ends, even after shutdown. */
    if ((exited || setup_failed) && (now_ms() >= linger_until || (shutdown_requested && !any_behind()))) break;

    nfds = 0;
    int sig_i = watch(sfd, POLLIN), listen_i = watch(listen_fd, POLLIN);
    int console_i = watch(console_listen, POLLIN), conn_i = watch(console_conn, POLLIN);
    int source_i[NSOURCES], client_i[MAX_CLIENTS];
    for (int i = 0; i < NSOURCES; i++) source_i[i] = watch(may_read_output() ? sources[i].fd : -1, POLLIN);
    int stdin_i = watch(stdin_len ? stdin_target() : -1, POLLOUT);
    for (int i = 0; i < MAX_CLIENTS; i++) {
      struct client *c = &clients[i];
      short events = POLLIN;
      int input_waits = c->takes_stdin && stdin_len; /* back pressure: stdin has not taken the last input */
      if (c->kind == STREAMING) {
        events = 0;
        if (!c->input_ended && !input_waits) events |= POLLIN;
        if (behind(c)) events |= POLLOUT;
      }
      /* A client gone with input still to read would report POLLHUP on every turn. */
      client_i[i] = watch(c->hung_up && input_waits ? -1 : c->fd, events);
    }

    int timeout = -1;
    if (exited || setup_failed) timeout = (int)(linger_until - now_ms());
    if (sources[OUT].log.len || sources[ERR].log.len || sources[PTY].log.len) {
      long long left = partial_since + 100 - now_ms();
      if (timeout < 0 || left < timeout) timeout = (int)left;
    }
    if (hold && hold_until && (timeout < 0 || hold_until - now_ms() < timeout)) timeout = (int)(hold_until - now_ms());
    if (init_reaped && !exited && may_read_output()) timeout = 0;
    if (timeout < -1) timeout = 0;
    if (poll(fds, (nfds_t)nfds, timeout) < 0 && errno != EINTR) fail_errno("poll");

    if (revents(sig_i)) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {}
      reap();
    }
    if (revents(conn_i)) receive_console();
    if (revents(console_i)) {
      int fd = accept4(console_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0 && console_conn < 0) console_conn = fd;
      else if (fd >= 0) close(fd);
    }
    for (int i = 0; i < NSOURCES; i++) {
      if (!revents(source_i[i]) || sources[i].fd < 0 || !may_read_output()) continue;
      int had_partial = sources[i].log.len > 0;
      pump(&sources[i]);
      if (!had_partial && sources[i].log.len) partial_since = now_ms();
    }
    /* A line left unfinished for 100 ms (a prompt, say) is logged as it is. */
    if ((sources[OUT].log.len || sources[ERR].log.len || sources[PTY].log.len) && now_ms() >= partial_since + 100) {
      for (int i = 0; i < NSOURCES; i++) log_flush(&sources[i].log);
      partial_since = now_ms(); /* what is left is half a character: give it time */
    }
    if (revents(stdin_i)) write_stdin();
    for (int i = 0; i < MAX_CLIENTS; i++) {
      short ev = revents(client_i[i]);
      struct client *c = &clients[i];
      if (!ev || c->fd < 0) continue;
      if (c->kind != STREAMING) {
        read_client(c);
        continue;
      }
      if (ev & POLLERR) {
        drop(c);
        continue;
      }
      if (ev & POLLOUT) flush_pending(c);
      if (ev & POLLHUP) c->hung_up = 1;
      /* Gone for good (no input left, and no one to take output): drop it. */
      if (c->fd >= 0 && (ev & (POLLIN | POLLHUP))) {
        if (c->hung_up && c->input_ended) drop(c);
        else read_client(c);
      }
    }
    if (revents(listen_i)) accept_clients(listen_fd);
  }
  cleanup_files();
  return 0;
}
