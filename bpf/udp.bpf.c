// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * UDP helpers on cgroup hooks (attach to the cgroup v2 root to see every
 * socket). They observe only: sendmsg/recvmsg hooks always return 1 and never
 * touch the address.
 *
 *   cgroup/sendmsg4, sendmsg6  destination of an unconnected sendto/sendmsg
 *   cgroup/recvmsg4, recvmsg6  source of a datagram, when the caller asked for it
 *       -> stashed per thread in udp_stash; the sock:sock_send_length /
 *          sock_recv_length handler that runs next on the same thread (the
 *          hook runs inside udp_sendmsg / udp_recvmsg, the tracepoint when the
 *          protocol returns) takes it and counts per remote.
 *   cgroup/sock_create         gives every new UDP socket a cookie
 *   cgroup/sock_release        the UDP socket is closed: final event, delete
 *       (inet_sock_set_state does not fire for UDP and no sock tracepoint
 *        marks a UDP socket's end; this hook does.)
 */
#include "common.bpf.h"

/* Remember the remote of the datagram this thread is sending/receiving. */
static __always_inline void stash_remote(struct bpf_sock_addr *ctx, bool v6)
{
	struct ebpf_net_udp_stash s;
	__u64 tid;

	if (!trace_udp || ctx->protocol != IPPROTO_UDP)
		return;

	/* Socket cookie (identifies the socket to the tracepoint) and remote */
	__builtin_memset(&s, 0, sizeof(s));
	s.cookie = bpf_get_socket_cookie(ctx);
	s.family = ctx->user_family;
	s.port = bpf_ntohs(ctx->user_port);
	if (!v6) {
		v4_mapped(s.addr, ctx->user_ip4);
	} else {
		__u32 *a = (__u32 *)s.addr;

		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
	}

	/* Keyed by thread: the tracepoint that follows runs on this thread */
	tid = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&udp_stash, &tid, &s, BPF_ANY);
}

SEC("cgroup/sendmsg4")
int udp_sendmsg4(struct bpf_sock_addr *ctx)
{
	stash_remote(ctx, false);
	return 1;
}

SEC("cgroup/sendmsg6")
int udp_sendmsg6(struct bpf_sock_addr *ctx)
{
	stash_remote(ctx, true);
	return 1;
}

SEC("cgroup/recvmsg4")
int udp_recvmsg4(struct bpf_sock_addr *ctx)
{
	stash_remote(ctx, false);
	return 1;
}

SEC("cgroup/recvmsg6")
int udp_recvmsg6(struct bpf_sock_addr *ctx)
{
	stash_remote(ctx, true);
	return 1;
}

/* A new UDP socket: make sure it has a cookie, so that the first
 * send/recv can record cookie -> sk for sock_release. */
SEC("cgroup/sock_create")
int udp_create(struct bpf_sock *ctx)
{
	if (trace_udp && ctx->protocol == IPPROTO_UDP)
		bpf_get_socket_cookie(ctx);
	return 1;
}

/* close() of a UDP socket: emit its final counters and delete its entry.
 * udp_remote entries of the socket stay for user space to read and delete
 * (they are keyed by socket_id). */
SEC("cgroup/sock_release")
int udp_release(struct bpf_sock *ctx)
{
	struct ebpf_net_sock_info *e;
	__u64 cookie, skp, *p;

	if (!trace_udp || ctx->protocol != IPPROTO_UDP)
		return 1;

	/* cookie -> sk pointer -> entry */
	cookie = bpf_get_socket_cookie(ctx);
	p = bpf_map_lookup_elem(&udp_cookies, &cookie);
	if (!p)
		return 1;
	skp = *p;
	bpf_map_delete_elem(&udp_cookies, &cookie);
	e = bpf_map_lookup_elem(&udp_socks, &skp);
	if (!e)
		return 1;

	/* Final event, then delete */
	e->close_ns = bpf_ktime_get_ns();
	emit_sock_event(EBPF_NET_EV_UDP_CLOSE, e->state, TCP_CLOSE, EBPF_NET_CLOSE_NORMAL, skp, e, e->close_ns);
	bpf_map_delete_elem(&udp_socks, &skp);
	return 1;
}
