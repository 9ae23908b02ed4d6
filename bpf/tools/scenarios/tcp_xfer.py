# Loopback scenario for bpf/.output/ebpf_net_probe (127.0.0.1 / ::1 only).
# Run: bpf/.output/ebpf_net_probe -q -- python3 bpf/tools/scenarios/tcp_xfer.py
import socket, threading, sys, os
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000003
M = int(sys.argv[2]) if len(sys.argv) > 2 else 123457
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 0)); srv.listen(8); port = srv.getsockname()[1]
def serve():
    c, _ = srv.accept()
    got = 0
    while got < N:
        b = c.recv(65536)
        if not b: break
        got += len(b)
    c.sendall(b'y' * M)
    c.close()
    print('server got', got, 'pid', os.getpid(), flush=True)
t = threading.Thread(target=serve); t.start()
cl = socket.create_connection(('127.0.0.1', port))
print('client port', cl.getsockname()[1], 'server port', port, flush=True)
cl.sendall(b'x' * N)
got = 0
while True:
    b = cl.recv(65536)
    if not b: break
    got += len(b)
cl.close(); t.join(); srv.close()
print('client got', got, flush=True)
