/* Helpers shared by the stages of berth-nsexec. */
#ifndef BERTH_COMMON_H
#define BERTH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "plan.h"

/* The socket to the TypeScript side: status and errors go up, "go"/"ok" come down. */
extern int sync_fd;

/* Reports "error <message>" to the TypeScript side (or stderr) and exits 1. */
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Same, appending ": strerror(errno)". */
void fail_errno(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

void sync_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads one line from the sync socket into buf (without the newline). */
void sync_read_line(char *buf, size_t len);
void sync_read_exact(char *buf, size_t len);

int write_file(const char *path, const char *data, size_t len);
uint64_t arg_u64(const struct plan_op *op, int i);
int64_t arg_i64(const struct plan_op *op, int i);
void need_args(const struct plan_op *op, int argc);

/* mounts.c: operations on the container's filesystem view. */
int run_mount_op(const struct plan_op *op);

/* process.c: the container process's own attributes, hooks, console, exec. */
int run_process_op(const struct plan_op *op);
/* The container's state JSON (from "go"), given on stdin to hooks. */
extern char *state_json;
extern size_t state_json_len;

#endif
