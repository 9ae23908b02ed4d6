// The binary interface of bpf/ebpf_net.h: event types, enums, and the byte offsets of every
// struct field user space reads. bpf/ebpf_net.h pins the same offsets with _Static_assert.

/** Ring record types. A new TCP connection has none: it is found in tcp_snapshot, or by its close. */
export const EventType = {
  TCP_LISTEN: 4,
  TCP_LISTEN_CLOSE: 5,
  TCP_CLOSE: 6,
  TCP_EXISTING: 7,
  UDP_OPEN: 8,
  UDP_CLOSE: 9,
  SOCK_PID: 10,
  PROC_EXEC: 20,
  PROC_FORK: 21,
  PROC_EXIT: 22,
} as const;

export const KernelRole = { UNKNOWN: 0, CLIENT: 1, SERVER: 2, LISTENER: 3 } as const;

/** Close causes 0-4 are the wire protocol's CloseCause; 5 and 6 are kernel-side detail. */
export const KernelCloseCause = { NORMAL: 0, RESET_RECEIVED: 1, RESET_SENT: 2, SYN_TIMEOUT: 3, REFUSED: 4, CONNECT_ABORTED: 5, ERROR: 6 } as const;

export const KernelLossCause = { RINGBUF_FULL: 1, SOCKET_MAP: 2, PROCESS_MAP: 3 } as const;
export const DROP_CAUSES = 8;

export const SockFlag = { ESTABLISHED: 1, RST_RECEIVED: 2, RST_SENT: 4, PID_TENTATIVE: 8, CLOSED: 16, PREEXISTING: 32 } as const;

/** struct ebpf_net_sock_info (152 bytes): an entry of tcp_socks and tcp_snapshot, the start of a udp_socks value (struct ebpf_net_udp_sock, 160 bytes: then the socket's inode), and the body of socket events. */
export const SOCK_INFO = {
  size: 152,
  socketId: 0,
  startNs: 8,
  lastUpdateNs: 16,
  closeNs: 24,
  bytesSent: 32,
  bytesReceived: 40,
  sendCalls: 48,
  recvCalls: 56,
  pid: 64,
  netns: 68,
  segsOut: 72,
  segsIn: 76,
  retransmits: 80,
  resetsSent: 84,
  resetsReceived: 88,
  srttUs: 92,
  sndCwnd: 96,
  flags: 100,
  family: 104,
  protocol: 106,
  sport: 108,
  dport: 110,
  saddr: 112,
  daddr: 128,
  state: 144,
  role: 145,
  closeOldState: 146,
  cause: 147,
  skErr: 148,
} as const;

/** struct ebpf_net_sock_event (176 bytes). */
export const SOCK_EVENT = { size: 176, type: 0, oldState: 4, newState: 5, cause: 6, tsNs: 16, info: 24 } as const;

/** struct ebpf_net_proc_event (328 bytes). */
export const PROC_EVENT = {
  size: 328,
  type: 0,
  pid: 4,
  ppid: 8,
  uid: 12,
  tsNs: 16,
  startNs: 24,
  cgroupId: 32,
  exitCode: 40,
  netns: 44,
  flags: 48,
  comm: 56,
  commLength: 16,
  filename: 72,
  filenameLength: 256,
} as const;

/** struct ebpf_net_udp_remote_key (32 bytes) and struct ebpf_net_udp_remote_stats (40 bytes). */
export const UDP_REMOTE_KEY = { size: 32, socketId: 0, raddr: 8, rport: 24 } as const;
export const UDP_REMOTE_STATS = { size: 40, bytesSent: 0, bytesReceived: 8, packetsSent: 16, packetsReceived: 24, lastUpdateNs: 32 } as const;

/** enum ebpf_net_control: the words of the `control` array map. */
export const Control = { ADOPTER: 0, TENTATIVE: 1 } as const;

/**
 * The program user space runs before each read of the TCP entries (BPF_PROG_TEST_RUN): it copies
 * the live TCP entries, with the kernel's counters as of now, into rows 0..n-1 of tcp_snapshot and
 * returns n.
 */
export const REFRESH_TCP_PROGRAM = 'refresh_tcp';

/**
 * The program user space runs before each read of the UDP entries: it emits the final record
 * (UDP_CLOSE) of each UDP socket that is gone, deletes its entry, and returns how many.
 */
export const REFRESH_UDP_PROGRAM = 'refresh_udp';

/** The TCP table (bpf/tcp_socks.bpf.h) and its snapshot: three arrays of the same size. */
export const TCP_TABLE_MAPS = ['tcp_keys', 'tcp_socks', 'tcp_snapshot'] as const;

/** Slots of the TCP table for `sockets` sockets: a power of two (the slot of a socket is its hash & (slots - 1)), at least one group of 8. */
export function tcpTableSlots(sockets: number): number {
  let slots = 8;
  while (slots < sockets) slots *= 2;
  return slots;
}

/** Programs the collector cannot work without. */
export const REQUIRED_PROGRAMS = ['tcp_state'] as const;

/**
 * The per-call hooks (sock:sock_send_length / sock_recv_length, Linux 6.3+): they run on every
 * send and receive of the node. They count UDP, learn the owner of accepted TCP sockets, and
 * let the collector adopt connections older than itself.
 */
export const PER_CALL_PROGRAMS = ['sock_send', 'sock_recv'] as const;

/** The cgroup programs of the UDP path: the remotes of datagrams. */
export const UDP_CGROUP_PROGRAMS = ['udp_sendmsg4', 'udp_sendmsg6', 'udp_recvmsg4', 'udp_recvmsg6'] as const;

/** The per-call program the adoption of pre-existing connections goes through. */
export const ADOPTION_PROGRAM = 'sock_recv';
