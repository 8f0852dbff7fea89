#!/usr/bin/env python3
"""Test helper: runs a command on a new pseudo-terminal, as a person at a terminal would
(`docker run -it`, `podman exec -it`), and drives it with expect/send steps.
Usage: pty-run.py JSON, where JSON is
  {"argv": [...], "env": {...}, "timeout": SECONDS, "size": [ROWS, COLS],
   "report_modes": BOOL, "steps": [{"expect": REGEX}, {"send": TEXT}, {"resize": [ROWS, COLS]}, ...]}
An "expect" step waits (up to the timeout) until the output read so far, after the previous
match, matches REGEX. "size" is the terminal's size at the start, "resize" changes it (the
command gets SIGWINCH). With "report_modes", stderr gets a line "pty-run: modes at the end:
icanon=N echo=N" (whether the command left its terminal cooked). Writes the whole transcript
to stdout; exits with the command's exit status, or 124 (and a message on stderr) if a step or
the command timed out."""
import fcntl, json, os, pty, re, select, signal, struct, sys, termios, time

cfg = json.loads(sys.argv[1])
deadline = time.monotonic() + cfg.get("timeout", 30)
env = dict(os.environ)
env.update(cfg.get("env", {}))
env.setdefault("TERM", "xterm")

def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


pid, master = pty.fork()
if pid == 0:
    if "size" in cfg:
        set_size(0, *cfg["size"])
    os.execvpe(cfg["argv"][0], cfg["argv"], env)

out = b""
pos = 0  # where the next expect starts looking


def read_some(wait):
    global out
    r, _, _ = select.select([master], [], [], wait)
    if not r:
        return True
    try:
        data = os.read(master, 4096)
    except OSError:  # EIO: the child side closed
        return False
    if not data:
        return False
    out += data
    return True


def give_up(why):
    sys.stdout.buffer.write(out)
    sys.stderr.write("pty-run: %s\n" % why)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    sys.exit(124)


for step in cfg.get("steps", []):
    if "expect" in step:
        rx = re.compile(step["expect"].encode())
        while True:
            m = rx.search(out, pos)
            if m:
                pos = m.end()
                break
            left = deadline - time.monotonic()
            if left <= 0:
                give_up("timed out waiting for %r" % step["expect"])
            if not read_some(min(left, 0.5)):
                m = rx.search(out, pos)
                if m:
                    pos = m.end()
                    break
                give_up("output ended before %r" % step["expect"])
    if "send" in step:
        os.write(master, step["send"].encode())
    if "resize" in step:
        set_size(master, *step["resize"])

# Drain until the command ends (its side of the terminal closes: EIO).
while read_some(max(0, deadline - time.monotonic())):
    if time.monotonic() >= deadline:
        give_up("timed out waiting for the command to end")
if cfg.get("report_modes"):
    # The master reports the modes its terminal was left in (Linux shares them between the two ends).
    lflag = termios.tcgetattr(master)[3]
    sys.stderr.write("pty-run: modes at the end: icanon=%d echo=%d\n" % (bool(lflag & termios.ICANON), bool(lflag & termios.ECHO)))
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() >= deadline:
        give_up("timed out waiting for the command to exit")
    time.sleep(0.05)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
