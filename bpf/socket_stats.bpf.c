// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Socket counters, aggregated in the kernel (udp_socks, udp_remote; TCP in
 * tcp_socks) and read by user space once per interval: UDP in batches, TCP
 * as the rows refresh_tcp copies, in place.
 *
 * TCP is not counted per call: the kernel keeps its own counters in struct
 * tcp_sock (bytes, segments, retransmissions, srtt), and refresh_tcp (refresh.bpf.c) copies
 * them into every live TCP entry when user space runs it (BPF_PROG_TEST_RUN,
 * once per interval, just before the batch read); the close reads them once
 * more. So a TCP send or receive costs only what the per-call hooks cost to
 * dispatch and to say "TCP" (one read), plus a lookup while an accepted
 * socket's owner is still a guess. Measured by bench/hook-cost on this
 * project's 2-core VM (retpolines, SRSO safe-RET): an empty raw tracepoint
 * costs ~110 ns a call, the protocol read ~60 ns more, a hash lookup ~120 ns
 * more.
 *
 * UDP has no such counters, so its datagrams are counted on every call:
 *   sock:sock_send_length   every sendmsg on a socket (after the protocol ran)
 *   sock:sock_recv_length   every recvmsg on a socket
 * The two per-call hooks are raw or BTF-typed tracepoints (HOOK in
 * common.bpf.h): no trace record is filled first.
 *
 * Pre-existing TCP connections get their entry when the collector adopts them
 * at start-up: it takes a copy of the owner's descriptor (pidfd_getfd) and peeks
 * zero bytes from it, while control[ADOPTER] holds its own tgid.
 */
#include "common.bpf.h"

/* TCP states in which a socket without an entry is a live connection. */
static __always_inline bool tcp_live_state(__u8 state)
{
	switch (state) {
	case TCP_ESTABLISHED:
	case TCP_SYN_RECV:
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSE_WAIT:
	case TCP_LAST_ACK:
	case TCP_CLOSING:
		return true;
	}
	return false;
}

/* A fresh entry for a socket seen first on a send or receive (adoption, UDP);
 * false when its network namespace is not traced. */
static __always_inline bool sock_info_init(struct ebpf_net_sock_info *info, struct sock *sk,
					   __u16 family, __u16 protocol)
{
	__u32 netns = sk_netns(sk);

	if (!netns_ok(netns))
		return false;
	__builtin_memset(info, 0, sizeof(*info));
	info->socket_id = next_socket_id();
	info->start_ns = bpf_ktime_get_ns();
	info->last_update_ns = info->start_ns;
	info->netns = netns;
	info->family = family;
	info->protocol = protocol;
	info->state = KREAD(sk, __sk_common.skc_state);
	sk_read_addrs(sk, family, info);
	return true;
}

/*
 * A TCP connection that existed before the programs were loaded, adopted: the
 * caller is the collector peeking at it, so its pid is left 0 (user space
 * knows the owner). Only a live connection (a CLOSEd socket may still be read).
 */
static __always_inline void tcp_adopt(struct sock *sk, __u64 key, __u16 family)
{
	struct ebpf_net_sock_info info;
	struct ebpf_net_listener *l;

	if (!sock_info_init(&info, sk, family, IPPROTO_TCP) || !tcp_live_state(info.state))
		return;
	info.flags = EBPF_NET_F_ESTABLISHED | EBPF_NET_F_PREEXISTING;
	/* A local port someone listens on: we are the server side */
	l = listener_lookup(info.netns, info.sport);
	info.role = l ? EBPF_NET_ROLE_SERVER : EBPF_NET_ROLE_UNKNOWN;
	/* The counters so far: the baseline user space subtracts */
	tcp_read_counters(sk, &info);
	if (tcp_entry_add(key, &info) == 0)
		emit_sock_event(EBPF_NET_EV_TCP_EXISTING, 0, info.state, 0, key, &info, info.start_ns);
}

