/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The table of tracked TCP sockets: two arrays of the same size used as one
 * open-addressing table. tcp_keys[i] holds the struct sock pointer that owns
 * slot i (0: free), tcp_socks[i] its entry.
 *
 * Why not a hash map: a short connection adds two entries and removes them
 * again, and BPF_MAP_TYPE_HASH pays for each add and remove with a bucket
 * lock and its element free list, which bounce between the CPUs of the two
 * ends. Measured on this project's 2-core VM (paired per connection, programs
 * that only add at connect/accept and find and remove at destroy): +1.31 µs
 * per connection with the hash, +0.39 µs with an array table. An array
 * lookup is inlined by the verifier: finding a socket is a few loads.
 *
 * A socket may take one of 16 slots: the 8 of the group its pointer hashes to
 * (8 consecutive keys, 64 bytes of tcp_keys), then the 8 of a second group,
 * from a second hash. A slot is claimed with a compare-and-swap on its key, and freed by
 * storing 0. When all 16 are taken the socket is not tracked (counted as a
 * socket-map loss; its close is still reported, with socket_id 0). Simulated
 * fill of the 65536 default slots: with one group, 0.8% of the inserts up to
 * half full fail; with the second group, 0.03% (and none up to a quarter).
 *
 * The writes to one socket's entry come from that socket's own events: the
 * state changes and its destroy run under the socket's lock, and the flags a
 * send, a receive or a reset may change meanwhile are changed atomically. So
 * the entry itself needs no lock. The one reader that is not the socket's is
 * refresh_tcp: it copies entries while
 * they may be added or freed. An entry's socket_id is therefore written last
 * when it is added and cleared first when it is freed, and the copy is kept
 * only if socket_id is the same, and not 0, before and after it.
 */
#ifndef __EBPF_NET_TCP_SOCKS_BPF_H
#define __EBPF_NET_TCP_SOCKS_BPF_H

/* barrier() (bpf_helpers.h): a compiler barrier, for the order of the writes below. */

/* The programs that look TCP sockets up: each has its own word of key_scratch. */
enum tcp_key_user {
	KEY_TCP_STATE,
	KEY_TCP_DESTROY,
	KEY_RST_RX,
	KEY_RST_TX,
	KEY_SOCK_SEND,
	KEY_SOCK_RECV,
};

/*
 * The socket's pointer as a number: the table's key. In the typed build the
 * verifier allows no arithmetic on a BTF pointer, but a word of a map value
 * loads as a number: the pointer goes through this program's word of
 * key_scratch (a per-CPU array, whose lookup the verifier inlines: a few
 * loads, where bpf_probe_read_kernel was a ~25 ns helper call). The word is
 * the program's own on this CPU, and a program never runs nested in itself
 * (the kernel skips such a run), so nothing writes it in between.
 */
static __always_inline __u64 tcp_key(const struct sock *sk, __u32 user)
{
#ifdef EBPF_NET_TYPED
	volatile __u64 *word = bpf_map_lookup_elem(&key_scratch, &user);

	if (!word)
		return 0;
	*word = (__u64)sk;
	return *word;
#else
	return (__u64)sk;
#endif
}

#define TCP_HASH_1 0x9E3779B97F4A7C15ull
#define TCP_HASH_2 0xC2B2AE3D27D4EB4Full

/* First slot of one of the key's two groups: a multiplicative hash of the
 * pointer (its low 6 bits are the same for every struct sock), aligned to a
 * group. */
static __always_inline __u32 tcp_group(__u64 key, __u64 multiplier)
{
	return (__u32)(((key >> 6) * multiplier) >> 32) & tcp_slot_mask & ~(EBPF_NET_TCP_GROUP_SLOTS - 1);
}

#define TCP_SLOT_CHOICES (2 * EBPF_NET_TCP_GROUP_SLOTS)

/* The i-th slot key may take (i < TCP_SLOT_CHOICES): its first group, then its second. */
static __always_inline __u32 tcp_choice(__u32 first, __u32 second, __u32 i)
{
	return (i < EBPF_NET_TCP_GROUP_SLOTS ? first : second) + (i & (EBPF_NET_TCP_GROUP_SLOTS - 1));
}

/* The slot that key owns, or -1 (also for key 0, which every free slot holds). */
static __always_inline __s32 tcp_slot(__u64 key)
{
	__u32 first = tcp_group(key, TCP_HASH_1), second = tcp_group(key, TCP_HASH_2), i, idx;
	__u64 *k;

	if (!key)
		return -1;
	for (i = 0; i < TCP_SLOT_CHOICES; i++) {
		idx = tcp_choice(first, second, i);
		k = bpf_map_lookup_elem(&tcp_keys, &idx);
		if (k && *k == key)
			return idx;
	}
	return -1;
}

/* The entry of a TCP socket, or NULL; *slot is set when found. */
static __always_inline struct ebpf_net_sock_info *tcp_entry(__u64 key, __u32 *slot)
{
	__s32 idx = tcp_slot(key);
	__u32 i;

	if (idx < 0)
		return NULL;
	i = idx;
	*slot = i;
	return bpf_map_lookup_elem(&tcp_socks, &i);
}

/*
 * Add a TCP socket's entry: 0, -EEXIST when the socket has one already (an
 * earlier connection on this socket left it), or -E2BIG when both its groups
 * are full (counted; info->socket_id is then set to 0: untracked).
 */
static __always_inline long tcp_entry_add(__u64 key, struct ebpf_net_sock_info *info)
{
	__u32 first = tcp_group(key, TCP_HASH_1), second = tcp_group(key, TCP_HASH_2), i, idx;
	struct ebpf_net_sock_info *e;
	__u64 id = info->socket_id;
	__u64 *k;

	if (tcp_slot(key) >= 0)
		return -EEXIST;
	/* (key 0 is no socket: it takes no slot) */
	for (i = 0; key && i < TCP_SLOT_CHOICES; i++) {
		idx = tcp_choice(first, second, i);
		k = bpf_map_lookup_elem(&tcp_keys, &idx);
		if (!k || *k != 0 || __sync_val_compare_and_swap(k, 0, key) != 0)
			continue;
		e = bpf_map_lookup_elem(&tcp_socks, &idx);
		if (!e)
			break;
		/* socket_id last: refresh_tcp skips the slot until it is set */
		info->socket_id = 0;
		__builtin_memcpy(e, info, sizeof(*e));
		barrier();
		e->socket_id = id;
		info->socket_id = id;
		return 0;
	}
	count_drop(EBPF_NET_LOSS_SOCKET_MAP);
	info->socket_id = 0;
	return -E2BIG;
}

/* Free the slot of an entry (socket_id first: see refresh_tcp). */
static __always_inline void tcp_entry_remove(__u32 slot, struct ebpf_net_sock_info *e)
{
	__u64 *k = bpf_map_lookup_elem(&tcp_keys, &slot);

	e->socket_id = 0;
	if (k)
		__sync_lock_test_and_set(k, 0);
}

#endif /* __EBPF_NET_TCP_SOCKS_BPF_H */
