/*
 * Filesystem ops of the container stage. Paths in ops are container paths ("/dev/pts");
 * before pivot_root they are resolved inside the rootfs with openat2(RESOLVE_IN_ROOT),
 * so a symlink in an image can never send a mount or a device node outside the rootfs.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* From linux/mount.h, which clashes with sys/mount.h on older glibc. */
struct berth_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

static int root_fd = -1; /* the container's root: the rootfs before pivot, "/" after */

enum create_kind { CREATE_NONE, CREATE_DIR, CREATE_FILE };

static int open_in_root(const char *path, enum create_kind create);

/* Opens the parent directory of path (creating it) and returns the last component. */
static int open_parent(const char *path, const char **name_out) {
  static char parent[4096];
  const char *slash = strrchr(path, '/');
  if (!slash) {
    *name_out = path;
    return dup(root_fd);
  }
  size_t len = (size_t)(slash - path);
  if (len >= sizeof parent) fail("path too long: %s", path);
  char *copy = strndup(path, len);
  *name_out = slash + 1;
  int fd = len == 0 ? dup(root_fd) : open_in_root(copy, CREATE_DIR);
  free(copy);
  return fd;
}

static int open_in_root(const char *path, enum create_kind create) {
  struct open_how how = {
      .flags = O_PATH | O_CLOEXEC,
      .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
  if (fd >= 0 || errno != ENOENT || create == CREATE_NONE) return fd;
  const char *name;
  int parent = open_parent(path, &name);
  if (parent < 0) return -1;
  if (create == CREATE_DIR) {
    if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST) fail_errno("mkdir %s in rootfs", path);
  } else {
    int f = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f < 0 && errno != EEXIST) fail_errno("create %s in rootfs", path);
    if (f >= 0) close(f);
  }
  close(parent);
  return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

static void fd_path(int fd, char *buf, size_t len) { snprintf(buf, len, "/proc/self/fd/%d", fd); }

/* Mount flags a bind remount must keep (the kernel locks them in user namespaces). */
static unsigned long locked_flags(const char *target) {
  struct statvfs sv;
  unsigned long flags = 0;
  if (statvfs(target, &sv) < 0) return 0;
  if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

static int bind_remount(const char *target, unsigned long flags) {
  unsigned long f = MS_BIND | MS_REMOUNT | flags;
  if (mount(NULL, target, NULL, f, NULL) == 0) return 0;
  if (errno != EPERM) return -1;
  return mount(NULL, target, NULL, f | locked_flags(target), NULL);
}

static const unsigned long BIND_KEEP = MS_BIND | MS_REC;
static const unsigned long PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

/* mount SRC DST TYPE FLAGS DATA CREATE */
static void do_mount(const struct plan_op *op) {
  need_args(op, 6);
  const char *src = op->argv[0], *dst = op->argv[1], *type = op->argv[2], *data = op->argv[4];
  unsigned long flags = (unsigned long)arg_u64(op, 3);
  enum create_kind create = !strcmp(op->argv[5], "file") ? CREATE_FILE
                            : !strcmp(op->argv[5], "dir") ? CREATE_DIR
                                                          : CREATE_NONE;
  int fd = open_in_root(dst, create);
  if (fd < 0) fail_errno("mount %s: target %s", src, dst);
  char target[64];
  fd_path(fd, target, sizeof target);
  if (flags & MS_BIND) {
    if (mount(src, target, NULL, flags & BIND_KEEP, NULL) < 0) fail_errno("bind mount %s on %s", src, dst);
    close(fd);
    /* The fd still names the covered directory: reopen to reach the new mount. */
    fd = open_in_root(dst, CREATE_NONE);
    if (fd < 0) fail_errno("reopen %s", dst);
    fd_path(fd, target, sizeof target);
    unsigned long extra = flags & ~(BIND_KEEP | PROPAGATION | MS_REMOUNT);
    if (extra && bind_remount(target, extra | (flags & MS_REC)) < 0) fail_errno("remount %s", dst);
  } else {
    unsigned long mflags = flags & ~PROPAGATION;
    if (mount(src, target, type, mflags, *data ? data : NULL) < 0) {
      /* sysfs cannot be mounted without owning the network namespace: bind the host's. */
      if (errno == EPERM && !strcmp(type, "sysfs")) {
        if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) < 0) fail_errno("bind /sys on %s", dst);
        close(fd);
        fd = open_in_root(dst, CREATE_NONE);
        fd_path(fd, target, sizeof target);
        bind_remount(target, (mflags & ~MS_REC) | MS_REC);
      } else {
        fail_errno("mount %s (%s) on %s", src, type, dst);
      }
    }
  }
  close(fd);
}

/* outside_proc DST SHOWN: refuse a mount whose target lies on a procfs (runc's checkProcMount),
   found the way the mount will find it, symlinks resolved in the root; a target not there yet
   is judged by the deepest part that is. */
