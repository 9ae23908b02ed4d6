// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Programs user space runs once per interval (BPF_PROG_TEST_RUN), never
 * attached. Built once, untyped: their socket pointers come from map keys, so
 * they are read with bpf_probe_read_kernel in both objects.
 *
 * refresh_tcp: copies every live TCP entry of the table (tcp_socks.bpf.h) into
 * rows 0..n-1 of tcp_snapshot, with the kernel's own counters (struct
 * tcp_sock) read now, and returns n. User space runs it once per interval
 * (BPF_PROG_TEST_RUN) and reads those n rows in place (tcp_snapshot is
 * mmapped).
 *
 * The entries are only read here, never written: an entry added or freed
 * during the copy is skipped (its socket_id changed, see tcp_socks.bpf.h), and
 * the next run, or its close event, reports it.
 *
 * refresh_udp: finds the UDP sockets that are gone, emits their final records
 * (EBPF_NET_EV_UDP_CLOSE) and deletes their entries; returns how many. A UDP
 * socket has no hook of its own at its end (see udp.bpf.c), so its close is
 * reported up to one interval late, with the time it was noticed.
 */
#include "common.bpf.h"

/* Rows written by this run. A global, not a loop variable on the stack: the
 * verifier would follow each of its values through bpf_loop's callback
 * separately ("the sequence of 8193 jumps is too complex"). One collector
 * runs refresh_tcp on one thread, so no two runs share it. */
static __u32 snapshot_rows;

/* Slot i: a live entry into the next row of tcp_snapshot. */
static long refresh_slot(__u32 i, void *unused)
{
	struct ebpf_net_sock_info *e, *row;
	__u32 n = snapshot_rows;
	__u64 *k, key, id;

	k = bpf_map_lookup_elem(&tcp_keys, &i);
	if (!k)
		return 1;
	key = *k;
	if (!key)
		return 0;
	e = bpf_map_lookup_elem(&tcp_socks, &i);
	row = bpf_map_lookup_elem(&tcp_snapshot, &n);
	if (!e || !row)
		return 1;
	id = e->socket_id;
	if (!id)
		return 0;
	barrier();
	__builtin_memcpy(row, e, sizeof(*row));
	/* A closed entry's counters are read once more by its close event. The
	 * sockets are alive: an entry is freed at tcp_destroy_sock, before the
	 * socket is, and TCP sockets are SLAB_TYPESAFE_BY_RCU, so one freed during
	 * the walk is still a socket (and its entry's socket_id has changed) */
	if (!(row->flags & EBPF_NET_F_CLOSED))
		tcp_read_counters((const struct sock *)key, row);
	barrier();
	if (e->socket_id != id || row->socket_id != id)
		return 0;
	snapshot_rows = n + 1;
	return 0;
}

SEC("raw_tp")
int refresh_tcp(void *ctx)
{
	snapshot_rows = 0;
	bpf_loop(tcp_slot_mask + 1, refresh_slot, NULL, 0);
	return snapshot_rows;
}

/* One UDP entry: is its socket still the one in the struct sock? A closed
 * socket is orphaned (sk_socket NULL) before its struct sock is freed; a
 * struct sock reused since holds another socket, with another inode. UDP
 * sockets are freed after an RCU grace period and may be reused: the reads
 * are bpf_probe_read_kernel, and a freed one reads as not this socket. */
static long udp_check(struct bpf_map *map, __u64 *key, struct ebpf_net_udp_sock *u, __u32 *closed)
{
	const struct sock *sk = (const struct sock *)*key;
	__u64 seen = u->sock_ino;

	if (BPF_CORE_READ(sk, sk_socket) && sk_file_ino(sk) == seen)
		return 0;
	if (udp_entry_retire(*key, u, seen))
		(*closed)++;
	return 0;
}

SEC("raw_tp")
int refresh_udp(void *ctx)
{
	__u32 closed = 0;

	bpf_for_each_map_elem(&udp_socks, udp_check, &closed, 0);
	return closed;
}
