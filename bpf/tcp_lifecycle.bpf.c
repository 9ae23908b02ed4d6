// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * TCP socket lifecycle, from stable tracepoints only (raw or BTF-typed, see
 * HOOK in common.bpf.h: the arguments as the kernel passes them, no record
 * filled):
 *   sock:inet_sock_set_state  connect / accept / established / listen / close
 *   tcp:tcp_receive_reset     marks the entry (cause: refused / reset received)
 *   tcp:tcp_send_reset        marks the entry (cause: reset sent)
 *   tcp:tcp_destroy_sock      the socket is freed: final close event, delete
 *
 * A new connection is an entry in the TCP table (tcp_socks.bpf.h), not an
 * event: user space finds it in its next snapshot (refresh_tcp), and a
 * connection that ends before that is reported whole by its close event (pid,
 * role, 4-tuple, counters).
 * Most connections are short, so this halves the ring records per
 * connection (two closes instead of connect, established, accept and two
 * closes), in the kernel and in the collector.
 *
 * Why the close event waits for tcp_destroy_sock (knob close_at_destroy = 1):
 * on a user abort (close() with unread data, SO_LINGER 0, tcp_disconnect) the
 * kernel moves the socket to CLOSE *before* it sends the reset, and an
 * application can still read queued bytes from a CLOSEd socket whose fd it
 * holds. ->CLOSE records the close (close_ns, old state, sk_err, flag CLOSED);
 * destroy emits. For an orphaned socket (the usual case) destroy runs right
 * after ->CLOSE in the same call; otherwise when the application closes its
 * fd. The event's info.close_ns is the time of the ->CLOSE transition.
 */
#include "common.bpf.h"

/* One call of inet_sock_set_state: the raw tracepoint's arguments. */
struct transition {
	const struct sock *sk;
	int oldstate;
	int newstate;
};

/* Family, addresses and ports of the socket into an entry. */
static __always_inline void addrs_from_sk(const struct sock *sk, struct ebpf_net_sock_info *i)
{
	i->family = KREAD(sk, __sk_common.skc_family);
	sk_read_addrs(sk, i->family, i);
}

/* A fresh TCP entry on the stack. */
static __always_inline void tcp_info_init(struct ebpf_net_sock_info *i,
					  const struct transition *t, __u32 netns, __u64 now)
{
	__builtin_memset(i, 0, sizeof(*i));
	i->socket_id = next_socket_id();
	i->start_ns = now;
	i->last_update_ns = now;
	i->netns = netns;
	i->protocol = IPPROTO_TCP;
	i->state = t->newstate;
	addrs_from_sk(t->sk, i);
}

/* CLOSE -> SYN_SENT: connect() started, in the caller's context. */
static __always_inline void on_connect(const struct transition *t)
{
	const struct sock *sk = t->sk;
	__u64 key = tcp_key(sk, KEY_TCP_STATE);
	struct ebpf_net_sock_info info, *old;
	__u32 netns, slot;

	/* Check the socket's namespace */
	netns = sk_netns(sk);
	if (!netns_ok(netns))
		return;

	/* New entry: client, pid of the caller (sport is often still 0 here:
	 * the kernel picks the ephemeral port after this transition) */
	tcp_info_init(&info, t, netns, bpf_ktime_get_ns());
	info.pid = current_tgid();
	info.role = EBPF_NET_ROLE_CLIENT;
	if (tcp_entry_add(key, &info) != -EEXIST)
		return;

	/* A socket reused for a new connect() (after a failed connect or a
	 * disconnect): close out the previous connection, then add this one */
	old = tcp_entry(key, &slot);
	if (old)
		tcp_entry_finalize(slot, key, sk, old);
	tcp_entry_add(key, &info);
}

/* SYN_SENT -> ESTABLISHED: the client's handshake completed (softirq). */
static __always_inline void on_client_established(const struct transition *t)
{
	const struct sock *sk = t->sk;
	__u64 key = tcp_key(sk, KEY_TCP_STATE);
	struct ebpf_net_sock_info info, *e;
	__u32 netns, slot;

	/* Known entry: complete its 4-tuple (the kernel picked the local port
	 * after SYN_SENT; the addresses were set before) */
	e = tcp_entry(key, &slot);
	if (e) {
		e->sport = sk_local_port(sk);
		e->state = TCP_ESTABLISHED;
		__sync_fetch_and_or(&e->flags, EBPF_NET_F_ESTABLISHED);
		return;
	}

	/* Unknown (its connect was not seen): create it, pid unknown until the
	 * first send/recv */
	netns = sk_netns(sk);
	if (!netns_ok(netns))
		return;
	tcp_info_init(&info, t, netns, bpf_ktime_get_ns());
	info.role = EBPF_NET_ROLE_CLIENT;
	info.flags = EBPF_NET_F_ESTABLISHED | EBPF_NET_F_PID_TENTATIVE;
	if (tcp_entry_add(key, &info) == 0)
		tentative_add(1);
}