static void do_outside_proc(const struct plan_op *op) {
  need_args(op, 2);
  char path[4096];
  snprintf(path, sizeof path, "%s", op->argv[0]);
  int fd;
  while ((fd = open_in_root(path, CREATE_NONE)) < 0) {
    char *slash = strrchr(path, '/');
    if (errno != ENOENT || !slash || slash == path) return;
    *slash = '\0';
  }
  struct statfs st;
  int on_proc = fstatfs(fd, &st) == 0 && st.f_type == PROC_SUPER_MAGIC;
  close(fd);
  if (on_proc) fail("\"%s\" cannot be mounted because it is inside /proc", op->argv[1]);
}

/* propagate DST FLAGS: MS_SHARED/MS_SLAVE/... (| MS_REC) on a mount already made. */
static void do_propagate(const struct plan_op *op) {
  need_args(op, 2);
  int fd = open_in_root(op->argv[0], CREATE_NONE);
  if (fd < 0) fail_errno("propagation of %s", op->argv[0]);
  char target[64];
  fd_path(fd, target, sizeof target);
  if (mount(NULL, target, NULL, (unsigned long)arg_u64(op, 1), NULL) < 0)
    fail_errno("set propagation of %s", op->argv[0]);
  close(fd);
}

/* setattr DST SET CLR: recursive mount attributes (rro, rnosuid...) through mount_setattr. */
static void do_setattr(const struct plan_op *op) {
  need_args(op, 3);
  int fd = open_in_root(op->argv[0], CREATE_NONE);
  if (fd < 0) fail_errno("mount attributes of %s", op->argv[0]);
  struct berth_mount_attr attr = {.attr_set = arg_u64(op, 1), .attr_clr = arg_u64(op, 2)};
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
    fail_errno("mount_setattr %s", op->argv[0]);
  close(fd);
}

/* Makes the mount holding `path` private: pivot_root refuses a shared parent mount. */
static void make_parent_mount_private(const char *path) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) fail_errno("open mountinfo");
  char line[4096], best[4096] = "/";
  size_t best_len = 1;
  while (fgets(line, sizeof line, f)) {
    char mp[4096];
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1) continue;
    size_t len = strlen(mp);
    if (len > best_len && !strncmp(path, mp, len) && (path[len] == '/' || path[len] == '\0') &&
        strcmp(mp, path) != 0) {
      strcpy(best, mp);
      best_len = len;
    }
  }
  fclose(f);
  if (mount(NULL, best, NULL, MS_PRIVATE, NULL) < 0) fail_errno("make %s private", best);
}

/* rootfs PATH PROPAGATION: prepare the rootfs as a mount point of its own. */
static void do_rootfs(const struct plan_op *op) {
  need_args(op, 2);
  const char *rootfs = op->argv[0];
  if (mount(NULL, "/", NULL, (unsigned long)arg_u64(op, 1), NULL) < 0) fail_errno("set propagation of /");
  make_parent_mount_private(rootfs);
  if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) fail_errno("bind mount rootfs %s", rootfs);
  root_fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) fail_errno("open rootfs %s", rootfs);
}

