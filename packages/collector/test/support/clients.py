# Child processes for the kernel tests (packages/collector/test/kernel-*.test.ts).
#
# Each mode makes loopback traffic with plain socket calls (so the bytes and the syscalls are
# exactly what the test asserts), prints one JSON line at each checkpoint, and, where the test
# must look at the kernel's maps while sockets are still open, waits for a line on stdin first.
# Addresses are loopback only (127.0.0.1, ::1), or the test's own network namespace's.
#
#   python3 clients.py <mode> [args...]     (run by test/support/children.ts)

import json
import os
import select
import socket
import sys
import threading
import time


def out(**fields):
    sys.stdout.write(json.dumps(fields) + '\n')
    sys.stdout.flush()


def wait_for_go():
    sys.stdin.readline()


def family(name):
    return socket.AF_INET6 if name == '6' else socket.AF_INET


def recv_exactly(s, n):
    got = 0
    while got < n:
        d = s.recv(min(65536, n - got))
        if not d:
            raise RuntimeError('peer closed after %d of %d bytes' % (got, n))
        got += len(d)
    return got


def tcp_client(fam, host, port, n, m):
    """Connect, send exactly n bytes, receive exactly m, report, wait, close."""
    c = socket.socket(family(fam), socket.SOCK_STREAM)
    c.connect((host, int(port)))
    c.sendall(b'n' * int(n))
    recv_exactly(c, int(m))
    out(pid=os.getpid(), local=list(c.getsockname()[:2]))
    wait_for_go()
    c.close()
    out(closed=True)


def udp_client(fam, host, port, sizes):
    """Unconnected: sendto each size, recvfrom each reply; report, wait, close."""
    c = socket.socket(family(fam), socket.SOCK_DGRAM)
    replies = []
    for n in [int(x) for x in sizes.split(',')]:
        c.sendto(b'u' * n, (host, int(port)))
        d, _ = c.recvfrom(65536)
        replies.append(len(d))
    out(pid=os.getpid(), local=list(c.getsockname()[:2]), replies=replies)
    wait_for_go()
    c.close()
    out(closed=True)


def udp_churn(fam, host, port, count, pause_ms):
    """count sockets one after another, each: sendto one datagram of 100 + i bytes, close, pause
    (so that a closed socket's memory may be freed and reused by the next one); report the ports."""
    ports = []
    for i in range(int(count)):
        c = socket.socket(family(fam), socket.SOCK_DGRAM)
        c.sendto(b'c' * (100 + i), (host, int(port)))
        ports.append(c.getsockname()[1])
        c.close()
        time.sleep(int(pause_ms) / 1000)
    out(pid=os.getpid(), ports=ports)


def udp_connected(fam, host):
    """A server socket and a connected client in one process:
    client send(111) -> server recv() without asking the source (remote unknown),
    client send(222) -> server recvfrom(), server sendto(33) -> client recv()."""
    srv = socket.socket(family(fam), socket.SOCK_DGRAM)
    srv.bind((host, 0))
    cc = socket.socket(family(fam), socket.SOCK_DGRAM)
    cc.connect(srv.getsockname()[:2])
    cc.send(b'c' * 111)
    a = len(srv.recv(2048))
    cc.send(b'c' * 222)
    d, addr = srv.recvfrom(2048)
    srv.sendto(b'k' * 33, addr)
    k = len(cc.recv(2048))
    out(pid=os.getpid(), server=list(srv.getsockname()[:2]), client=list(cc.getsockname()[:2]), got=[a, len(d), k])
    wait_for_go()
    cc.close()
    srv.close()
    out(closed=True)


def connect(fam, host, port):
    """One blocking connect; report its errno (0 = connected) and close."""
    c = socket.socket(family(fam), socket.SOCK_STREAM)
    err = c.connect_ex((host, int(port)))
    out(pid=os.getpid(), err=err)
    c.close()


def syn_timeout(host, port):
    """Non-blocking connect with one SYN retry (TCP_SYNCNT=1): learn the local port while the
    SYN is out, then wait for the kernel to give up."""
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
    c.setblocking(False)
    started = c.connect_ex((host, int(port)))
    local = list(c.getsockname()[:2])
    t0 = time.time()
    select.select([], [c], [], 20)
    err = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    out(pid=os.getpid(), local=local, started=started, err=err, seconds=round(time.time() - t0, 2))
    c.close()


def fork_accept(fam, host, count='1'):
    """Listen here, accept in a forked child: the accepted socket's owner is not the listener's.
    For each of `count` connections, one after the other, the child receives 5 bytes, answers 6
    and waits for the peer to close; then it exits."""
    srv = socket.socket(family(fam), socket.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(4)
    pid = os.fork()
    if pid == 0:
        try:
            for _ in range(int(count)):
                a, _ = srv.accept()
                recv_exactly(a, 5)
                a.sendall(b'world!')
                a.recv(16)  # EOF: the peer closed
                a.close()
        finally:
            os._exit(0)
    out(pid=os.getpid(), child=pid, port=srv.getsockname()[1])
    os.waitpid(pid, 0)
    srv.close()
    out(done=True)


def burst(host, count):
    """count short connections to a listener of this process: connect, accept, close both."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(64)
    port = srv.getsockname()[1]
    for _ in range(int(count)):
        c = socket.create_connection((host, port))
        a, _ = srv.accept()
        c.close()
        a.close()
    srv.close()
    out(pid=os.getpid(), port=port)


def hold(host, count):
    """count connections to a listener of this process, all open at once; report the client
    ends' local ports, wait, then close them all."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(int(count))
    port = srv.getsockname()[1]
    pairs = []
    for _ in range(int(count)):
        c = socket.create_connection((host, port))
        a, _ = srv.accept()
        pairs.append((c, a))
    out(pid=os.getpid(), port=port, clients=[c.getsockname()[1] for c, _ in pairs])
    wait_for_go()
    for c, a in pairs:
        c.close()
        a.close()
    srv.close()
    out(done=True)


def threads_fork(code):
    """Four threads (which must not show as processes), then one forked child exiting with code."""
    ts = [threading.Thread(target=time.sleep, args=(0.05,)) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    pid = os.fork()
    if pid == 0:
        os._exit(int(code))
    _, status = os.waitpid(pid, 0)
    out(pid=os.getpid(), child=pid, status=status)


MODES = {
    'tcp-client': tcp_client,
    'udp-client': udp_client,
    'udp-connected': udp_connected,
    'udp-churn': udp_churn,
    'connect': connect,
    'syn-timeout': syn_timeout,
    'fork-accept': fork_accept,
    'burst': burst,
    'hold': hold,
    'threads-fork': threads_fork,
}

if __name__ == '__main__':
    MODES[sys.argv[1]](*sys.argv[2:])
