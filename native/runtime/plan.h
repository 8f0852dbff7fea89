/*
 * The plan: what the TypeScript side (src/runtime/plan) decided, as a flat list of
 * operations. This C stage only carries it out; it makes no policy decisions.
 *
 * Wire format, read once from a pipe:
 *   "<name> <argc>\n" then argc times "<len>\n<len bytes>\n"
 * Arguments may hold any bytes (lists are NUL-separated); each gets a trailing NUL here.
 */
#ifndef BERTH_PLAN_H
#define BERTH_PLAN_H

#include <stddef.h>

struct plan_op {
  char *name;
  int argc;
  char **argv;
  size_t *argl;
};

struct plan {
  struct plan_op *ops;
  int nops;
};

/* Reads the whole plan from fd. Returns 0, or -1 with a message in err. */
int plan_read(int fd, struct plan *plan, char *err, size_t errlen);

/* Splits a NUL-separated list into a NULL-terminated vector (allocated). */
char **plan_split_list(const char *buf, size_t len);

#endif
