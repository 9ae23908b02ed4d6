/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Shared by every ebpf-net .bpf.c: the maps, the knobs, the socket-id counter
 * and small inline helpers.
 *
 * The maps, knobs and counter are DEFINED once, in maps.bpf.c (which defines
 * EBPF_NET_DEFINE_GLOBALS before including this file), and declared `extern`
 * in every other file. `bpftool gen object` (libbpf's static linker) resolves
 * the extern maps and variables to that one definition, so all programs of
 * ebpf_net.bpf.o share the same maps.
 */
#ifndef __EBPF_NET_COMMON_BPF_H
#define __EBPF_NET_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "ebpf_net.h"

/*
 * The socket programs are built twice (bpf/build.sh). As raw tracepoints their
 * arguments are plain integers to the verifier, so each field of a socket is
 * read with a helper call (bpf_probe_read_kernel, through BPF_CORE_READ). With
 * EBPF_NET_TYPED they are BTF-typed tracepoints (tp_btf): the verifier knows
 * the arguments as kernel pointers and a field is a plain load. On a kernel
 * with retpolines a helper call costs ~25 ns; a short connection reads ~60
 * fields. The collector loads the typed object where the kernel allows
 * tracing programs, else the raw one; both have the same programs and maps.
 * KREAD is for pointers that came in as tracepoint arguments (in the typed
 * build, a pointer read from a map is not typed: use BPF_CORE_READ there).
 */
#ifdef EBPF_NET_TYPED
#define HOOK(tracepoint) SEC("tp_btf/" #tracepoint)
#define KREAD(ptr, field) ((ptr)->field)
#else
#define HOOK(tracepoint) SEC("raw_tp/" #tracepoint)
#define KREAD(ptr, field) BPF_CORE_READ(ptr, field)
#endif

/* vmlinux.h carries types, not #defines. */
#define AF_INET      2
#define AF_INET6     10
#define IPPROTO_TCP  6
#define IPPROTO_UDP  17
#define MSG_PEEK     2
#define E2BIG        7
#define ENOMEM       12
#define EEXIST       17

/* TCP states (include/net/tcp_states.h) */
#define TCP_ESTABLISHED  1
#define TCP_SYN_SENT     2
#define TCP_SYN_RECV     3
#define TCP_FIN_WAIT1    4
#define TCP_FIN_WAIT2    5
#define TCP_TIME_WAIT    6
#define TCP_CLOSE        7
#define TCP_CLOSE_WAIT   8
#define TCP_LAST_ACK     9
#define TCP_LISTEN       10
#define TCP_CLOSING      11
#define TCP_NEW_SYN_RECV 12

#ifdef EBPF_NET_DEFINE_GLOBALS
#define __EN_GLOBAL
#else
#define __EN_GLOBAL extern
#endif

/* ---- knobs (.rodata, set by user space before load; defined in maps.bpf.c) ---- */
/* 0 = every netns; else only sockets whose netns inode equals this value. */
extern const volatile __u32 netns_filter;
/* 1 = only sockets whose netns inode is a key of `netns_allowed`. */
extern const volatile __u32 filter_netns;
/* 0 = ignore TCP on send/recv (lifecycle still traced by its own programs). */
extern const volatile __u32 trace_tcp;
/* 0 = ignore UDP entirely (no entries, no stash, no per-remote counters). */
extern const volatile __u32 trace_udp;
/* 0 = no per-remote UDP counters (udp_remote stays empty). */
extern const volatile __u32 udp_per_remote;
/* 1 = emit the TCP close event at tcp:tcp_destroy_sock (catches a reset sent
 * after CLOSE, and bytes read after CLOSE); 0 = emit at the ->CLOSE transition
 * (use when tcp_destroy_sock cannot be attached). */
extern const volatile __u32 close_at_destroy;
/* max_entries of tcp_keys / tcp_socks / tcp_snapshot, minus 1 (a power of two
 * minus 1: the slot of a socket is its hash & tcp_slot_mask). */
extern const volatile __u32 tcp_slot_mask;

/* ---- socket id sequence (.bss, defined in maps.bpf.c); ids are counter+1 ------- */
extern __u64 socket_id_seq;

/* ---- maps -------------------------------------------------------------------- */

/* Lifecycle events: struct ebpf_net_sock_event / ebpf_net_proc_event. */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EBPF_NET_EVENTS_BYTES);
} events SEC(".maps");