/* A UDP socket's first datagram: its entry, owned by the calling process. */
static __always_inline struct ebpf_net_udp_sock *udp_entry_create(struct sock *sk, __u64 skp, __u16 family,
								  __u64 ino)
{
	struct ebpf_net_udp_sock u, *e;
	bool raced;

	if (!sock_info_init(&u.info, sk, family, IPPROTO_UDP))
		return NULL;
	u.info.pid = current_tgid();
	u.sock_ino = ino;

	/* If another CPU won the race, use its entry (no event) */
	e = udp_entry_insert(skp, &u, &raced);
	if (raced || !e)
		return e;
	emit_sock_event(EBPF_NET_EV_UDP_OPEN, 0, u.info.state, 0, skp, &u.info, u.info.start_ns);
	return e;
}

/*
 * UDP per-remote counters. The remote is the datagram's (stashed by the
 * cgroup sendmsg/recvmsg hook on this thread) or else the connected peer;
 * unknown (all zero) when neither exists (recv() without a source address).
 */
static __always_inline void udp_count_remote(struct sock *sk, __u16 family,
					     const struct ebpf_net_sock_info *e,
					     const struct ebpf_net_udp_stash *stash,
					     bool send, __u64 len, __u64 now)
{
	struct ebpf_net_udp_remote_key key;
	struct ebpf_net_udp_remote_stats zero = {}, *v;
	long err;

	__builtin_memset(&key, 0, sizeof(key));
	key.socket_id = e->socket_id;
	if (stash && stash->cookie == KREAD(sk, __sk_common.skc_cookie.counter)) {
		/* Remote of this very datagram */
		__builtin_memcpy(key.raddr, stash->addr, 16);
		key.rport = stash->port;
	} else {
		/* Connected socket: the peer in the socket */
		__u16 dport = bpf_ntohs(KREAD(sk, __sk_common.skc_dport));

		if (dport) {
			key.rport = dport;
			if (family == AF_INET)
				v4_mapped(key.raddr, KREAD(sk, __sk_common.skc_daddr));
			else
				sk_read_v6(key.raddr, &sk->__sk_common.skc_v6_daddr);
		}
	}

	v = bpf_map_lookup_elem(&udp_remote, &key);
	if (!v) {
		err = bpf_map_update_elem(&udp_remote, &key, &zero, BPF_NOEXIST);
		if (err && err != -EEXIST) {
			count_update_err(err, EBPF_NET_LOSS_SOCKET_MAP);
			return;
		}
		v = bpf_map_lookup_elem(&udp_remote, &key);
		if (!v)
			return;
	}
	if (send) {
		__sync_fetch_and_add(&v->bytes_sent, len);
		__sync_fetch_and_add(&v->packets_sent, 1);
	} else {
		__sync_fetch_and_add(&v->bytes_received, len);
		__sync_fetch_and_add(&v->packets_received, 1);
	}
	v->last_update_ns = now;
}

/* The owner of an accepted socket was a guess (the listener's): the process
 * doing I/O on it now is the real one. It becomes the listener's owner too:
 * in a pre-fork server (nginx, gunicorn) the process that called listen() is
 * the master, the one that accepts a worker, and later accepted sockets then
 * start with the right guess (no SOCK_PID event each). A wrong guess has the
 * next accept checked too (listener_verify). A listener opened before the
 * collector started gets its owner here (sk 0: its listen() was not seen). */
static __always_inline void confirm_pid(struct ebpf_net_sock_info *e, __u64 key)
{
	struct ebpf_net_listener_key k = {};
	struct ebpf_net_listener v = {};
	struct ebpf_net_listener *l;
	__u32 tgid = current_tgid();
	__u32 old = e->pid;

	e->pid = tgid;
	if (!tentative_clear(e))
		return;
	if (old != tgid)
		emit_sock_event(EBPF_NET_EV_SOCK_PID, e->state, e->state, 0, key, e, bpf_ktime_get_ns());
	if (e->role != EBPF_NET_ROLE_SERVER)
		return;
	l = listener_lookup(e->netns, e->sport);
	if (l) {
		if (old != tgid) {
			l->pid = tgid;
			l->verify_in = 0;
		}
		return;
	}
	k.netns = e->netns;
	k.port = e->sport;
	v.pid = tgid;
	v.verify_in = EBPF_NET_LISTENER_VERIFY_EVERY;
	count_update_err(bpf_map_update_elem(&listeners, &k, &v, BPF_NOEXIST), EBPF_NET_LOSS_SOCKET_MAP);
}

