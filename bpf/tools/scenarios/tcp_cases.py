# Loopback scenario for bpf/.output/ebpf_net_probe (127.0.0.1 / ::1 only).
# Run: bpf/.output/ebpf_net_probe -q -- python3 bpf/tools/scenarios/tcp_cases.py
import socket, struct, time, os, errno, sys
def log(*a): print('CASE', *a, flush=True)

# 1. refused: nothing listens
s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close()
c = socket.socket()
try: c.connect(('127.0.0.1', p))
except OSError as e: log('refused', c.getsockname(), e.errno)
c.close()

# 2. reset sent: server closes with unread data -> RST to client
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(4); sp = srv.getsockname()[1]
c = socket.create_connection(('127.0.0.1', sp)); a, _ = srv.accept()
c.sendall(b'z' * 1000); time.sleep(0.1)
log('unread-close client', c.getsockname(), 'server', a.getsockname())
a.close(); time.sleep(0.1)
try: c.recv(10)
except OSError as e: log('client recv err', e.errno)
c.close()

# 3. SO_LINGER 0 on the client: client sends RST
c = socket.create_connection(('127.0.0.1', sp)); a, _ = srv.accept()
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
log('linger0 client', c.getsockname())
c.close(); time.sleep(0.1)
try: a.recv(10)
except OSError as e: log('server recv err', e.errno)
a.close(); srv.close()

# 4. SYN timeout: accept queue full (listen(0), one pending connection), TCP_SYNCNT=1
full = socket.socket(); full.bind(('127.0.0.1', 0)); full.listen(0); fp = full.getsockname()[1]
filler = [socket.create_connection(('127.0.0.1', fp))]
time.sleep(0.05)
c = socket.socket(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
t0 = time.time()
try: c.connect(('127.0.0.1', fp)); log('syn-timeout case connected?!')
except OSError as e: log('syn timeout', c.getsockname(), e.errno, round(time.time() - t0, 1), 's')
c.close()

# 5. connect aborted: non-blocking connect to the full listener, close at once
c = socket.socket(); c.setblocking(False)
try: c.connect(('127.0.0.1', fp))
except BlockingIOError: pass
time.sleep(0.2); log('aborted', c.getsockname()); c.close()
for f in filler: f.close()
full.close()

# 6. IPv6 loopback transfer
srv = socket.socket(socket.AF_INET6); srv.bind(('::1', 0)); srv.listen(4); sp = srv.getsockname()[1]
c = socket.create_connection(('::1', sp)); a, _ = srv.accept()
c.sendall(b'6' * 77777); got = 0
while got < 77777: got += len(a.recv(65536))
log('ipv6 client', c.getsockname()[:2], 'server got', got)
c.close(); a.close(); srv.close()

# 7. accept in a forked child: pid differs from the listener's
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(4); sp = srv.getsockname()[1]
pid = os.fork()
if pid == 0:
    a, _ = srv.accept(); d = a.recv(100); a.close(); os._exit(0)
c = socket.create_connection(('127.0.0.1', sp)); c.sendall(b'hello'); time.sleep(0.2)
log('fork-accept parent', os.getpid(), 'child', pid)
c.close(); os.waitpid(pid, 0); srv.close()