/* SYN_RECV -> ESTABLISHED: a server-side child socket (softirq, pid unknown). */
static __always_inline void on_server_established(const struct transition *t)
{
	const struct sock *sk = t->sk;
	__u64 key = tcp_key(sk, KEY_TCP_STATE);
	struct ebpf_net_sock_info info, *e;
	struct ebpf_net_listener *l;
	__u32 netns, slot;

	netns = sk_netns(sk);
	if (!netns_ok(netns))
		return;

	/* pid: the owner of the listening (netns, port), a guess (listener_verify) */
	tcp_info_init(&info, t, netns, bpf_ktime_get_ns());
	info.role = EBPF_NET_ROLE_SERVER;
	info.flags = EBPF_NET_F_ESTABLISHED;
	l = listener_lookup(netns, info.sport);
	if (!l || listener_verify(l))
		info.flags |= EBPF_NET_F_PID_TENTATIVE;
	if (l)
		info.pid = l->pid;
	switch (tcp_entry_add(key, &info)) {
	case 0:
		if (info.flags & EBPF_NET_F_PID_TENTATIVE)
			tentative_add(1);
		return;
	case -EEXIST:
		break;
	default:
		return;
	}

	/* Already known (adopted while in SYN_RECV, TCP Fast Open): a server */
	e = tcp_entry(key, &slot);
	if (e) {
		addrs_from_sk(sk, e);
		e->role = EBPF_NET_ROLE_SERVER;
		e->state = TCP_ESTABLISHED;
		__sync_fetch_and_or(&e->flags, EBPF_NET_F_ESTABLISHED);
	}
}

/* -> LISTEN: remember who listens on (netns, port); emit a listen event. */
static __always_inline void on_listen(const struct transition *t)
{
	const struct sock *sk = t->sk;
	__u64 skp = (__u64)sk;
	struct ebpf_net_listener_key k = {};
	struct ebpf_net_listener v = {};
	struct ebpf_net_sock_info info;
	__u32 netns;
	long err;

	netns = sk_netns(sk);
	if (!netns_ok(netns))
		return;

	/* Listen event: not a tracked socket (socket_id 0) */
	__builtin_memset(&info, 0, sizeof(info));
	info.pid = current_tgid();
	info.netns = netns;
	info.protocol = IPPROTO_TCP;
	info.role = EBPF_NET_ROLE_LISTENER;
	info.state = TCP_LISTEN;
	info.start_ns = bpf_ktime_get_ns();
	addrs_from_sk(sk, &info);

	/* Owner of the port (listen() runs in the caller's context) */
	k.netns = netns;
	k.port = info.sport;
	v.sk = skp;
	v.pid = info.pid;
	err = bpf_map_update_elem(&listeners, &k, &v, BPF_ANY);
	count_update_err(err, EBPF_NET_LOSS_SOCKET_MAP);
	emit_sock_event(EBPF_NET_EV_TCP_LISTEN, t->oldstate, t->newstate, 0, skp, &info, info.start_ns);
}

/* LISTEN -> CLOSE: forget the port owner if it is this socket; emit. */
static __always_inline void on_listen_close(const struct transition *t)
{
	const struct sock *sk = t->sk;
	__u64 skp = (__u64)sk;
	struct ebpf_net_listener_key k = {};
	struct ebpf_net_sock_info info;
	struct ebpf_net_listener *l;
	__u32 netns;

	netns = sk_netns(sk);
	if (!netns_ok(netns))
		return;

	__builtin_memset(&info, 0, sizeof(info));
	info.pid = current_tgid();
	info.netns = netns;
	info.protocol = IPPROTO_TCP;
	info.role = EBPF_NET_ROLE_LISTENER;
	info.state = TCP_CLOSE;
	info.close_ns = bpf_ktime_get_ns();
	addrs_from_sk(sk, &info);

	/* Delete the owner entry only if it is ours (SO_REUSEPORT siblings), or
	 * was learned from an accepted socket (sk 0: a listener older than us) */
	k.netns = netns;
	k.port = info.sport;
	l = bpf_map_lookup_elem(&listeners, &k);
	if (l && (l->sk == skp || l->sk == 0)) {
		info.pid = l->pid;
		bpf_map_delete_elem(&listeners, &k);
	}
	emit_sock_event(EBPF_NET_EV_TCP_LISTEN_CLOSE, t->oldstate, t->newstate, 0, skp, &info, info.close_ns);
}

/* Connection states: a socket in one of these carried a connection. */
static __always_inline bool was_connection(int state)
{
	switch (state) {
	case TCP_ESTABLISHED:
	case TCP_SYN_SENT:
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSE_WAIT:
	case TCP_LAST_ACK:
	case TCP_CLOSING:
		return true;
	}
	return false;
}

