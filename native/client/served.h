/*
 * What the native command-line clients share (berth-oci.c, berth.c): each runs its command in
 * a Node server of its build (src/common/command-server.ts) when one is up, else in Node
 * itself, after starting one in the background for the commands to come.
 */
#ifndef BERTH_SERVED_H
#define BERTH_SERVED_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <sys/un.h>

struct served {
  char boot[PATH_MAX + 32];   /* <root>/dist/boot.cjs */
  char bundle[PATH_MAX + 96]; /* <root>/dist/<bundle name> */
  char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
  char **argv;                /* the command line, argv[0] included */
  sigset_t caller_mask;       /* the signal mask we started with: Node's and children's */
  int accepted;               /* the server said "ok": the command runs there */
};

/* Finds the bundle from this program's path (<root>/native/build/<program>). */
void served_init(struct served *s, const char *bundle_name, char **argv);

/* Runs the command in Node in this process: node [flags] boot bundle argv[1..]. */
void served_run_in_node(const struct served *s) __attribute__((noreturn));

/* The server's socket in dir (made 0700 if missing; it must be a directory of ours that
   nobody else may enter), named after the bundle's build and our mount and pid namespaces.
   Returns -1 when there is none to use. */
int served_socket_path(struct served *s, const char *dir);

int served_connect(const char *path);

/* The connection to the server in dir (NULL: none to use), or, with none up, starts one and
   runs the command in Node. */
int served_open(struct served *s, const char *dir, const char *serve_flag, int root_cgroups);

/* Handles the messages every command server sends (src/common/command-server.ts): output,
   "ok", "fallback" (the command then runs in Node) and "exit". Returns 1 if the line was one
   of them, 0 if not, -1 if the connection ended inside an output message. */
int served_message(struct served *s, int conn, const char *line);

/* The server went away: if it had not taken the command, it runs in Node; else the message. */
void served_lost(struct served *s, const char *program) __attribute__((noreturn));

/* Starts `node boot bundle <serve_flag> sock` in the background: a new session, cwd /, stdio
   to /dev/null and <sock>.log, no fds of ours; in the root cgroups if root_cgroups. */
void served_start_server(const struct served *s, const char *serve_flag, int root_cgroups);

/* Sends "request <n>\n" and the fields (each ending with a NUL), then argv[1..]. */
int served_send_request(int conn, const char *const *fields, int nfields, char **argv);

/* The identity string of server.ts's ownIdentity(); with_user adds uid, gid and groups. */
int served_identity(char *buf, size_t len, int with_user);

int served_send_all(int fd, const void *buf, size_t len);

/* Reading the server's messages: */
/* The next line (without its newline) into line, or 0 if none is complete yet. */
int served_next_line(char *line, size_t len);
/* Reads more; 0 at EOF or on an error. */
int served_fill(int conn);
/* Passes the n bytes of an "out"/"err" message on to fd, reading more as needed; 0 if the
   connection ended first. */
int served_pass_on(int conn, int fd, size_t n);

#endif
