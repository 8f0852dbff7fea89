#include "plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_all(int fd, char **out, size_t *outlen) {
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  if (!buf) return -1;
  for (;;) {
    if (len == cap) {
      cap *= 2;
      char *grown = realloc(buf, cap);
      if (!grown) { free(buf); return -1; }
      buf = grown;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { free(buf); return -1; }
    if (n == 0) break;
    len += (size_t)n;
  }
  *out = buf;
  *outlen = len;
  return 0;
}

/* Parses a decimal number terminated by `end`; advances *pos past the terminator. */
static int parse_number(const char *buf, size_t len, size_t *pos, char end, size_t *value) {
  size_t v = 0, start = *pos;
  while (*pos < len && buf[*pos] >= '0' && buf[*pos] <= '9') {
    v = v * 10 + (size_t)(buf[*pos] - '0');
    if (v > (1u << 30)) return -1;
    (*pos)++;
  }
  if (*pos == start || *pos >= len || buf[*pos] != end) return -1;
  (*pos)++;
  *value = v;
  return 0;
}

int plan_read(int fd, struct plan *plan, char *err, size_t errlen) {
  char *buf;
  size_t len, pos = 0;
  if (read_all(fd, &buf, &len) < 0) {
    snprintf(err, errlen, "reading plan: %s", strerror(errno));
    return -1;
  }
  int cap = 64;
  plan->ops = calloc((size_t)cap, sizeof(struct plan_op));
  plan->nops = 0;
  while (pos < len) {
    if (plan->nops == cap) {
      cap *= 2;
      plan->ops = realloc(plan->ops, (size_t)cap * sizeof(struct plan_op));
    }
    struct plan_op *op = &plan->ops[plan->nops];
    size_t name_start = pos;
    while (pos < len && buf[pos] != ' ') pos++;
    if (pos >= len) goto bad;
    buf[pos++] = '\0';
    op->name = buf + name_start;
    size_t argc;
    if (parse_number(buf, len, &pos, '\n', &argc) < 0 || argc > 4096) goto bad;
    op->argc = (int)argc;
    op->argv = calloc(argc + 1, sizeof(char *));
    op->argl = calloc(argc + 1, sizeof(size_t));
    for (size_t i = 0; i < argc; i++) {
      size_t alen;
      if (parse_number(buf, len, &pos, '\n', &alen) < 0 || pos + alen + 1 > len) goto bad;
      op->argv[i] = buf + pos;
      op->argl[i] = alen;
      pos += alen;
      if (buf[pos] != '\n') goto bad;
      buf[pos++] = '\0';
    }
    plan->nops++;
  }
  return 0;
bad:
  snprintf(err, errlen, "malformed plan at byte %zu", pos);
  return -1;
}

char **plan_split_list(const char *buf, size_t len) {
  size_t count = 0;
  for (size_t i = 0; i < len; i++)
    if (buf[i] == '\0') count++;
  if (len > 0 && buf[len - 1] != '\0') count++;
  char **vec = calloc(count + 1, sizeof(char *));
  size_t n = 0, start = 0;
  for (size_t i = 0; i <= len && n < count; i++) {
    if (i == len || buf[i] == '\0') {
      vec[n++] = strndup(buf + start, i - start);
      start = i + 1;
    }
  }
  return vec;
}
