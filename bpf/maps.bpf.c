// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The one definition of every map, knob and global shared by the ebpf-net
 * programs. The other .bpf.c files see them as `extern` (common.bpf.h) and
 * `bpftool gen object` links them all into bpf/.output/ebpf_net.bpf.o.
 */
#define EBPF_NET_DEFINE_GLOBALS
#include "common.bpf.h"

/*
 * Knobs, in .rodata, in this order (all __u32, offsets 0,4,..,24 of .rodata;
 * build.sh checks the offsets). User space finds them by name in the
 * object's BTF (DATASEC .rodata) and writes them before bpf_object__load.
 */
const volatile __u32 netns_filter = 0;     /* 0 = all network namespaces */
const volatile __u32 filter_netns = 0;     /* 1 = only netns listed in netns_allowed */
const volatile __u32 trace_tcp = 1;        /* TCP on send/recv: adoption, owners of accepted sockets */
const volatile __u32 trace_udp = 1;        /* trace UDP sockets */
const volatile __u32 udp_per_remote = 1;   /* per-remote UDP counters */
const volatile __u32 close_at_destroy = 1; /* TCP close event at tcp_destroy_sock */
const volatile __u32 tcp_slot_mask = EBPF_NET_TCP_SLOTS - 1; /* slots of the TCP table - 1 */

/* Socket ids: next_socket_id() returns ++socket_id_seq, so ids start at 1. */
__u64 socket_id_seq = 0;

char LICENSE[] SEC("license") = "Dual BSD/GPL";
