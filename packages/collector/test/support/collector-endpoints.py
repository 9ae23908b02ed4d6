# Traffic endpoints for the kernel-collector's end-to-end tests (test/collector-*.test.ts).
#
# Each mode makes loopback traffic with plain socket calls, so that the bytes and the datagrams
# are exactly those the test asserts, and prints one JSON line per step. The TCP modes then obey
# commands on stdin, one per line, answering each with a JSON line:
#
#   send N    sendall() N bytes            -> {"sent": N}
#   recv N    receive exactly N bytes      -> {"received": N}
#   close     close the connection         -> {"closed": true}
#   (end of input: exit)
#
#   python3 collector-endpoints.py tcp-listen HOST PORT     accept one connection (keep listening), then commands
#   python3 collector-endpoints.py tcp-connect HOST PORT    connect, then commands
#   python3 collector-endpoints.py tcp-refused HOST PORT    connect where nobody listens -> {"refused": true}
#   python3 collector-endpoints.py udp-pair HOST PORT_A PORT_B A_TO_B B_TO_A
#       two unconnected sockets: A sendto()s each size of A_TO_B (comma-separated) to B, B
#       recvfrom()s each, then B sendto()s each size of B_TO_A to A and A recvfrom()s them;
#       prints {"done": ...}, waits for a line on stdin, closes both.
#   python3 collector-endpoints.py tcp-many HOST COUNT PAUSE_MS
#       a listener and COUNT connections to it, PAUSE_MS apart: connection i carries 1000+i
#       bytes to the server and 500+i back, then both ends close; prints the client ports.
#   python3 collector-endpoints.py udp-many HOST COUNT PAUSE_MS
#       COUNT pairs of unconnected sockets, PAUSE_MS apart, one 100-byte datagram A->B and a
#       30-byte answer B->A each; prints {"pairs": [[portA, portB], ...]}, waits, closes them.
#
# Addresses are loopback only.

import json
import os
import socket
import sys
import time


def out(**fields):
    sys.stdout.write(json.dumps(fields) + '\n')
    sys.stdout.flush()


def family_of(host):
    return socket.AF_INET6 if ':' in host else socket.AF_INET


def recv_exactly(s, n):
    got = 0
    while got < n:
        d = s.recv(min(65536, n - got))
        if not d:
            raise RuntimeError('peer closed after %d of %d bytes' % (got, n))
        got += len(d)


def commands(conn):
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == 'send':
            n = int(words[1])
            conn.sendall(b's' * n)
            out(sent=n)
        elif words[0] == 'recv':
            n = int(words[1])
            recv_exactly(conn, n)
            out(received=n)
        elif words[0] == 'close':
            conn.close()
            out(closed=True)
        else:
            raise RuntimeError('unknown command %r' % line)


def tcp_listen(host, port):
    srv = socket.socket(family_of(host), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(1)
    out(pid=os.getpid(), listening=srv.getsockname()[1])
    conn, peer = srv.accept()
    # The listener stays open: the collector's scan of /proc tells a server's accepted socket
    # from a client's by a listener on its local port.
    out(pid=os.getpid(), local=list(conn.getsockname()[:2]), peer=list(peer[:2]))
    commands(conn)


def tcp_connect(host, port):
    conn = socket.socket(family_of(host), socket.SOCK_STREAM)
    conn.connect((host, int(port)))
    out(pid=os.getpid(), local=list(conn.getsockname()[:2]), peer=list(conn.getpeername()[:2]))
    commands(conn)


def tcp_refused(host, port):
    conn = socket.socket(family_of(host), socket.SOCK_STREAM)
    try:
        conn.connect((host, int(port)))
    except ConnectionRefusedError:
        out(pid=os.getpid(), refused=True)
        return
    raise RuntimeError('connect to port %s succeeded' % port)


def udp_pair(host, port_a, port_b, a_to_b, b_to_a):
    fam = family_of(host)
    a = socket.socket(fam, socket.SOCK_DGRAM)
    a.bind((host, int(port_a)))
    b = socket.socket(fam, socket.SOCK_DGRAM)
    b.bind((host, int(port_b)))
    sizes_ab = [int(x) for x in a_to_b.split(',') if x]
    sizes_ba = [int(x) for x in b_to_a.split(',') if x]
    for n in sizes_ab:
        a.sendto(b'a' * n, b.getsockname())
        d, src = b.recvfrom(65536)
        if len(d) != n or src[1] != int(port_a):
            raise RuntimeError('B got %d bytes from %r' % (len(d), src))
    for n in sizes_ba:
        b.sendto(b'b' * n, a.getsockname())
        d, src = a.recvfrom(65536)
        if len(d) != n or src[1] != int(port_b):
            raise RuntimeError('A got %d bytes from %r' % (len(d), src))
    out(pid=os.getpid(), done=True)
    sys.stdin.readline()
    a.close()
    b.close()
    out(closed=True)


def udp_many(host, count, pause_ms):
    """COUNT pairs of unconnected sockets, one after the other, PAUSE_MS apart: in each, A
    sendto()s 100 bytes to B, B recvfrom()s it and sendto()s 30 bytes back. Prints the pairs'
    ports, waits for a line on stdin, closes them all."""
    fam = family_of(host)
    pairs = []
    keep = []
    for _ in range(int(count)):
        a = socket.socket(fam, socket.SOCK_DGRAM)
        a.bind((host, 0))
        b = socket.socket(fam, socket.SOCK_DGRAM)
        b.bind((host, 0))
        a.sendto(b'a' * 100, b.getsockname())
        d, src = b.recvfrom(65536)
        b.sendto(b'b' * 30, src)
        a.recvfrom(65536)
        pairs.append([a.getsockname()[1], b.getsockname()[1]])
        keep += [a, b]
        time.sleep(int(pause_ms) / 1000.0)
    out(pid=os.getpid(), pairs=pairs)
    sys.stdin.readline()
    for s in keep:
        s.close()
    out(closed=True)


def tcp_many(host, count, pause_ms):
    """A listener and COUNT connections to it, one after the other, PAUSE_MS apart: the client
    sends 1000 + i bytes, the server answers 500 + i, both close. Prints the client ports."""
    fam = family_of(host)
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(16)
    ports = []
    for i in range(int(count)):
        c = socket.socket(fam, socket.SOCK_STREAM)
        # bind() first: it never picks a port still held by an earlier connection in TIME_WAIT,
        # which connect() may reuse on loopback (tcp_tw_reuse), making two connections one 4-tuple.
        c.bind((host, 0))
        c.connect(srv.getsockname()[:2])
        a, _ = srv.accept()
        c.sendall(b'c' * (1000 + i))
        recv_exactly(a, 1000 + i)
        a.sendall(b's' * (500 + i))
        recv_exactly(c, 500 + i)
        ports.append(c.getsockname()[1])
        c.close()
        a.close()
        time.sleep(int(pause_ms) / 1000.0)
    out(pid=os.getpid(), server=srv.getsockname()[1], clients=ports)
    srv.close()


MODES = {'tcp-listen': tcp_listen, 'tcp-connect': tcp_connect, 'tcp-refused': tcp_refused, 'udp-pair': udp_pair, 'udp-many': udp_many, 'tcp-many': tcp_many}

if __name__ == '__main__':
    MODES[sys.argv[1]](*sys.argv[2:])
