/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * ebpf-net kernel <-> user space ABI.
 *
 * Everything here is read by user space (TypeScript) BY BYTE OFFSET, so:
 *   - fixed-width types only, little-endian (x86-64 / arm64),
 *   - explicit padding fields, no __attribute__((packed)),
 *   - every struct size is a multiple of 8,
 *   - the byte offset of every field is written next to it and checked by
 *     _Static_assert at the end of this file (a change that moves a field
 *     breaks the build, not the parser).
 * Never reorder or retype a field; append, and bump the struct size.
 *
 * Conventions:
 *   - Addresses are 16 bytes. IPv4 is written IPv4-mapped (::ffff:a.b.c.d),
 *     so an IPv4 socket's unbound/unspecified address reads ::ffff:0.0.0.0.
 *     The all-zero address (::) means "unknown" (udp_remote only).
 *   - Ports are in host byte order.
 *   - Timestamps are bpf_ktime_get_ns(): CLOCK_MONOTONIC ns since boot (the
 *     same clock as task->start_time).
 *   - pid means the thread-group id (what user space calls the pid).
 *   - socket_id is assigned in BPF from a global counter starting at 1; it is
 *     never 0 for a tracked socket and never the kernel pointer. 0 = untracked.
 */
#ifndef __EBPF_NET_H
#define __EBPF_NET_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* ---- event types (first __u32 of every ring-buffer record) ----------------- */
enum ebpf_net_event_type {
	/* struct ebpf_net_sock_event. A new TCP connection has no event of its
	 * own: it is an entry in tcp_socks until its close (1-3 are unused) */
	EBPF_NET_EV_TCP_LISTEN      = 4,  /* ->LISTEN; socket_id 0, role LISTENER */
	EBPF_NET_EV_TCP_LISTEN_CLOSE = 5, /* LISTEN->CLOSE; socket_id 0, role LISTENER */
	EBPF_NET_EV_TCP_CLOSE       = 6,  /* final record of a TCP socket: cause + final counters */
	EBPF_NET_EV_TCP_EXISTING    = 7,  /* TCP connection that existed before the programs, adopted; counters = baseline */
	EBPF_NET_EV_UDP_OPEN        = 8,  /* first datagram sent/received on a UDP socket */
	EBPF_NET_EV_UDP_CLOSE       = 9,  /* UDP socket gone (seen by refresh_udp, or its address reused); final counters */
	EBPF_NET_EV_SOCK_PID        = 10, /* the owner pid of a socket changed (accepting process differs from the listener's) */
	/* struct ebpf_net_proc_event */
	EBPF_NET_EV_PROC_EXEC       = 20,
	EBPF_NET_EV_PROC_FORK       = 21, /* new process (not a thread) */
	EBPF_NET_EV_PROC_EXIT       = 22, /* thread-group leader exited */
};

/* ---- socket role (matches the wire protocol's SocketRole; LISTENER only in listen events) */
enum ebpf_net_role {
	EBPF_NET_ROLE_UNKNOWN  = 0,
	EBPF_NET_ROLE_CLIENT   = 1,
	EBPF_NET_ROLE_SERVER   = 2,
	EBPF_NET_ROLE_LISTENER = 3,
};

/* ---- close cause (0..4 match the wire protocol's CloseCause) ----------------- */
enum ebpf_net_close_cause {
	EBPF_NET_CLOSE_NORMAL          = 0,
	EBPF_NET_CLOSE_RESET_RECEIVED  = 1, /* peer reset after ESTABLISHED */
	EBPF_NET_CLOSE_RESET_SENT      = 2, /* this end sent a reset after ESTABLISHED (abort, linger 0, unread data) */
	EBPF_NET_CLOSE_SYN_TIMEOUT     = 3, /* SYN_SENT, never established, no reset: kernel gave up (sk_err ETIMEDOUT or an ICMP error) */
	EBPF_NET_CLOSE_REFUSED         = 4, /* reset received while SYN_SENT */
	/* extensions, not (yet) in the wire protocol: */
	EBPF_NET_CLOSE_CONNECT_ABORTED = 5, /* SYN_SENT, no reset, no error: the application closed before the handshake ended */
	EBPF_NET_CLOSE_ERROR           = 6, /* established, then killed by the kernel with sk_err set (retransmit/keepalive timeout, ICMP) */
};

