// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * refresh_tcp: copies the kernel's own TCP counters (struct tcp_sock) into
 * every live TCP entry of sock_stats. User space runs it right before each
 * batch read (BPF_PROG_TEST_RUN); it is never attached. Built once, untyped:
 * its socket pointers come from the map's keys, so they are read with
 * bpf_probe_read_kernel in both objects.
 */
#include "common.bpf.h"

/* One entry of sock_stats: a live TCP socket's counters from struct tcp_sock. */
static long refresh_entry(struct bpf_map *map, __u64 *skp, struct ebpf_net_sock_info *e, __u64 *now)
{
	__u64 sent = e->bytes_sent, received = e->bytes_received;
	__u32 segs = e->segs_out + e->segs_in;

	/* A closed entry's counters are read once more by its close event */
	if (e->protocol != IPPROTO_TCP || (e->flags & EBPF_NET_F_CLOSED))
		return 0;
	tcp_read_counters((const struct sock *)*skp, e);
	if (e->bytes_sent != sent || e->bytes_received != received || e->segs_out + e->segs_in != segs)
		e->last_update_ns = *now;
	return 0;
}

/*
 * Run by user space (BPF_PROG_TEST_RUN), never attached: every live TCP entry
 * takes the kernel's counters now. The sockets are alive: an entry is deleted at
 * tcp_destroy_sock, before the socket is freed, and TCP sockets are
 * SLAB_TYPESAFE_BY_RCU, so a socket freed during the walk is still a socket.
 */
SEC("raw_tp")
int refresh_tcp(void *ctx)
{
	__u64 now = bpf_ktime_get_ns();

	bpf_for_each_map_elem(&sock_stats, refresh_entry, &now, 0);
	return 0;
}
