/*
 * berth-idmap: idmapped bind mounts of image layers, for containers with their own user
 * namespace (--userns). The layers on disk stay owned by host root and shared by every
 * container; an idmapped mount shows them to the container's range instead (on-disk uid 0
 * appears as BASE), so root in the container owns its image files without a chowned copy.
 *
 *   berth-idmap UID_BASE GID_BASE COUNT TARGET_DIR SOURCE...
 *
 * Mounts SOURCE i (0-based) idmapped at TARGET_DIR/i (created if missing). The mapping is
 * "0 BASE COUNT" for uids and gids. The kernel takes the mapping from a user namespace, so we
 * make one: a child unshares a user namespace and waits, we write its maps (root may), open
 * its ns file, and let it go. overlayfs cannot be idmapped itself (EINVAL), but it accepts
 * idmapped lower layers, which is how the engine uses these.
 * Prints nothing on success; an error names the step and exits 1 (mounts made so far are
 * detached again).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char mounted[64][4096];
static int nmounted;

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "berth-idmap: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  for (int i = nmounted - 1; i >= 0; i--) umount2(mounted[i], MNT_DETACH);
  exit(1);
}

static unsigned long parse_number(const char *text, const char *what) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(text, &end, 10);
  if (errno || *end || end == text || v > 0xffffffffUL) fail("bad %s: %s", what, text);
  return v;
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail("open %s: %s", path, strerror(errno));
  ssize_t n = write(fd, text, strlen(text));
  int saved = errno;
  close(fd);
  if (n != (ssize_t)strlen(text)) fail("write %s: %s", path, strerror(saved));
}

/* A user namespace with the mapping; returns an fd for it. */
static int make_userns(unsigned long uid_base, unsigned long gid_base, unsigned long count) {
  int go[2];
  if (pipe2(go, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));
  pid_t child = fork();
  if (child < 0) fail("fork: %s", strerror(errno));
  if (child == 0) {
    close(go[1]);
    if (unshare(CLONE_NEWUSER) < 0) _exit(1);
    char c;
    /* Wait until the parent has what it needs (it closes the pipe). */
    (void)!read(go[0], &c, 1);
    _exit(0);
  }
  close(go[0]);
  char path[64], map[96];
  /* The child must have unshared before its maps can be written: poll its ns link. */
  char self_ns[64], child_ns[64];
  snprintf(path, sizeof path, "/proc/%d/ns/user", child);
  for (int i = 0; i < 2000; i++) {
    ssize_t a = readlink("/proc/self/ns/user", self_ns, sizeof self_ns - 1);
    ssize_t b = readlink(path, child_ns, sizeof child_ns - 1);
    if (a > 0 && b > 0 && (self_ns[a] = 0, child_ns[b] = 0, strcmp(self_ns, child_ns) != 0)) break;
    usleep(500);
  }
  snprintf(map, sizeof map, "0 %lu %lu\n", uid_base, count);
  snprintf(path, sizeof path, "/proc/%d/uid_map", child);
  write_file(path, map);
  snprintf(map, sizeof map, "0 %lu %lu\n", gid_base, count);
  snprintf(path, sizeof path, "/proc/%d/gid_map", child);
  write_file(path, map);
  snprintf(path, sizeof path, "/proc/%d/ns/user", child);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int saved = errno;
  close(go[1]);
  waitpid(child, NULL, 0);
  if (fd < 0) fail("open %s: %s", path, strerror(saved));
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: berth-idmap UID_BASE GID_BASE COUNT TARGET_DIR SOURCE...\n");
    return 2;
  }
  unsigned long uid_base = parse_number(argv[1], "uid base");
  unsigned long gid_base = parse_number(argv[2], "gid base");
  unsigned long count = parse_number(argv[3], "count");
  if (count == 0) fail("count must not be 0");
  const char *target_dir = argv[4];
  if (argc - 5 > (int)(sizeof mounted / sizeof mounted[0])) fail("too many layers");
  int userns = make_userns(uid_base, gid_base, count);
  if (mkdir(target_dir, 0700) < 0 && errno != EEXIST) fail("mkdir %s: %s", target_dir, strerror(errno));
  for (int i = 5; i < argc; i++) {
    char target[4096];
    snprintf(target, sizeof target, "%s/%d", target_dir, i - 5);
    if (mkdir(target, 0700) < 0 && errno != EEXIST) fail("mkdir %s: %s", target, strerror(errno));
    int tree = syscall(SYS_open_tree, AT_FDCWD, argv[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0) fail("open_tree %s: %s", argv[i], strerror(errno));
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, .userns_fd = (unsigned)userns};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) fail("idmap %s: %s", argv[i], strerror(errno));
    if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) fail("mount %s on %s: %s", argv[i], target, strerror(errno));
    close(tree);
    snprintf(mounted[nmounted++], sizeof mounted[0], "%s", target);
  }
  return 0;
}
