// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * bench/native/floor.bpf.c: the dispatch floor. Programs with the names, hooks and build
 * (BTF-typed tracepoints) of bpf/'s socket programs, that do nothing: what they add to a
 * connection, a send or a receive is what any program on these hooks costs before it does any
 * work. bench/hook-cost measures it per connection and per call; bench/collector-overhead --floor
 * measures it on the web workloads. Built by both with clang-16, against bpf/.output/vmlinux.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* conn-cost drains a ring buffer named events: an empty one. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_state, const struct sock *sk, int oldstate, int newstate) { return 0; }

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tcp_destroy, const struct sock *sk) { return 0; }

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_rst_rx, const struct sock *sk) { return 0; }

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_rst_tx, const struct sock *sk) { return 0; }

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags) { return 0; }

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags) { return 0; }

/* The UDP helpers' cgroup hooks: they run for UDP only (not on TCP's path). */
SEC("cgroup/sendmsg4")
int udp_sendmsg4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/sendmsg6")
int udp_sendmsg6(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/recvmsg4")
int udp_recvmsg4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/recvmsg6")
int udp_recvmsg6(struct bpf_sock_addr *ctx) { return 1; }
