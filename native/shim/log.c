/*
 * Writes container output as Docker's json-file log lines:
 *   {"log":"text\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}
 * (with "attrs":{...} before "time" when the engine gives some: labels, env, tag).
 * A complete line keeps its "\n"; a part of a line (too long, or left unfinished for a
 * while, or at EOF) has none, so a reader joins entries to get the output back. Bytes
 * that are not UTF-8 become U+FFFD, as in Docker; a character cut in two by a read waits
 * for its other half. The file is rotated by size as Docker's json-file driver does.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void (*log_tee)(const char *entry, size_t len);

static int log_fd = -1;
static const char *log_path;
static long long log_size, log_max_size;
static int log_max_files;
static char attrs[LOG_ATTRS_MAX]; /* "" or a JSON object */
/* Worst case: every byte escaped as \u00XX. */
static char entry[LOG_LINE_MAX * 6 + LOG_ATTRS_MAX + 128];

int log_set_attrs(const char *json) {
  size_t n = json ? strlen(json) : 0;
  if (n == 0) {
    attrs[0] = '\0';
    return 0;
  }
  if (n >= sizeof attrs || json[0] != '{' || json[n - 1] != '}' || memchr(json, '\n', n)) return -1;
  memcpy(attrs, json, n + 1);
  return 0;
}

int log_open(const char *path, long long max_size, int max_files) {
  log_path = path;
  log_max_size = max_size;
  log_max_files = max_files;
  log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) return -1;
  struct stat st;
  log_size = fstat(log_fd, &st) == 0 ? st.st_size : 0; /* a restarted container appends */
  return 0;
}

/* Docker's order: drop the oldest, shift the others up, the current file becomes .1. A
   reader may miss or repeat entries while this happens; the file itself is never torn. */
static void rotate(void) {
  char from[PATH_MAX + 16], to[PATH_MAX + 16];
  if (log_max_files >= 2) {
    snprintf(to, sizeof to, "%s.%d", log_path, log_max_files - 1);
    unlink(to);
    for (int i = log_max_files - 1; i > 1; i--) {
      snprintf(from, sizeof from, "%s.%d", log_path, i - 1);
      snprintf(to, sizeof to, "%s.%d", log_path, i);
      rename(from, to);
    }
    snprintf(to, sizeof to, "%s.1", log_path);
    if (rename(log_path, to) < 0) dprintf(2, "berth-shim: rotating the log: %s\n", strerror(errno));
  }
  int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    dprintf(2, "berth-shim: reopening the log: %s\n", strerror(errno));
    return; /* keep writing to the old file rather than lose output */
  }
  close(log_fd);
  log_fd = fd;
  log_size = 0;
}

void log_time(char *buf, size_t len) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%09ldZ", ts.tv_nsec);
}

/* The length of the UTF-8 sequence at p: 1-4; 0 if invalid; -1 if it is cut short at n. */
static int utf8_seq(const unsigned char *p, size_t n) {
  unsigned c = p[0], lo = 0x80, hi = 0xBF;
  int len;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0; /* no overlong forms */
    if (c == 0xED) hi = 0x9F; /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
  } else {
    return 0;
  }
  for (int i = 1; i < len; i++) {
    if ((size_t)i >= n) return -1;
    if (p[i] < lo || p[i] > hi) return 0;
    lo = 0x80, hi = 0xBF;
  }
  return len;
}

static size_t json_escape(char *out, const unsigned char *p, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    if (c == '"' || c == '\\') {
      out[o++] = '\\', out[o++] = (char)c, i++;
    } else if (c == '\n') {
      out[o++] = '\\', out[o++] = 'n', i++;
    } else if (c == '\r') {
      out[o++] = '\\', out[o++] = 'r', i++;
    } else if (c == '\t') {
      out[o++] = '\\', out[o++] = 't', i++;
    } else if (c < 0x20) {
      o += (size_t)sprintf(out + o, "\\u%04x", c), i++;
    } else {
      int len = utf8_seq(p + i, n - i);
      if (len <= 0) {
        memcpy(out + o, "\\ufffd", 6), o += 6, i++;
      } else {
        memcpy(out + o, p + i, (size_t)len), o += (size_t)len, i += (size_t)len;
      }
    }
  }
  return o;
}

static void write_entry(const struct log_stream *s, const char *text, size_t len) {
  char now[40];
  log_time(now, sizeof now);
  size_t n = (size_t)sprintf(entry, "{\"log\":\"");
  n += json_escape(entry + n, (const unsigned char *)text, len);
  n += (size_t)sprintf(entry + n, "\",\"stream\":\"%s\"", s->name);
  if (attrs[0]) n += (size_t)sprintf(entry + n, ",\"attrs\":%s", attrs);
  n += (size_t)sprintf(entry + n, ",\"time\":\"%s\"}\n", now);
  if (log_fd >= 0) {
    if (log_max_size > 0 && log_size >= log_max_size) rotate();
    /* One write per entry: with O_APPEND, readers never see half an entry. */
    if (write(log_fd, entry, n) < 0) dprintf(2, "berth-shim: writing the log: %s\n", strerror(errno));
    else log_size += (long long)n;
  }
  if (log_tee) log_tee(entry, n);
}

/* How many bytes at the end of buf start a character that is not complete yet. */
static size_t cut_character(const char *buf, size_t len) {
  for (size_t back = 1; back <= 3 && back <= len; back++) {
    unsigned c = (unsigned char)buf[len - back];
    if (c < 0x80) return 0;
    if (c >= 0xC0) return utf8_seq((const unsigned char *)buf + len - back, back) == -1 ? back : 0;
  }
  return 0;
}

static void log_part(struct log_stream *s, size_t keep_cut) {
  size_t cut = keep_cut ? cut_character(s->buf, s->len) : 0;
  if (s->len == cut) return;
  write_entry(s, s->buf, s->len - cut);
  memmove(s->buf, s->buf + s->len - cut, cut);
  s->len = cut;
}

void log_flush(struct log_stream *s) {
  log_part(s, 1);
}

void log_end(struct log_stream *s) {
  log_part(s, 0);
}

void log_feed(struct log_stream *s, const char *data, size_t n) {
  while (n > 0) {
    size_t take = sizeof s->buf - s->len < n ? sizeof s->buf - s->len : n;
    memcpy(s->buf + s->len, data, take);
    s->len += take, data += take, n -= take;
    char *start = s->buf, *nl;
    while ((nl = memchr(start, '\n', s->len - (size_t)(start - s->buf)))) {
      write_entry(s, start, (size_t)(nl - start + 1));
      start = nl + 1;
    }
    s->len -= (size_t)(start - s->buf);
    memmove(s->buf, start, s->len);
    if (s->len == sizeof s->buf) log_part(s, 1); /* a line too long: log a part of it */
  }
}