/* TCP sockets: an open-addressing table in two arrays of the same size (see
 * tcp_socks.bpf.h). tcp_keys[i] is the struct sock pointer that owns slot i
 * (0 = free), tcp_socks[i] its entry. */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EBPF_NET_TCP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} tcp_keys SEC(".maps");

__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EBPF_NET_TCP_SLOTS);
	__type(key, __u32);
	__type(value, struct ebpf_net_sock_info);
} tcp_socks SEC(".maps");

/* Rows 0..n-1: the live TCP entries with fresh counters, written by refresh_tcp
 * (which returns n). User space reads them in place (mmap), no bpf(2) call. */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, EBPF_NET_TCP_SLOTS);
	__type(key, __u32);
	__type(value, struct ebpf_net_sock_info);
} tcp_snapshot SEC(".maps");

/* A word per program per CPU, through which the typed build turns a socket
 * pointer into a number (tcp_key, index = enum tcp_key_user). */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EBPF_NET_KEY_USERS);
	__type(key, __u32);
	__type(value, __u64);
} key_scratch SEC(".maps");

/* UDP sockets, key = kernel struct sock pointer. Allocated as they come (an
 * entry is added once per socket, not per datagram): an idle node holds no
 * 10 MB of empty entries. */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, EBPF_NET_UDP_SOCKS_MAX);
	__type(key, __u64);
	__type(value, struct ebpf_net_udp_sock);
} udp_socks SEC(".maps");

/* Per (UDP socket, remote) counters. */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EBPF_NET_UDP_REMOTE_MAX);
	__type(key, struct ebpf_net_udp_remote_key);
	__type(value, struct ebpf_net_udp_remote_stats);
} udp_remote SEC(".maps");

/* (netns, port) -> the process that called listen(); gives accepted sockets a pid. */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EBPF_NET_LISTENERS_MAX);
	__type(key, struct ebpf_net_listener_key);
	__type(value, struct ebpf_net_listener);
} listeners SEC(".maps");

/* Thread -> remote of the datagram being sent/received (cgroup sock_addr -> tracepoint). */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EBPF_NET_UDP_STASH_MAX);
	__type(key, __u64);
	__type(value, struct ebpf_net_udp_stash);
} udp_stash SEC(".maps");

/* Control words shared with user space, index = enum ebpf_net_control. An array
 * lookup is inlined by the verifier: reading one costs a load, not a helper call. */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EBPF_NET_CONTROL_MAX);
	__type(key, __u32);
	__type(value, __u64);
} control SEC(".maps");

/* Allowed netns inodes when filter_netns = 1 (value unused, write 1). */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EBPF_NET_NETNS_ALLOWED_MAX);
	__type(key, __u32);
	__type(value, __u32);
} netns_allowed SEC(".maps");

/* Loss counters, index = enum ebpf_net_loss_cause. */
__EN_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EBPF_NET_LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* ---- helpers ----------------------------------------------------------------- */

/* Count one lost event / entry under its cause. */
static __always_inline void count_drop(__u32 cause)
{
	__u64 *v = bpf_map_lookup_elem(&drops, &cause);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* User space reads the ring on a timer and never sleeps on it: records are
 * submitted with this flag, since a wakeup would only queue an irq_work */
#define SUBMIT_FLAGS BPF_RB_NO_WAKEUP

/* Space for one ring-buffer record; a full ring buffer is counted, and gives NULL. */
static __always_inline void *reserve_event(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e)
		count_drop(EBPF_NET_LOSS_RINGBUF_FULL);
	return e;
}

#include "tcp_socks.bpf.h"

/* A map update failed: count it when the data is lost because the map is full. */
static __always_inline void count_update_err(long err, __u32 cause)
{
	if (err == -E2BIG || err == -ENOMEM)
		count_drop(cause);
}

static __always_inline __u64 next_socket_id(void)
{
	return __sync_fetch_and_add(&socket_id_seq, 1) + 1;
}

