/*
 * berth-fsop: the few file system operations Node.js cannot do: for the layer unpacker
 * (src/storage/unpack.ts), make device nodes, fifos and overlay whiteouts, and set xattrs; for
 * the tars the engine writes (src/storage/xattrs.ts), read xattrs; for the engine
 * (src/engine/mount.ts), mount and unmount.
 *
 * Usage: berth-fsop LAYERDIR. Every path is relative to LAYERDIR and its parent directory is
 * opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), so no
 * symlink, ".." or absolute path can make an operation land outside LAYERDIR. The last
 * component is never followed.
 *
 * Requests on stdin, in the plan wire format (native/runtime/plan.h), one after another:
 *   "<op> <argc>\n" then argc times "<len>\n<len bytes>\n"
 * Ops:
 *   mknod PATH TYPE MAJOR MINOR MODE UID GID MTIME_SEC MTIME_NSEC
 *         TYPE: c (char device), b (block device), p (fifo). The node must not exist. Owner,
 *         permission bits (incl. setuid/setgid/sticky) and mtime are set on the new node.
 *   setxattr PATH NAME VALUE     lsetxattr semantics; PATH "." is LAYERDIR itself
 *   mount TYPE SOURCE TARGET DATA   mount(2) on the directory TARGET (beneath LAYERDIR, through
 *         an O_PATH descriptor); TYPE "bind" is a recursive bind of SOURCE (DATA "ro": read-only)
 *   fsmount TYPE TARGET PARAMS    a new TYPE file system on the directory TARGET through the new
 *         mount API (fsopen, fsconfig, fsmount, move_mount). PARAMS is a NUL-separated list of
 *         "key=value" (a string parameter) or "key" (a flag), applied in order. mount(2) takes
 *         its options as one page of data; here each parameter is a system call of its own, so
 *         there is no limit on their total (each value: at most 255 bytes, the kernel's limit).
 *         overlayfs (Linux >= 6.8) takes one "lowerdir+" per layer this way: images with more
 *         layers than one page of paths can hold (src/engine/mount.ts decides when).
 *   umount TARGET                 unmounts everything stacked on TARGET (detached: lazily if
 *         busy); not mounted is not an error. Answered before the file systems' teardown (see
 *         do_umount)
 *   rmtree PATH                   removes the directory PATH beneath LAYERDIR and all it holds,
 *         through descriptors (no symlink followed, no path resolved twice); never across a
 *         mount point: what is mounted below stays, with the directories leading to it, and the
 *         answer is an error naming it. Not there is not an error. For the engine's deletions
 *         of container directories and writable layers (src/storage/fsop.ts, TreeDeleter):
 *         done here, they cost the daemon's event loop one request, not a callback per file
 *   fdxattrs FD                   lists the extended attributes of the file that the parent
 *         process (the engine) holds open as descriptor FD (O_PATH is enough), through
 *         /proc/<parent>/fd/FD: no path is resolved, so nothing a hostile tree renames meanwhile
 *         matters. Answer: "ok" followed by " <name>=<value>" per attribute, both in hex.
 * The engine keeps one berth-fsop running over its exec root for the mount and umount of each
 * container's root file system: a request costs microseconds, a mount(8) process milliseconds.
 * One answer line per request on stdout: "ok" or "error <message>". A malformed request
 * ends the program (exit 1) after an "error" line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_ARGS 16
#define MAX_ARG_LEN (16u << 20)

static int root_fd = -1;

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...) {
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (*p == '\n') *p = ' ';
  printf("%s\n", msg);
  fflush(stdout);
}

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  reply("error %s", msg);
  exit(1);
}

/* Reads a decimal number ended by `end`. Returns -1 at a clean EOF before any digit. */
static long read_number(char end, int eof_ok) {
  long v = 0;
  int digits = 0;
  for (;;) {
    int c = getchar();
    if (c == EOF) {
      if (eof_ok && digits == 0) return -1;
      fail("truncated request");
    }
    if (c == end && digits > 0) return v;
    if (c < '0' || c > '9' || v > (long)MAX_ARG_LEN) fail("malformed request");
    v = v * 10 + (c - '0');
    digits++;
  }
}

