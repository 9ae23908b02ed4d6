// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * UDP helpers on cgroup hooks (attach to the cgroup v2 root to see every
 * socket). They observe only: they always return 1 and never touch the
 * address. These hooks run for UDP only (not on TCP's path).
 *
 *   cgroup/sendmsg4, sendmsg6  destination of an unconnected sendto/sendmsg
 *   cgroup/recvmsg4, recvmsg6  source of a datagram, when the caller asked for it
 *       -> stashed per thread in udp_stash; the sock:sock_send_length /
 *          sock_recv_length handler that runs next on the same thread (the
 *          hook runs inside udp_sendmsg / udp_recvmsg, the tracepoint when the
 *          protocol returns) takes it and counts per remote.
 *
 * A UDP socket's end is found by refresh_udp (refresh.bpf.c), not by
 * cgroup/sock_release: that hook runs at the close of every inet socket, and
 * on a short TCP connection its two runs, with cgroup/sock_create's one, cost
 * ~0.9 us (bench/hook-cost) before they could tell the socket is not UDP.
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