static __always_inline __u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

static __always_inline __u32 sk_netns(const struct sock *sk)
{
#ifdef EBPF_NET_TYPED
	return sk->__sk_common.skc_net.net->ns.inum;
#else
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
#endif
}

/* Is this netns traced? Both knobs are rodata: when 0 the verifier drops the code. */
static __always_inline bool netns_ok(__u32 netns)
{
	if (netns_filter && netns != netns_filter)
		return false;
	if (filter_netns && !bpf_map_lookup_elem(&netns_allowed, &netns))
		return false;
	return true;
}

static __always_inline bool netns_filtering(void)
{
	return netns_filter || filter_netns;
}

/* Write an IPv4 address (network order) as ::ffff:a.b.c.d. */
static __always_inline void v4_mapped(__u8 *dst, __u32 be_addr)
{
	__u32 *d = (__u32 *)dst;

	d[0] = 0;
	d[1] = 0;
	d[2] = bpf_htonl(0x0000ffff);
	d[3] = be_addr;
}

/* An IPv6 address of a socket (src points into the struct sock). */
static __always_inline void sk_read_v6(__u8 *dst, const struct in6_addr *src)
{
#ifdef EBPF_NET_TYPED
	__u32 *d = (__u32 *)dst;

	d[0] = src->in6_u.u6_addr32[0];
	d[1] = src->in6_u.u6_addr32[1];
	d[2] = src->in6_u.u6_addr32[2];
	d[3] = src->in6_u.u6_addr32[3];
#else
	bpf_core_read(dst, 16, src);
#endif
}

/* The local port, host order. inet_sport lies past struct sock: a typed load
 * there is refused, so this is a helper read in both builds. */
static __always_inline __u16 sk_local_port(const struct sock *sk)
{
	return bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
}

/* Local and remote address/port of a socket, from struct sock. The local port
 * is inet_sport, as the kernel's own tracepoints take it: skc_num is already 0
 * when inet_sock_set_state reports a move to CLOSE (the port is released first). */
static __always_inline void sk_read_addrs(const struct sock *sk, __u16 family,
					  struct ebpf_net_sock_info *i)
{
	i->sport = sk_local_port(sk);
	i->dport = bpf_ntohs(KREAD(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		v4_mapped(i->saddr, KREAD(sk, __sk_common.skc_rcv_saddr));
		v4_mapped(i->daddr, KREAD(sk, __sk_common.skc_daddr));
	} else {
		sk_read_v6(i->saddr, &sk->__sk_common.skc_v6_rcv_saddr);
		sk_read_v6(i->daddr, &sk->__sk_common.skc_v6_daddr);
	}
}

/*
 * Counters and gauges of a TCP socket, from the kernel's own struct tcp_sock
 * (RFC 4898 counters, as tcp_info reports them): nothing is counted per call.
 * bytes_sent counts payload transmitted, retransmissions included, so those are
 * taken off; bytes_received advances over the peer's FIN too (SOCK_DONE), which
 * is not payload.
 */
static __always_inline void tcp_read_counters(const struct sock *sk, struct ebpf_net_sock_info *i)
{
#ifdef EBPF_NET_TYPED
	/* The typed pointer to the tcp_sock around this sock */
	const struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);

	if (!tp)
		return;
#else
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
#endif
	__u64 received = KREAD(tp, bytes_received);

	if (received && (KREAD(sk, __sk_common.skc_flags) & (1UL << SOCK_DONE)))
		received--;
	i->bytes_received = received;
	i->bytes_sent = KREAD(tp, bytes_sent) - KREAD(tp, bytes_retrans);
	i->retransmits = KREAD(tp, total_retrans);
	i->segs_out = KREAD(tp, segs_out);
	i->segs_in = KREAD(tp, segs_in);
	i->srtt_us = KREAD(tp, srtt_us) >> 3;
	i->snd_cwnd = KREAD(tp, snd_cwnd);
}

/* One control word (enum ebpf_net_control); NULL only if the map is missing. */
static __always_inline __u64 *control_word(__u32 index)
{
	return bpf_map_lookup_elem(&control, &index);
}

