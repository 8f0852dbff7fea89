#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sync_fd = -1;

static void vfail(int with_errno, const char *fmt, va_list ap) __attribute__((noreturn));
static void vfail(int with_errno, const char *fmt, va_list ap) {
  int saved = errno;
  char msg[1024];
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  if (with_errno && n >= 0 && (size_t)n < sizeof msg)
    snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(saved));
  for (char *p = msg; *p; p++)
    if (*p == '\n') *p = ' ';
  if (sync_fd >= 0)
    dprintf(sync_fd, "error %s\n", msg);
  else
    dprintf(2, "berth-nsexec: %s\n", msg);
  _exit(1);
}

void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(0, fmt, ap);
  va_end(ap);
}

void fail_errno(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(1, fmt, ap);
  va_end(ap);
}

void sync_send(const char *fmt, ...) {
  if (sync_fd < 0) return;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof msg) n = sizeof msg - 1;
  const char *p = msg;
  while (n > 0) {
    ssize_t w = write(sync_fd, p, (size_t)n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) _exit(1); /* nobody is listening any more */
    p += w;
    n -= (int)w;
  }
}

void sync_read_exact(char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t r = read(sync_fd, buf + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) _exit(1); /* the runtime went away: give up quietly */
    got += (size_t)r;
  }
}

void sync_read_line(char *buf, size_t len) {
  size_t i = 0;
  for (;;) {
    char c;
    sync_read_exact(&c, 1);
    if (c == '\n') break;
    if (i + 1 < len) buf[i++] = c;
  }
  buf[i] = '\0';
}

int write_file(const char *path, const char *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t w = write(fd, data, len);
  int saved = errno;
  close(fd);
  errno = saved;
  return w == (ssize_t)len ? 0 : -1;
}

void need_args(const struct plan_op *op, int argc) {
  if (op->argc != argc) fail("plan op %s: expected %d arguments, got %d", op->name, argc, op->argc);
}

uint64_t arg_u64(const struct plan_op *op, int i) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(op->argv[i], &end, 0);
  if (errno || *end) fail("plan op %s: argument %d is not a number: %s", op->name, i, op->argv[i]);
  return (uint64_t)v;
}

int64_t arg_i64(const struct plan_op *op, int i) {
  char *end;
  errno = 0;
  long long v = strtoll(op->argv[i], &end, 0);
  if (errno || *end) fail("plan op %s: argument %d is not a number: %s", op->name, i, op->argv[i]);
  return (int64_t)v;
}
