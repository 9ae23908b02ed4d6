# Loopback scenario for bpf/.output/ebpf_net_probe (127.0.0.1 / ::1 only).
# Run: bpf/.output/ebpf_net_probe -q -- python3 bpf/tools/scenarios/tcp_hold.py
import socket, threading, sys, time
N, M, HOLD = 2000011, 54321, float(sys.argv[1]) if len(sys.argv) > 1 else 4
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(8); port = srv.getsockname()[1]
cl = socket.create_connection(('127.0.0.1', port)); c, _ = srv.accept()
cl.sendall(b'x' * N)
got = 0
while got < N: got += len(c.recv(1 << 20))
c.sendall(b'y' * M)
got2 = 0
while got2 < M: got2 += len(cl.recv(1 << 20))
print('HOLD client', cl.getsockname(), 'server', c.getsockname(), 'srv got', got, 'cl got', got2, flush=True)
time.sleep(HOLD)
cl.close(); c.close(); srv.close()