struct request {
  char name[32];
  int argc;
  char *argv[MAX_ARGS];
  size_t argl[MAX_ARGS];
};

/* Reads one request; returns 0 at EOF. */
static int read_request(struct request *r) {
  size_t n = 0;
  int c;
  while ((c = getchar()) != ' ') {
    if (c == EOF && n == 0) return 0;
    if (c == EOF || n + 1 >= sizeof r->name || c < 'a' || c > 'z') fail("malformed request name");
    r->name[n++] = (char)c;
  }
  r->name[n] = 0;
  long argc = read_number('\n', 0);
  if (argc > MAX_ARGS) fail("too many arguments");
  r->argc = (int)argc;
  for (int i = 0; i < r->argc; i++) {
    long len = read_number('\n', 0);
    r->argv[i] = malloc((size_t)len + 1);
    if (!r->argv[i]) fail("out of memory");
    if (fread(r->argv[i], 1, (size_t)len, stdin) != (size_t)len || getchar() != '\n') fail("truncated argument");
    r->argv[i][len] = 0;
    r->argl[i] = (size_t)len;
  }
  return 1;
}

static void free_request(struct request *r) {
  for (int i = 0; i < r->argc; i++) free(r->argv[i]);
  r->argc = 0;
}

static long long arg_num(const struct request *r, int i, int base) {
  char *end;
  errno = 0;
  long long v = strtoll(r->argv[i], &end, base);
  if (errno || end == r->argv[i] || *end) return -1;
  return v;
}

