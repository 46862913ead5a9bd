"""A NOTIFY_SOCKET of the test's own: binds a Unix datagram socket at argv[1]
and prints each message received as one JSON line. File descriptors passed
with a message (systemd-notify's BARRIER=1) are closed at once, which is how
the real service manager tells the sender its messages were read."""
import json
import os
import socket
import sys

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
print(json.dumps({"listening": path}), flush=True)
while True:
    data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 16)
    for fd in fds:
        os.close(fd)
    print(json.dumps({"text": data.decode("utf-8", "replace")}), flush=True)
