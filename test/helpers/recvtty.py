#!/usr/bin/env python3
"""Test helper, like runc's tests/cmd/recvtty: listen on a unix socket for the pty master a
runtime sends with SCM_RIGHTS (--console-socket), then copy the terminal's output to stdout
until the other side closes. Node cannot receive fds over unix sockets, Python can.
Usage: recvtty.py SOCKET_PATH [INPUT]"""
import os, socket, sys

path = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
print("listening", flush=True)
conn, _ = server.accept()
msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
conn.close()
server.close()
master = fds[0]
sys.stderr.write("received %s\n" % msg.decode())
if len(sys.argv) > 2:
    os.write(master, sys.argv[2].encode())
while True:
    try:
        data = os.read(master, 4096)
    except OSError:  # EIO once the last slave fd closes
        break
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
