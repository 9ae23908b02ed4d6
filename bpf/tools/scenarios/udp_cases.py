# Loopback scenario for bpf/.output/ebpf_net_probe (127.0.0.1 / ::1 only).
# Run: bpf/.output/ebpf_net_probe -q -- python3 bpf/tools/scenarios/udp_cases.py
import socket, time, os
def log(*a): print('CASE', *a, flush=True)
# a. unconnected client <-> unconnected server (recvfrom/sendto)
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); srv.bind(('127.0.0.1', 0)); sp = srv.getsockname()[1]
cl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for n in (100, 200, 300):
    cl.sendto(b'q' * n, ('127.0.0.1', sp))
    d, addr = srv.recvfrom(2048)
    srv.sendto(b'r' * 50, addr)
    cl.recvfrom(2048)
log('a client', cl.getsockname(), 'server', srv.getsockname())
# second client to same server (server counts per remote)
cl2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
cl2.sendto(b'w' * 1000, ('127.0.0.1', sp)); srv.recvfrom(2048)
log('a2 client', cl2.getsockname())
# b. connected client: send()/recv() without addresses; server recv() without address
cc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); cc.connect(('127.0.0.1', sp))
cc.send(b'c' * 111); d = srv.recv(2048)           # server: recv() without source address -> unknown remote
cc.send(b'c' * 222); d, a = srv.recvfrom(2048)
srv.sendto(b'k' * 33, a); cc.recv(2048)
log('b connected client', cc.getsockname())
# d. IPv6
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s6.bind(('::1', 0)); p6 = s6.getsockname()[1]
c6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
c6.sendto(b'6' * 666, ('::1', p6)); d, a6 = s6.recvfrom(2048)
log('d v6 client', c6.getsockname()[:2], 'server', p6)
time.sleep(0.3)
for s in (cl, cl2, cc, c6, s6): s.close()
log('closed all but server'); time.sleep(0.2)