/* TCP entries whose pid is a guess: one more (+1) or one fewer (-1). */
static __always_inline void tentative_add(__s64 delta)
{
	__u64 *n = control_word(EBPF_NET_CONTROL_TENTATIVE);

	if (n)
		__sync_fetch_and_add(n, delta);
}

/* Clear PID_TENTATIVE; the count goes down only for the caller that cleared it. */
static __always_inline bool tentative_clear(struct ebpf_net_sock_info *e)
{
	if (!(__sync_fetch_and_and(&e->flags, ~EBPF_NET_F_PID_TENTATIVE) & EBPF_NET_F_PID_TENTATIVE))
		return false;
	tentative_add(-1);
	return true;
}

/* A socket record, reserved in the ring buffer and filled; the caller submits
 * it. NULL when the ring buffer is full (counted). ts is the time of what the
 * event reports, taken by the caller (a clock read costs ~40 ns here: the
 * entry's start_ns or close_ns serve when they are it). */
static __always_inline struct ebpf_net_sock_event *
sock_event(__u32 type, __u8 old_state, __u8 new_state, __u8 cause, __u64 sk,
	   const struct ebpf_net_sock_info *info, __u64 ts)
{
	struct ebpf_net_sock_event *e;

	e = reserve_event(sizeof(*e));
	if (!e)
		return NULL;
	e->type = type;
	e->old_state = old_state;
	e->new_state = new_state;
	e->cause = cause;
	e->_pad0 = 0;
	e->sk = sk;
	e->ts_ns = ts;
	__builtin_memcpy(&e->info, info, sizeof(e->info));
	return e;
}

/* Copy a socket record into the ring buffer (see sock_event). */
static __always_inline void emit_sock_event(__u32 type, __u8 old_state, __u8 new_state,
					    __u8 cause, __u64 sk,
					    const struct ebpf_net_sock_info *info, __u64 ts)
{
	struct ebpf_net_sock_event *e = sock_event(type, old_state, new_state, cause, sk, info, ts);

	if (e)
		bpf_ringbuf_submit(e, SUBMIT_FLAGS);
}

/*
 * Insert a UDP socket's entry and return the map's copy; NULL when the map is
 * full (counted; no event is sent: this runs on every send/recv of such a
 * socket and must not flood the ring). When another CPU inserted first,
 * returns that entry and sets *raced.
 */
static __always_inline struct ebpf_net_udp_sock *
udp_entry_insert(__u64 skp, struct ebpf_net_udp_sock *u, bool *raced)
{
	long err = bpf_map_update_elem(&udp_socks, &skp, u, BPF_NOEXIST);

	*raced = err == -EEXIST;
	if (err && !*raced) {
		count_update_err(err, EBPF_NET_LOSS_SOCKET_MAP);
		return NULL;
	}
	return bpf_map_lookup_elem(&udp_socks, &skp);
}

/* Which socket a struct sock holds now: its file's inode number (see struct
 * ebpf_net_udp_sock); 0 when it has no file (a kernel socket) or no socket
 * (orphaned: closed). */
static __always_inline __u64 sk_file_ino(const struct sock *sk)
{
#ifdef EBPF_NET_TYPED
	const struct socket *sock = sk->sk_socket;

	if (!sock || !sock->file)
		return 0;
	return sock->file->f_inode->i_ino;
#else
	return BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
#endif
}

/*
 * The socket of a UDP entry is gone: closed (refresh_udp), or its struct sock
 * now holds a later socket (that socket's first datagram). Emits the entry's
 * final record and deletes it. `seen` is the sock_ino the caller read: only the
 * caller that moves it to EBPF_NET_UDP_RETIRED goes on, so the record is sent
 * once. The close time is when the end was noticed.
 */
static __always_inline bool udp_entry_retire(__u64 skp, struct ebpf_net_udp_sock *u, __u64 seen)
{
	if (seen == EBPF_NET_UDP_RETIRED ||
	    __sync_val_compare_and_swap(&u->sock_ino, seen, EBPF_NET_UDP_RETIRED) != seen)
		return false;
	u->info.close_ns = bpf_ktime_get_ns();
	emit_sock_event(EBPF_NET_EV_UDP_CLOSE, u->info.state, TCP_CLOSE, EBPF_NET_CLOSE_NORMAL, skp,
			&u->info, u->info.close_ns);
	bpf_map_delete_elem(&udp_socks, &skp);
	return true;
}

