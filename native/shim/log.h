/* The container's output as Docker's json-file log: one JSON object per line. */
#ifndef BERTH_SHIM_LOG_H
#define BERTH_SHIM_LOG_H

#include <stddef.h>

/* Longest line kept whole; a longer one is logged in parts (without "\n"), as Docker does. */
#define LOG_LINE_MAX 16384

struct log_stream {
  const char *name; /* "stdout" or "stderr" */
  size_t len;       /* bytes of an unfinished line in buf */
  char buf[LOG_LINE_MAX];
};

/* Opens (appends to) the log file. With max_size > 0, the file is rotated before an entry
   once it holds max_size bytes or more: path -> path.1 -> ... -> path.(max_files-1), as
   Docker's json-file max-size/max-file (max_files < 2: the file is truncated instead).
   Returns -1 with errno on failure. Without log_open, entries only go to log_tee. */
int log_open(const char *path, long long max_size, int max_files);
/* Each entry carries "attrs": this JSON object (json-file's labels/env/tag), between "stream"
   and "time" as Docker writes it. Refused (-1) unless it is one line of at most
   LOG_ATTRS_MAX - 1 bytes that starts with '{' and ends with '}'. */
#define LOG_ATTRS_MAX 4096
int log_set_attrs(const char *json);
/* Takes output read from the container; logs the complete lines, keeps the rest. */
void log_feed(struct log_stream *s, const char *data, size_t n);
/* Logs an unfinished line as it is (a prompt, say), but for a character cut in two. */
void log_flush(struct log_stream *s);
/* Logs whatever is left (the stream ended). */
void log_end(struct log_stream *s);
/* RFC 3339 time with nanoseconds, UTC (buf of 40 bytes). */
void log_time(char *buf, size_t len);

/* Called with each entry written (the shim copies it to attached clients). */
extern void (*log_tee)(const char *entry, size_t len);

#endif