/* ---- loss causes: index into the `drops` array map (match the wire LossCause) */
enum ebpf_net_loss_cause {
	EBPF_NET_LOSS_RINGBUF_FULL = 1, /* bpf_ringbuf_reserve failed: an event was lost */
	EBPF_NET_LOSS_SOCKET_MAP   = 2, /* no free tcp_socks slot in reach, or udp_socks / udp_remote / listeners full */
	EBPF_NET_LOSS_PROCESS_MAP  = 3, /* reserved: no process map in the kernel side yet */
	EBPF_NET_LOSS_MAX          = 8, /* max_entries of `drops` */
};

/* ---- ebpf_net_sock_info.flags ---------------------------------------------- */
#define EBPF_NET_F_ESTABLISHED   (1u << 0) /* reached ESTABLISHED (or was found established) */
#define EBPF_NET_F_RST_RECEIVED  (1u << 1) /* tcp:tcp_receive_reset fired on it */
#define EBPF_NET_F_RST_SENT      (1u << 2) /* tcp:tcp_send_reset fired on it */
#define EBPF_NET_F_PID_TENTATIVE (1u << 3) /* pid is a guess (listener owner, or 0); the next send/recv sets it */
#define EBPF_NET_F_CLOSED        (1u << 4) /* reached TCP_CLOSE; the close event follows at tcp_destroy_sock */
#define EBPF_NET_F_PREEXISTING   (1u << 5) /* adopted (existed before the programs), not seen at connect/accept */

/* ---- `control` array map: index -> __u64 -------------------------------------- */
enum ebpf_net_control {
	/* Written by user space: the tgid of the collector while it adopts the TCP
	 * connections that existed before the programs (0 otherwise); see
	 * socket_stats.bpf.c. */
	EBPF_NET_CONTROL_ADOPTER   = 0,
	/* Written by the programs: TCP entries whose pid is still a guess. While it
	 * is 0, a TCP send/recv costs one load and no map lookup. */
	EBPF_NET_CONTROL_TENTATIVE = 1,
	EBPF_NET_CONTROL_MAX       = 2,
};

/* ---- default map sizes (user space may change them before load) ------------ */
#define EBPF_NET_EVENTS_BYTES        (8u << 20) /* events ring buffer */
#define EBPF_NET_TCP_SLOTS           65536 /* tcp_keys, tcp_socks, tcp_snapshot: a power of two */
#define EBPF_NET_TCP_GROUP_SLOTS     8     /* slots of a group of the TCP table: 64 bytes of tcp_keys */
#define EBPF_NET_KEY_USERS           8     /* key_scratch: one word per program that looks TCP sockets up */
#define EBPF_NET_UDP_SOCKS_MAX       65536
#define EBPF_NET_UDP_REMOTE_MAX      65536
#define EBPF_NET_LISTENERS_MAX       4096
#define EBPF_NET_UDP_STASH_MAX       8192
#define EBPF_NET_NETNS_ALLOWED_MAX   1024

#define EBPF_NET_COMM_LEN     16
#define EBPF_NET_FILENAME_LEN 256

/*
 * One tracked socket: the start of a `udp_socks` value (struct
 * ebpf_net_udp_sock; BPF_MAP_TYPE_HASH, key: __u64 kernel struct sock
 * pointer), the value of a `tcp_socks` slot (its socket_id is 0
 * while the slot is being filled or freed), a row of `tcp_snapshot`, and the
 * body of every socket event (the final copy, in close events).
 * Size 152.
 */
