/* The container's output as Docker's json-file log: one JSON object per line. */
#ifndef BERTH_SHIM_LOG_H
#define BERTH_SHIM_LOG_H

#include <stddef.h>

/* Longest line kept whole; a longer one is logged in parts (without "\n"), as Docker does. */
#define LOG_LINE_MAX 16384

struct log_stream {
  const char *name; /* "stdout" or "stderr" */
  int fd;           /* read end of the container's pipe, non-blocking; -1 after EOF */
  size_t len;       /* bytes of an unfinished line in buf */
  char buf[LOG_LINE_MAX];
};

/* Opens (appends to) the log file. Returns -1 with errno on failure. */
int log_open(const char *path);
/* One read from the pipe; logs the complete lines. Returns 2 after data, 1 if there was none
   (EAGAIN), 0 at EOF (the rest is flushed and fd closed). */
int log_read(struct log_stream *s);
/* Logs an unfinished line as it is (a prompt, or output cut off by a process's exit). */
void log_flush(struct log_stream *s);
/* RFC 3339 time with nanoseconds, UTC (buf of 40 bytes). */
void log_time(char *buf, size_t len);

/* Called with each entry written (the shim copies it to attached clients). */
extern void (*log_tee)(const char *entry, size_t len);

#endif