/* X -> CLOSE (X != LISTEN). */
static __always_inline void on_close(const struct transition *t)
{
	const struct sock *sk = t->sk;
	__u64 key = tcp_key(sk, KEY_TCP_STATE);
	struct ebpf_net_sock_info info, *e;
	__u32 netns, slot;

	e = tcp_entry(key, &slot);
	if (e) {
		/* Record the close; a connect that never completed has its
		 * local port only now (if the kernel picked one) */
		if (!(e->flags & EBPF_NET_F_ESTABLISHED))
			e->sport = sk_local_port(sk);
		e->close_ns = bpf_ktime_get_ns();
		e->last_update_ns = e->close_ns;
		e->close_old_state = t->oldstate;
		e->sk_err = KREAD(sk, sk_err);
		e->state = TCP_CLOSE;
		__sync_fetch_and_or(&e->flags, EBPF_NET_F_CLOSED);
		/* Emit now only if configured so; else at tcp_destroy_sock. Either
		 * way the counters are read there, once */
		if (!close_at_destroy)
			tcp_entry_finalize(slot, key, sk, e);
		return;
	}

	/* Untracked connection (existed before us, or the map was full): still
	 * report the close with its 4-tuple, socket_id 0 */
	if (!was_connection(t->oldstate))
		return;
	netns = sk_netns(sk);
	if (!netns_ok(netns))
		return;
	__builtin_memset(&info, 0, sizeof(info));
	info.netns = netns;
	info.protocol = IPPROTO_TCP;
	info.state = TCP_CLOSE;
	info.close_old_state = t->oldstate;
	info.close_ns = bpf_ktime_get_ns();
	info.sk_err = KREAD(sk, sk_err);
	if (t->oldstate != TCP_SYN_SENT)
		info.flags = EBPF_NET_F_ESTABLISHED;
	info.flags |= EBPF_NET_F_CLOSED;
	addrs_from_sk(sk, &info);
	/* No counters: without an entry there is no baseline to count from */
	info.cause = tcp_close_cause(&info);
	emit_sock_event(EBPF_NET_EV_TCP_CLOSE, t->oldstate, t->newstate, info.cause, key, &info, info.close_ns);
}

/* The classic tracepoint would fill a record (addresses of both families,
 * ports, states) on each of the ten transitions of a short connection, though
 * four of them are not followed here. */
HOOK(inet_sock_set_state)
int BPF_PROG(tcp_state, const struct sock *sk, int oldstate, int newstate)
{
	struct transition t = { .sk = sk, .oldstate = oldstate, .newstate = newstate };

	/* TCP only (the tracepoint also fires for SCTP, MPTCP) */
	if (KREAD(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	/* Dispatch on the transition */
	if (newstate == TCP_SYN_SENT) {
		on_connect(&t);
	} else if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT) {
		on_client_established(&t);
	} else if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV) {
		on_server_established(&t);
	} else if (newstate == TCP_LISTEN) {
		on_listen(&t);
	} else if (newstate == TCP_CLOSE && oldstate == TCP_LISTEN) {
		on_listen_close(&t);
	} else if (newstate == TCP_CLOSE) {
		on_close(&t);
	}
	/* Any other move (FIN_WAIT1, CLOSE_WAIT, ...) is not followed: nothing
	 * reads it, and it is 4 of the 10 transitions of a short connection */
	return 0;
}

/* The peer sent a reset (also called by the kernel to abort on data). */
HOOK(tcp_receive_reset)
int BPF_PROG(tcp_rst_rx, const struct sock *sk)
{
	struct ebpf_net_sock_info *e;
	__u32 slot;

	e = tcp_entry(tcp_key(sk, KEY_RST_RX), &slot);
	if (!e)
		return 0;
	__sync_fetch_and_or(&e->flags, EBPF_NET_F_RST_RECEIVED);
	__sync_fetch_and_add(&e->resets_received, 1);
	return 0;
}

/* This end sent a reset (sk is NULL for a reset with no socket). */
HOOK(tcp_send_reset)
int BPF_PROG(tcp_rst_tx, const struct sock *sk)
{
	struct ebpf_net_sock_info *e;
	__u32 slot;

	if (!sk)
		return 0;
	e = tcp_entry(tcp_key(sk, KEY_RST_TX), &slot);
	if (!e)
		return 0;
	__sync_fetch_and_or(&e->flags, EBPF_NET_F_RST_SENT);
	__sync_fetch_and_add(&e->resets_sent, 1);
	return 0;
}

/* The socket is being freed: emit its close event and delete it. */
HOOK(tcp_destroy_sock)
int BPF_PROG(tcp_destroy, const struct sock *sk)
{
	__u64 key = tcp_key(sk, KEY_TCP_DESTROY);
	struct ebpf_net_sock_info *e;
	__u32 slot;

	e = tcp_entry(key, &slot);
	if (!e)
		return 0;
	tcp_entry_finalize(slot, key, sk, e);
	return 0;
}