struct ebpf_net_sock_info {
	__u64 socket_id;        /*   0 sequential id from 1; 0 = untracked */
	__u64 start_ns;         /*   8 when the entry was created */
	__u64 last_update_ns;   /*  16 creation, CLOSE, or the last UDP send/recv */
	__u64 close_ns;         /*  24 when TCP reached CLOSE (0 while open) */
	__u64 bytes_sent;       /*  32 TCP: tcp_sock bytes_sent - bytes_retrans (payload sent once, read at
				 *     each refresh and at close); UDP: sum of sock_send_length ret > 0 */
	__u64 bytes_received;   /*  40 TCP: tcp_sock bytes_received, without the FIN (in-order payload);
				 *     UDP: sum of sock_recv_length ret > 0 (MSG_PEEK excluded) */
	__u64 send_calls;       /*  48 UDP: datagrams sent (TCP: 0) */
	__u64 recv_calls;       /*  56 UDP: datagrams received (TCP: 0) */
	__u32 pid;              /*  64 owner tgid (0 = unknown) */
	__u32 netns;            /*  68 network namespace inode */
	__u32 segs_out;         /*  72 TCP: tcp_sock.segs_out (snapshot) */
	__u32 segs_in;          /*  76 TCP: tcp_sock.segs_in (snapshot) */
	__u32 retransmits;      /*  80 TCP: tcp_sock.total_retrans (snapshot) */
	__u32 resets_sent;      /*  84 TCP: tcp:tcp_send_reset count */
	__u32 resets_received;  /*  88 TCP: tcp:tcp_receive_reset count */
	__u32 srtt_us;          /*  92 TCP: tcp_sock.srtt_us >> 3 (snapshot, us) */
	__u32 snd_cwnd;         /*  96 TCP: tcp_sock.snd_cwnd (snapshot, segments) */
	__u32 flags;            /* 100 EBPF_NET_F_* */
	__u16 family;           /* 104 AF_INET (2) / AF_INET6 (10) */
	__u16 protocol;         /* 106 IPPROTO_TCP (6) / IPPROTO_UDP (17) */
	__u16 sport;            /* 108 local port */
	__u16 dport;            /* 110 remote port (UDP unconnected: 0) */
	__u8  saddr[16];        /* 112 local address */
	__u8  daddr[16];        /* 128 remote address (UDP unconnected: ::ffff:0.0.0.0 or ::) */
	__u8  state;            /* 144 TCP state at the last transition followed (SYN_SENT, ESTABLISHED,
				 *     CLOSE; not FIN_WAIT1, CLOSE_WAIT, ...); UDP: sk_state at creation */
	__u8  role;             /* 145 EBPF_NET_ROLE_* */
	__u8  close_old_state;  /* 146 TCP state before CLOSE */
	__u8  cause;            /* 147 EBPF_NET_CLOSE_* (valid once closed) */
	__u16 sk_err;           /* 148 sk->sk_err at CLOSE (errno, e.g. 110 ETIMEDOUT) */
	__u16 _pad0;            /* 150 */
};                              /* 152 */

/*
 * The value of `udp_socks`: the entry, and which socket it is. A UDP socket's
 * end has no hook that fires for UDP only (cgroup/sock_release runs for every
 * inet socket, TCP too), so it is found later: by refresh_udp, which sees the
 * struct sock orphaned or holding another socket, or by the first datagram of
 * a later socket at the same address. sock_ino tells them apart: the inode
 * number of the socket's file (socket:[ino] in /proc/<pid>/fd), 0 for a
 * kernel socket; EBPF_NET_UDP_RETIRED once its final record is on its way.
 * Size 160.
 */
struct ebpf_net_udp_sock {
	struct ebpf_net_sock_info info; /*   0 */
	__u64 sock_ino;                 /* 152 */
};                                      /* 160 */

#define EBPF_NET_UDP_RETIRED (~0ULL)

/*
 * Ring-buffer record for every socket lifecycle event (types 1..10).
 * Size 176.
 */
struct ebpf_net_sock_event {
	__u32 type;             /*   0 EBPF_NET_EV_* */
	__u8  old_state;        /*   4 TCP state before (tracepoint oldstate) */
	__u8  new_state;        /*   5 TCP state after */
	__u8  cause;            /*   6 EBPF_NET_CLOSE_* (close events only) */
	__u8  _pad0;            /*   7 */
	__u64 sk;               /*   8 kernel struct sock pointer: debugging only, never an id */
	__u64 ts_ns;            /*  16 when it happened: info.close_ns for a close, info.start_ns for an
				 *     open, listen or adoption; the owner's change for SOCK_PID */
	struct ebpf_net_sock_info info; /* 24..176: socket_id at 24, pid at 88, netns at 92,
					 * family at 128, ports at 132/134, saddr at 136,
					 * daddr at 152, role at 169 (= 24 + offset above) */
};                              /* 176 */

/*
 * Ring-buffer record for process events (types 20..22).
 * Size 328.
 */
struct ebpf_net_proc_event {
	__u32 type;             /*   0 EBPF_NET_EV_PROC_* */
	__u32 pid;              /*   4 tgid (fork: the child's) */
	__u32 ppid;             /*   8 tgid of real_parent */
	__u32 uid;              /*  12 real uid of current (fork: the parent) */
	__u64 ts_ns;            /*  16 bpf_ktime_get_ns() */
	__u64 start_ns;         /*  24 task->start_time (monotonic ns since boot) */
	__u64 cgroup_id;        /*  32 cgroup v2 id of current (fork: the parent's) */
	__s32 exit_code;        /*  40 exit: task->exit_code (wait status: code << 8 | signal); else 0 */
	__u32 netns;            /*  44 task's network namespace inode (0 if unknown) */
	__u32 flags;            /*  48 bit0: exit with group_dead (last thread of the process) */
	__u32 _pad0;            /*  52 */
	char  comm[16];         /*  56 NUL-terminated if shorter */
	char  filename[256];    /*  72 exec only: the path passed to exec, NUL-terminated */
};                              /* 328 */