/*
 * sk_protocol 6: TCP, or another family's protocol 6 (netlink's XFRM), which
 * no entry ever matches. No counting (refresh_tcp reads the kernel's counters);
 * two jobs, each behind a control word that is 0 in the steady state, so that
 * the family is not even read: adopting a pre-existing connection (the
 * collector peeks at it), and learning the owner of an accepted socket from its
 * first I/O.
 */
static __always_inline int on_tcp_msg(struct sock *sk, int ret, __u32 key_user)
{
	struct ebpf_net_sock_info *e;
	__u64 *adopter, *tentative;
	__u16 family;
	__u32 slot;
	__u64 key;

	adopter = control_word(EBPF_NET_CONTROL_ADOPTER);
	if (adopter && *adopter && *adopter == current_tgid()) {
		family = KREAD(sk, __sk_common.skc_family);
		if (family == AF_INET || family == AF_INET6)
			tcp_adopt(sk, tcp_key(sk, key_user), family);
		return 0;
	}
	tentative = control_word(EBPF_NET_CONTROL_TENTATIVE);
	if (!tentative || !*tentative || ret <= 0)
		return 0;
	key = tcp_key(sk, key_user);
	e = tcp_entry(key, &slot);
	if (e && (e->flags & EBPF_NET_F_PID_TENTATIVE))
		confirm_pid(e, key);
	return 0;
}

static __always_inline int on_msg(struct sock *sk, int ret, int flags, bool send)
{
	struct ebpf_net_udp_stash stash, *s;
	struct ebpf_net_udp_sock *u;
	struct ebpf_net_sock_info *e;
	bool have_stash = false;
	__u16 family, protocol;
	__u64 now, tid, skp, ino;

	/* The protocol first: one read sends TCP on its way and tells most other
	 * calls to leave (AF_UNIX and netlink traffic fire these tracepoints too);
	 * for UDP the family confirms it */
	protocol = KREAD(sk, sk_protocol);
	if (protocol == IPPROTO_TCP)
		return trace_tcp ? on_tcp_msg(sk, ret, send ? KEY_SOCK_SEND : KEY_SOCK_RECV) : 0;
	if (protocol != IPPROTO_UDP)
		return 0;
	family = KREAD(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;

	/* UDP: the stash of this thread is consumed whatever happens next */
	if (!trace_udp)
		return 0;
	tid = bpf_get_current_pid_tgid();
	s = bpf_map_lookup_elem(&udp_stash, &tid);
	if (s) {
		stash = *s;
		have_stash = true;
		bpf_map_delete_elem(&udp_stash, &tid);
	}

	/* Only data that moved: no errors, no empty reads, no MSG_PEEK */
	if (ret <= 0)
		return 0;
	if (!send && (flags & MSG_PEEK))
		return 0;

	/* Entry of the socket, created on first sight. An entry of another socket
	 * at this address (closed since the last refresh_udp) is retired first */
	skp = (__u64)sk;
	ino = sk_file_ino(sk);
	u = bpf_map_lookup_elem(&udp_socks, &skp);
	if (u) {
		__u64 seen = u->sock_ino;

		if (seen != ino) {
			udp_entry_retire(skp, u, seen);
			u = NULL;
		}
	}
	if (!u) {
		u = udp_entry_create(sk, skp, family, ino);
		/* Still the old entry: another caller is retiring it right now.
		 * This datagram is not counted (it would go with the old socket) */
		if (!u || u->sock_ino != ino)
			return 0;
	}
	e = &u->info;

	/* Counters */
	if (send) {
		__sync_fetch_and_add(&e->bytes_sent, (__u64)ret);
		__sync_fetch_and_add(&e->send_calls, 1);
	} else {
		__sync_fetch_and_add(&e->bytes_received, (__u64)ret);
		__sync_fetch_and_add(&e->recv_calls, 1);
	}
	now = bpf_ktime_get_ns();
	e->last_update_ns = now;
	if (udp_per_remote)
		udp_count_remote(sk, family, e, have_stash ? &stash : NULL, send, ret, now);
	return 0;
}

HOOK(sock_send_length)
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags)
{
	return on_msg(sk, ret, flags, true);
}

HOOK(sock_recv_length)
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags)
{
	return on_msg(sk, ret, flags, false);
}