/* A directory beneath the root, as an O_PATH descriptor: no symlink, "..", or absolute path out. */
static int open_dir_beneath(const char *dir) {
  struct open_how how = {
      .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  return (int)syscall(SYS_openat2, root_fd, dir, &how, sizeof how);
}

/*
 * Opens the parent directory of `path` beneath the layer and points *base at the last
 * component. Returns the fd (the caller closes it), or -1 with errno set.
 */
static int open_parent(const char *orig, char *path, size_t pathlen, char **base) {
  if (strlen(orig) + 1 > pathlen || orig[0] == '/' || orig[0] == 0) {
    errno = EINVAL;
    return -1;
  }
  strcpy(path, orig);
  char *slash = strrchr(path, '/');
  const char *dir = ".";
  if (slash) {
    *slash = 0;
    dir = path;
    *base = slash + 1;
  } else {
    *base = path;
  }
  if (**base == 0 || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0) {
    errno = EINVAL;
    return -1;
  }
  return open_dir_beneath(dir);
}

static void do_mknod(struct request *r) {
  if (r->argc != 9) fail("mknod takes 9 arguments, got %d", r->argc);
  const char *type = r->argv[1];
  long long major = arg_num(r, 2, 10), minor = arg_num(r, 3, 10), mode = arg_num(r, 4, 8);
  long long uid = arg_num(r, 5, 10), gid = arg_num(r, 6, 10);
  long long sec = arg_num(r, 7, 10), nsec = arg_num(r, 8, 10);
  if (major < 0 || minor < 0 || mode < 0 || mode > 07777 || uid < 0 || gid < 0 || nsec < 0 || nsec > 999999999) {
    reply("error mknod %s: bad number", r->argv[0]);
    return;
  }
  mode_t fmt;
  if (strcmp(type, "c") == 0) fmt = S_IFCHR;
  else if (strcmp(type, "b") == 0) fmt = S_IFBLK;
  else if (strcmp(type, "p") == 0) fmt = S_IFIFO;
  else {
    reply("error mknod %s: unknown type %s", r->argv[0], type);
    return;
  }
  /* The time argument may be negative (before 1970). */
  sec = strtoll(r->argv[7], NULL, 10);
  char path[PATH_MAX], *base;
  int dfd = open_parent(r->argv[0], path, sizeof path, &base);
  if (dfd < 0) {
    reply("error mknod %s: cannot open its parent beneath the layer: %s", r->argv[0], strerror(errno));
    return;
  }
  const char *step = "mknod";
  if (mknodat(dfd, base, fmt | (mode_t)(mode & 0777), makedev((unsigned)major, (unsigned)minor)) < 0) goto err;
  step = "chown";
  if (fchownat(dfd, base, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0) goto err;
  /* After chown, which clears setuid/setgid. The node was just made by us: not a symlink. */
  step = "chmod";
  if (fchmodat(dfd, base, (mode_t)mode, 0) < 0) goto err;
  step = "utimensat";
  struct timespec ts[2] = {{.tv_sec = sec, .tv_nsec = nsec}, {.tv_sec = sec, .tv_nsec = nsec}};
  if (utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0) goto err;
  close(dfd);
  reply("ok");
  return;
err:;
  int e = errno;
  close(dfd);
  reply("error %s %s: %s", step, r->argv[0], strerror(e));
}

static void do_setxattr(struct request *r) {
  if (r->argc != 3) fail("setxattr takes 3 arguments, got %d", r->argc);
  const char *name = r->argv[1];
  int rc;
  if (strcmp(r->argv[0], ".") == 0) {
    rc = fsetxattr(root_fd, name, r->argv[2], r->argl[2], 0);
  } else {
    char path[PATH_MAX], *base;
    int dfd = open_parent(r->argv[0], path, sizeof path, &base);
    if (dfd < 0) {
      reply("error setxattr %s %s: cannot open its parent beneath the layer: %s", r->argv[0], name, strerror(errno));
      return;
    }
    /* The magic link is an inner component (followed to the directory we opened); the last
     * component is not followed (lsetxattr). */
    char proc[PATH_MAX + 64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d/%s", dfd, base);
    rc = lsetxattr(proc, name, r->argv[2], r->argl[2], 0);
    int e = errno;
    close(dfd);
    errno = e;
  }
  if (rc < 0) {
    reply("error setxattr %s %s: %s", r->argv[0], name, strerror(errno));
    return;
  }
  reply("ok");
}

/* TARGET beneath the root, as an O_PATH descriptor of the directory itself. */
static int open_target(const char *target) {
  if (target[0] == '/' || target[0] == 0) {
    errno = EINVAL;
    return -1;
  }
  return open_dir_beneath(target);
}

static void do_mount(struct request *r) {
  if (r->argc != 4) fail("mount takes 4 arguments, got %d", r->argc);
  const char *type = r->argv[0], *source = r->argv[1], *target = r->argv[2], *data = r->argv[3];
  int fd = open_target(target);
  if (fd < 0) {
    reply("error mount on %s: %s", target, strerror(errno));
    return;
  }
  char fdpath[64];
  snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
  int rc;
  if (strcmp(type, "bind") == 0) {
    rc = mount(source, fdpath, NULL, MS_BIND | MS_REC, NULL);
    if (rc == 0 && strcmp(data, "ro") == 0) {
      /* The new mount is on top now: reopen the target to reach it. */
      int top = open_target(target);
      char toppath[64];
      snprintf(toppath, sizeof toppath, "/proc/self/fd/%d", top);
      rc = top < 0 ? -1 : mount(NULL, toppath, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
      if (top >= 0) close(top);
    }
  } else {
    rc = mount(source, fdpath, type, 0, data);
  }
  int saved = errno;
  close(fd);
  if (rc < 0) reply("error mount %s on %s: %s", type, target, strerror(saved));
  else reply("ok");
}

#if defined(FSOPEN_CLOEXEC) && __GLIBC_PREREQ(2, 36) /* glibc >= 2.36 declares the new mount API */
/* Appends the file system's own explanation of a failed step, if it left one in the context. */
static void reply_fs_error(int fsfd, const char *what, int err) {
  char log[512];
  ssize_t n = read(fsfd, log, sizeof log - 1);
  if (n > 0) {
    log[n] = 0;
    reply("error %s: %s (%s)", what, strerror(err), log);
  } else {
    reply("error %s: %s", what, strerror(err));
  }
}

static void do_fsmount(struct request *r) {
  if (r->argc != 3) fail("fsmount takes 3 arguments, got %d", r->argc);
  const char *type = r->argv[0], *target = r->argv[1];
  char *params = r->argv[2], *end = r->argv[2] + r->argl[2];
  int tfd = open_target(target);
  if (tfd < 0) {
    reply("error fsmount on %s: %s", target, strerror(errno));
    return;
  }
  int fsfd = fsopen(type, FSOPEN_CLOEXEC);
  if (fsfd < 0) {
    reply("error fsopen %s: %s", type, strerror(errno));
    close(tfd);
    return;
  }
  char what[320];
  /* argv[2] has a NUL after its last byte too (read_request), so every strlen stays inside. */
  for (char *p = params; p < end; p += strlen(p) + 1) {
    if (*p == 0) continue;
    char *eq = strchr(p, '=');
    int rc;
    if (eq) {
      *eq = 0;
      rc = fsconfig(fsfd, FSCONFIG_SET_STRING, p, eq + 1, 0);
      *eq = '=';
    } else {
      rc = fsconfig(fsfd, FSCONFIG_SET_FLAG, p, NULL, 0);
    }
    if (rc < 0) {
      snprintf(what, sizeof what, "fsconfig %s %.256s", type, p);
      goto err;
    }
  }
  snprintf(what, sizeof what, "creating the %s file system", type);
  if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) goto err;
  snprintf(what, sizeof what, "fsmount %s", type);
  int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
  if (mfd < 0) goto err;
  /* The detached mount goes onto the directory tfd names (beneath the root, as for mount). */
  int rc = move_mount(mfd, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  int saved = errno;
  close(mfd);
  close(fsfd);
  close(tfd);
  if (rc < 0) reply("error move_mount %s on %s: %s", type, target, strerror(saved));
  else reply("ok");
  return;
err:;
  int e = errno;
  reply_fs_error(fsfd, what, e);
  close(fsfd);
  close(tfd);
}
#else
static void do_fsmount(struct request *r) {
  (void)r;
  reply("error fsmount: %s", strerror(ENOSYS));
}
#endif

static void do_umount(struct request *r) {
  if (r->argc != 1) fail("umount takes 1 argument, got %d", r->argc);
  /* Our descriptor of each mount is the last reference to it once detached: closed after the
     answer, as its drop tears the file system down, and an overlay's teardown syncs its upper
     layer's file system (1-2 ms here) that the caller need not wait for. The next request waits
     for it (one at a time), so nothing mounts that layer again before. */
  int held[16], nheld = 0;
  int failed = 0, saved = 0;
  for (int i = 0; i < 16; i++) {
    int fd = open_target(r->argv[0]);
    if (fd < 0) {
      if (errno != ENOENT) failed = 1, saved = errno;
      break;
    }
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    /* Detached at once: the descriptor itself keeps the mount busy, so a plain umount2 fails
       with EBUSY every time. */
    if (umount2(fdpath, MNT_DETACH) < 0) {
      saved = errno;
      close(fd);
      failed = saved != EINVAL; /* EINVAL: not (or no longer) a mount point */
      break;
    }
    held[nheld++] = fd;
  }
  if (failed) reply("error umount %s: %s", r->argv[0], strerror(saved));
  else reply("ok");
  for (int i = 0; i < nheld; i++) close(held[i]);
}

/* Empties the directory `dir` (an fd we own, closed here) on device `dev`, mount `mnt`. Returns
   0, or -1 with *where set to a path below that could not go (a mount point, or an error). */
static int empty_dir(int dir, dev_t dev, uint64_t mnt, char *where, size_t wlen) {
  DIR *d = fdopendir(dir);
  if (!d) {
    close(dir);
    snprintf(where, wlen, "(open: %s)", strerror(errno));
    return -1;
  }
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT) continue;
    if (errno != EISDIR && errno != EPERM) {
      snprintf(where, wlen, "%s (%s)", e->d_name, strerror(errno));
      rc = -1;
      continue;
    }
    /* A directory: not one on another mount (a mount point), then its content, then it. */
    struct statx sx;
    int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0 || statx(sub, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_MNT_ID, &sx) < 0) {
      if (sub >= 0) close(sub);
      snprintf(where, wlen, "%s (%s)", e->d_name, strerror(errno));
      rc = -1;
      continue;
    }
    if (makedev(sx.stx_dev_major, sx.stx_dev_minor) != dev || ((sx.stx_mask & STATX_MNT_ID) && sx.stx_mnt_id != mnt) || (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
      close(sub);
      snprintf(where, wlen, "%s (a mount point)", e->d_name);
      rc = -1;
      continue;
    }
    char below[PATH_MAX / 2];
    if (empty_dir(sub, dev, mnt, below, sizeof below) < 0) {
      snprintf(where, wlen, "%s/%s", e->d_name, below);
      rc = -1;
      continue;
    }
    if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
      snprintf(where, wlen, "%s (%s)", e->d_name, strerror(errno));
      rc = -1;
    }
  }
  closedir(d);
  return rc;
}

static void do_rmtree(struct request *r) {
  if (r->argc != 1) fail("rmtree takes 1 argument, got %d", r->argc);
  char path[PATH_MAX], *base = NULL;
  int parent = open_parent(r->argv[0], path, sizeof path, &base);
  if (parent < 0) {
    if (errno == ENOENT) reply("ok");
    else reply("error rmtree %s: %s", r->argv[0], strerror(errno));
    return;
  }
  int dir = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct statx sx;
  if (dir < 0 || statx(dir, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_MNT_ID, &sx) < 0) {
    int e = errno;
    if (dir >= 0) close(dir);
    close(parent);
    if (e == ENOENT) reply("ok");
    else reply("error rmtree %s: %s", r->argv[0], strerror(e));
    return;
  }
  if (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) {
    close(dir);
    close(parent);
    reply("error rmtree %s: it is a mount point", r->argv[0]);
    return;
  }
  char where[PATH_MAX];
  where[0] = 0;
  int rc = empty_dir(dir, makedev(sx.stx_dev_major, sx.stx_dev_minor), (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0, where, sizeof where);
  if (rc == 0 && unlinkat(parent, base, AT_REMOVEDIR) < 0 && errno != ENOENT) {
    snprintf(where, sizeof where, ". (%s)", strerror(errno));
    rc = -1;
  }
  close(parent);
  if (rc < 0) reply("error rmtree %s: cannot remove %s", r->argv[0], where);
  else reply("ok");
}

static void put_hex(const char *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    putchar(digits[(unsigned char)p[i] >> 4]);
    putchar(digits[(unsigned char)p[i] & 15]);
  }
}

static void do_fdxattrs(struct request *r) {
  if (r->argc != 1) fail("fdxattrs takes 1 argument, got %d", r->argc);
  long long fd = arg_num(r, 0, 10);
  if (fd < 0 || fd > INT_MAX) {
    reply("error fdxattrs %s: not a descriptor", r->argv[0]);
    return;
  }
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/%d/fd/%lld", (int)getppid(), fd);
  /* The kernel's limits: 64 KiB of names (XATTR_LIST_MAX), 64 KiB a value (XATTR_SIZE_MAX). */
  static char names[65536], value[65536];
  /* listxattr, not llistxattr: the magic link itself must be followed to the file. */
  ssize_t n = listxattr(proc, names, sizeof names);
  if (n < 0 && errno == ENOTSUP) n = 0;
  if (n < 0) {
    reply("error fdxattrs %lld: %s", fd, strerror(errno));
    return;
  }
  fputs("ok", stdout);
  for (char *name = names; name < names + n; name += strlen(name) + 1) {
    ssize_t v = getxattr(proc, name, value, sizeof value);
    if (v < 0) continue; /* removed meanwhile */
    putchar(' ');
    put_hex(name, strlen(name));
    putchar('=');
    put_hex(value, (size_t)v);
  }
  putchar('\n');
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: berth-fsop LAYERDIR (requests on stdin, see the source)\n");
    return 2;
  }
  root_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) fail("cannot open %s: %s", argv[1], strerror(errno));
  umask(0);
  struct request r = {0};
  while (read_request(&r)) {
    if (strcmp(r.name, "mknod") == 0) do_mknod(&r);
    else if (strcmp(r.name, "setxattr") == 0) do_setxattr(&r);
    else if (strcmp(r.name, "mount") == 0) do_mount(&r);
    else if (strcmp(r.name, "umount") == 0) do_umount(&r);
    else if (strcmp(r.name, "fsmount") == 0) do_fsmount(&r);
    else if (strcmp(r.name, "fdxattrs") == 0) do_fdxattrs(&r);
    else if (strcmp(r.name, "rmtree") == 0) do_rmtree(&r);
    else fail("unknown request %s", r.name);
    free_request(&r);
  }
  return 0;
}