/* Owner of a listening (netns, port), or NULL. */
static __always_inline struct ebpf_net_listener *listener_lookup(__u32 netns, __u16 port)
{
	struct ebpf_net_listener_key k = { .netns = netns, .port = port };

	return bpf_map_lookup_elem(&listeners, &k);
}

/*
 * The pid of an accepted socket is a guess: the listener's owner. A guess the
 * first send/recv must check (PID_TENTATIVE) costs every TCP send and receive a
 * map lookup while any is pending, so only some guesses are checked: the first
 * accept of a listener, the one after a guess proved wrong, and one in
 * EBPF_NET_LISTENER_VERIFY_EVERY after that. A server whose accepting process
 * changes (workers sharing a listener) is then checked on every accept; one
 * whose guess holds (a single process, or a worker per SO_REUSEPORT listener)
 * almost never. True when this accept's guess is to be checked.
 */
#define EBPF_NET_LISTENER_VERIFY_EVERY 64

static __always_inline bool listener_verify(struct ebpf_net_listener *l)
{
	if (l->verify_in == 0) {
		l->verify_in = EBPF_NET_LISTENER_VERIFY_EVERY;
		return true;
	}
	l->verify_in--;
	return false;
}

/*
 * Close cause of a TCP entry, from its flags and sk_err.
 * A reset we sent wins over a "received" one: tcp_reset() (which fires
 * tcp_receive_reset) is also what the kernel calls to abort on data it then
 * answers with a reset.
 */
static __always_inline __u8 tcp_close_cause(const struct ebpf_net_sock_info *e)
{
	__u32 f = e->flags;

	if (!(f & EBPF_NET_F_ESTABLISHED)) {
		if (f & EBPF_NET_F_RST_RECEIVED)
			return EBPF_NET_CLOSE_REFUSED;
		if (e->sk_err)
			return EBPF_NET_CLOSE_SYN_TIMEOUT;
		return EBPF_NET_CLOSE_CONNECT_ABORTED;
	}
	if (f & EBPF_NET_F_RST_SENT)
		return EBPF_NET_CLOSE_RESET_SENT;
	if (f & EBPF_NET_F_RST_RECEIVED)
		return EBPF_NET_CLOSE_RESET_RECEIVED;
	if (e->sk_err)
		return EBPF_NET_CLOSE_ERROR;
	return EBPF_NET_CLOSE_NORMAL;
}

/*
 * Final record of a TCP entry: read the counters, fix the cause, free the
 * slot, emit the close event (with the final counters, so nothing is lost
 * between the last refresh and the removal).
 *
 * The slot is freed before the event is submitted: user space runs
 * refresh_tcp right after it reads the ring, and a slot still live then would
 * be read as a new connection, counted again from zero.
 */
static __always_inline void tcp_entry_finalize(__u32 slot, __u64 key, const struct sock *sk,
					       struct ebpf_net_sock_info *e)
{
	struct ebpf_net_sock_event *ev;

	if (!e->close_ns) {
		e->close_ns = bpf_ktime_get_ns();
		e->close_old_state = e->state;
		e->sk_err = KREAD(sk, sk_err);
	}
	tcp_read_counters(sk, e);
	e->state = TCP_CLOSE;
	e->cause = tcp_close_cause(e);
	ev = sock_event(EBPF_NET_EV_TCP_CLOSE, e->close_old_state, TCP_CLOSE, e->cause, key, e, e->close_ns);
	/* A plain load first: the atomic clear is for the rare guess still open */
	if (e->flags & EBPF_NET_F_PID_TENTATIVE)
		tentative_clear(e);
	tcp_entry_remove(slot, e);
	if (ev)
		bpf_ringbuf_submit(ev, SUBMIT_FLAGS);
}

#endif /* __EBPF_NET_COMMON_BPF_H */