#define EBPF_NET_PROC_F_GROUP_DEAD (1u << 0)

/*
 * Key of the `udp_remote` map: one UDP socket x one remote.
 * Keyed by socket_id, not the sk pointer: ids are never reused, so a new
 * socket at a recycled address can never add into an old socket's entries.
 * Size 32.
 */
struct ebpf_net_udp_remote_key {
	__u64 socket_id;        /*   0 */
	__u8  raddr[16];        /*   8 remote address; all zero = unknown (recv without a source address) */
	__u16 rport;            /*  24 remote port, host order */
	__u16 _pad0;            /*  26 zero */
	__u32 _pad1;            /*  28 zero */
};                              /* 32 */

/* Value of the `udp_remote` map. Size 40. */
struct ebpf_net_udp_remote_stats {
	__u64 bytes_sent;       /*   0 */
	__u64 bytes_received;   /*   8 */
	__u64 packets_sent;     /*  16 */
	__u64 packets_received; /*  24 */
	__u64 last_update_ns;   /*  32 */
};                              /* 40 */

/* Key of the `listeners` map (who owns a listening port). Size 8. */
struct ebpf_net_listener_key {
	__u32 netns;            /*   0 netns inode */
	__u16 port;             /*   4 local port, host order */
	__u16 _pad0;            /*   6 zero */
};                              /* 8 */

/* Value of the `listeners` map. Size 16. */
struct ebpf_net_listener {
	__u64 sk;               /*   0 the listening socket */
	__u32 pid;              /*   8 tgid that called listen(), or the last that accepted from it */
	__u32 verify_in;        /*  12 accepts until the next guess is checked (0: check the next one) */
};                              /* 16 */

/*
 * Value of the `udp_stash` map (LRU hash, key: __u64 bpf_get_current_pid_tgid()).
 * Written by cgroup/sendmsg* and cgroup/recvmsg*, consumed by the
 * sock_send_length / sock_recv_length handler that follows on the same thread.
 * Size 32.
 */
struct ebpf_net_udp_stash {
	__u64 cookie;           /*   0 socket cookie, to check it is the same socket */
	__u8  addr[16];         /*   8 remote address of the datagram */
	__u16 port;             /*  24 remote port, host order */
	__u16 family;           /*  26 user_family */
	__u32 _pad0;            /*  28 */
};                              /* 32 */

/* ---- layout checks ----------------------------------------------------------- */
#define __EN_CHECK(t, f, off) _Static_assert(__builtin_offsetof(struct t, f) == (off), #t "." #f " offset")
#define __EN_SIZE(t, sz) _Static_assert(sizeof(struct t) == (sz) && sizeof(struct t) % 8 == 0, #t " size")

__EN_SIZE(ebpf_net_sock_info, 152);
__EN_CHECK(ebpf_net_sock_info, pid, 64);
__EN_CHECK(ebpf_net_sock_info, flags, 100);
__EN_CHECK(ebpf_net_sock_info, family, 104);
__EN_CHECK(ebpf_net_sock_info, saddr, 112);
__EN_CHECK(ebpf_net_sock_info, daddr, 128);
__EN_CHECK(ebpf_net_sock_info, state, 144);
__EN_CHECK(ebpf_net_sock_info, sk_err, 148);
__EN_SIZE(ebpf_net_sock_event, 176);
__EN_CHECK(ebpf_net_sock_event, sk, 8);
__EN_CHECK(ebpf_net_sock_event, info, 24);
__EN_SIZE(ebpf_net_proc_event, 328);
__EN_CHECK(ebpf_net_proc_event, exit_code, 40);
__EN_CHECK(ebpf_net_proc_event, comm, 56);
__EN_CHECK(ebpf_net_proc_event, filename, 72);
__EN_SIZE(ebpf_net_udp_remote_key, 32);
__EN_CHECK(ebpf_net_udp_remote_key, rport, 24);
__EN_SIZE(ebpf_net_udp_remote_stats, 40);
__EN_SIZE(ebpf_net_listener_key, 8);
__EN_SIZE(ebpf_net_listener, 16);
__EN_SIZE(ebpf_net_udp_stash, 32);

#endif /* __EBPF_NET_H */