/* rootfs_shared PATH: no mount namespace of our own: touch nothing outside the rootfs. */
static void do_rootfs_shared(const struct plan_op *op) {
  need_args(op, 1);
  root_fd = open(op->argv[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) fail_errno("open rootfs %s", op->argv[0]);
}

static void do_chroot(void) {
  if (fchdir(root_fd) < 0) fail_errno("chdir to rootfs");
  if (chroot(".") < 0) fail_errno("chroot");
  if (chdir("/") < 0) fail_errno("chdir /");
  close(root_fd);
  root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static void do_pivot_root(void) {
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) fail_errno("open /");
  if (fchdir(root_fd) < 0) fail_errno("chdir to rootfs");
  if (syscall(SYS_pivot_root, ".", ".") < 0) fail_errno("pivot_root");
  /* The old root is now stacked on "."; detach it without touching the host's mounts. */
  if (fchdir(oldroot) < 0) fail_errno("fchdir old root");
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) fail_errno("make old root slave");
  if (umount2(".", MNT_DETACH) < 0) fail_errno("detach old root");
  if (chdir("/") < 0) fail_errno("chdir /");
  close(oldroot);
  close(root_fd);
  root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* --no-pivot: move the rootfs over / and chroot (for ramfs roots, where pivot_root fails). */
static void do_move_root(void) {
  if (fchdir(root_fd) < 0) fail_errno("chdir to rootfs");
  if (mount(".", "/", NULL, MS_MOVE, NULL) < 0) fail_errno("move rootfs to /");
  if (chroot(".") < 0) fail_errno("chroot");
  if (chdir("/") < 0) fail_errno("chdir /");
  close(root_fd);
  root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* mknod PATH TYPE MAJOR MINOR MODE UID GID */
static void do_mknod(const struct plan_op *op) {
  need_args(op, 7);
  const char *name;
  int parent = open_parent(op->argv[0], &name);
  if (parent < 0) fail_errno("device %s: parent directory", op->argv[0]);
  mode_t type = op->argv[1][0] == 'b' ? S_IFBLK : op->argv[1][0] == 'p' ? S_IFIFO : S_IFCHR;
  mode_t mode = (mode_t)arg_u64(op, 4) & 07777;
  dev_t dev = makedev((unsigned)arg_u64(op, 2), (unsigned)arg_u64(op, 3));
  unlinkat(parent, name, 0); /* an image may ship a plain file where a device belongs */
  if (mknodat(parent, name, type | mode, dev) < 0) fail_errno("mknod %s", op->argv[0]);
  if (fchownat(parent, name, (uid_t)arg_u64(op, 5), (gid_t)arg_u64(op, 6), AT_SYMLINK_NOFOLLOW) < 0)
    fail_errno("chown %s", op->argv[0]);
  int fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  char path[64];
  fd_path(fd, path, sizeof path);
  if (fd < 0 || chmod(path, mode) < 0) fail_errno("chmod %s", op->argv[0]);
  close(fd);
  close(parent);
}

/* symlink TARGET PATH */
static void do_symlink(const struct plan_op *op) {
  need_args(op, 2);
  const char *name;
  int parent = open_parent(op->argv[1], &name);
  if (parent < 0) fail_errno("symlink %s: parent directory", op->argv[1]);
  if (symlinkat(op->argv[0], parent, name) < 0 && errno != EEXIST) fail_errno("symlink %s", op->argv[1]);
  close(parent);
}

/* mask PATH: hide a file behind /dev/null, a directory behind an empty read-only tmpfs. */
static void do_mask(const struct plan_op *op) {
  need_args(op, 1);
  const char *path = op->argv[0];
  struct stat st;
  if (stat(path, &st) < 0) {
    if (errno == ENOENT) return;
    fail_errno("mask %s", path);
  }
  int r = S_ISDIR(st.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL)
                              : mount("/dev/null", path, NULL, MS_BIND, NULL);
  if (r < 0) fail_errno("mask %s", path);
}

/* readonly PATH: bind the path onto itself read-only, keeping nosuid, nodev and noexec of the
   mount it is on (as runc's readonlyPath does: /proc/sys stays noexec). */
static void do_readonly(const struct plan_op *op) {
  need_args(op, 1);
  const char *path = op->argv[0];
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
    if (errno == ENOENT) return;
    fail_errno("bind %s read-only", path);
  }
  if (bind_remount(path, MS_RDONLY | MS_REC | locked_flags(path)) < 0) fail_errno("remount %s read-only", path);
}

int run_mount_op(const struct plan_op *op) {
  const char *n = op->name;
  if (!strcmp(n, "rootfs")) do_rootfs(op);
  else if (!strcmp(n, "mount")) do_mount(op);
  else if (!strcmp(n, "outside_proc")) do_outside_proc(op);
  else if (!strcmp(n, "propagate")) do_propagate(op);
  else if (!strcmp(n, "setattr")) do_setattr(op);
  else if (!strcmp(n, "mknod")) do_mknod(op);
  else if (!strcmp(n, "symlink")) do_symlink(op);
  else if (!strcmp(n, "rootfs_shared")) do_rootfs_shared(op);
  else if (!strcmp(n, "chroot")) do_chroot();
  else if (!strcmp(n, "pivot_root")) do_pivot_root();
  else if (!strcmp(n, "move_root")) do_move_root();
  else if (!strcmp(n, "remount")) {
    need_args(op, 2);
    int fd = open_in_root(op->argv[0], CREATE_NONE);
    char target[64];
    fd_path(fd, target, sizeof target);
    if (fd < 0 || bind_remount(target, (unsigned long)arg_u64(op, 1)) < 0) fail_errno("remount %s", op->argv[0]);
    close(fd);
  } else if (!strcmp(n, "mkdir_all")) {
    /* mkdir_all PATH: made beneath the container's root (openat2 RESOLVE_IN_ROOT), 0755 */
    need_args(op, 1);
    int fd = open_in_root(op->argv[0], CREATE_DIR);
    if (fd < 0) fail_errno("mkdir %s in rootfs", op->argv[0]);
    close(fd);
  } else if (!strcmp(n, "mask")) do_mask(op);
  else if (!strcmp(n, "readonly")) do_readonly(op);
  else if (!strcmp(n, "readonly_root")) {
    if (bind_remount("/", MS_RDONLY) < 0) fail_errno("remount / read-only");
  } else if (!strcmp(n, "root_propagation")) {
    if (mount(NULL, "/", NULL, (unsigned long)arg_u64(op, 0), NULL) < 0) fail_errno("propagation of /");
  } else return 0;
  return 1;
}
