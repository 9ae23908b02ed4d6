// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * ebpf_net_probe: a small libbpf harness to check bpf/.output/ebpf_net.bpf.o
 * on a real kernel, without the TypeScript collector.
 *
 * Loads the object, attaches every program (tracepoints and raw tracepoints
 * with bpf_program__attach, cgroup programs on the cgroup v2 root), prints
 * every ring-buffer event as one line, optionally runs a command, then dumps
 * the TCP table, udp_socks, udp_remote and drops, detaches everything and exits. Nothing is
 * pinned; everything is released on exit, SIGINT or SIGTERM.
 *
 * Build:  bash bpf/build.sh --with-probe   (or:
 *         gcc -O2 -Wall -I bpf bpf/tools/ebpf_net_probe.c -lbpf -o bpf/.output/ebpf_net_probe)
 * Usage:  ebpf_net_probe [-o OBJ] [-c CGROUP2_DIR] [-t SECONDS] [-q] [-k KNOB=VALUE]...
 *                        [-n NETNS_INODE]... [-m MAP=N]... [-s] [-- CMD ARGS...]
 *         -k: set a __u32 knob in .rodata before load (found by name in BTF)
 *         -n: add a netns inode to netns_allowed (use with -k filter_netns=1)
 *         -m: set a map's max_entries before load (e.g. -m events=4096)
 *         -s: do not read the ring buffer while CMD runs (to provoke drops)
 *         -t: keep tracing this long after CMD ends (default 1 s; without
 *             CMD: trace this long, 0 = until SIGINT)
 *         -q: print only socket events (not process events)
 * Output: lines starting with "EV ", "SOCK ", "UDP ", "DROP ", "ATTACH ".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "ebpf_net.h"

static volatile sig_atomic_t stop;
static bool quiet_proc;

static void on_signal(int sig) { (void)sig; stop = 1; }

static const char *tcp_state_name(unsigned s)
{
	static const char *n[] = { "0", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
				   "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV" };
	return s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

static const char *ev_name(unsigned t)
{
	switch (t) {
	case EBPF_NET_EV_TCP_LISTEN: return "tcp_listen";
	case EBPF_NET_EV_TCP_LISTEN_CLOSE: return "tcp_listen_close";
	case EBPF_NET_EV_TCP_CLOSE: return "tcp_close";
	case EBPF_NET_EV_TCP_EXISTING: return "tcp_existing";
	case EBPF_NET_EV_UDP_OPEN: return "udp_open";
	case EBPF_NET_EV_UDP_CLOSE: return "udp_close";
	case EBPF_NET_EV_SOCK_PID: return "sock_pid";
	case EBPF_NET_EV_PROC_EXEC: return "proc_exec";
	case EBPF_NET_EV_PROC_FORK: return "proc_fork";
	case EBPF_NET_EV_PROC_EXIT: return "proc_exit";
	}
	return "unknown";
}

/* ::ffff:a.b.c.d prints as a.b.c.d, the rest as IPv6. */
static void fmt_addr(const __u8 a[16], char *buf, size_t len)
{
	static const __u8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!memcmp(a, mapped, 12))
		inet_ntop(AF_INET, a + 12, buf, len);
	else
		inet_ntop(AF_INET6, a, buf, len);
}

static void print_info(const struct ebpf_net_sock_info *i)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];

	fmt_addr(i->saddr, s, sizeof(s));
	fmt_addr(i->daddr, d, sizeof(d));
	printf("id=%llu pid=%u netns=%u proto=%u fam=%u %s:%u -> %s:%u state=%s role=%u flags=0x%x "
	       "sent=%llu recv=%llu send_calls=%llu recv_calls=%llu segs_out=%u segs_in=%u retrans=%u "
	       "rst_tx=%u rst_rx=%u srtt_us=%u cwnd=%u sk_err=%u cause=%u",
	       (unsigned long long)i->socket_id, i->pid, i->netns, i->protocol, i->family, s, i->sport, d,
	       i->dport, tcp_state_name(i->state), i->role, i->flags, (unsigned long long)i->bytes_sent,
	       (unsigned long long)i->bytes_received, (unsigned long long)i->send_calls,
	       (unsigned long long)i->recv_calls, i->segs_out, i->segs_in, i->retransmits, i->resets_sent,
	       i->resets_received, i->srtt_us, i->snd_cwnd, i->sk_err, i->cause);
}

static int on_event(void *ctx, void *data, size_t size)
{
	__u32 type = *(__u32 *)data;

	(void)ctx;
	if (type >= EBPF_NET_EV_PROC_EXEC) {
		const struct ebpf_net_proc_event *e = data;

		if (quiet_proc)
			return 0;
		if (size < sizeof(*e)) {
			printf("EV short proc record %zu\n", size);
			return 0;
		}
		printf("EV %s pid=%u ppid=%u uid=%u comm=%.16s cgroup=%llu netns=%u start=%llu exit_code=%d flags=0x%x file=%s\n",
		       ev_name(type), e->pid, e->ppid, e->uid, e->comm, (unsigned long long)e->cgroup_id, e->netns,
		       (unsigned long long)e->start_ns, e->exit_code, e->flags, e->filename);
	} else {
		const struct ebpf_net_sock_event *e = data;

		if (size < sizeof(*e)) {
			printf("EV short sock record %zu\n", size);
			return 0;
		}
		printf("EV %s %s->%s cause=%u sk=0x%llx ", ev_name(type), tcp_state_name(e->old_state),
		       tcp_state_name(e->new_state), e->cause, (unsigned long long)e->sk);
		print_info(&e->info);
		printf("\n");
	}
	fflush(stdout);
	return 0;
}

static char *find_cgroup2(void)
{
	static char path[512];
	char dev[128], mnt[512], type[64];
	FILE *f = fopen("/proc/self/mounts", "r");

	if (!f)
		return NULL;
	while (fscanf(f, "%127s %511s %63s %*[^\n]\n", dev, mnt, type) == 3) {
		if (!strcmp(type, "cgroup2")) {
			snprintf(path, sizeof(path), "%s", mnt);
			fclose(f);
			return path;
		}
	}
	fclose(f);
	return NULL;
}

static void dump_maps(struct bpf_object *obj)
{
	int fd, ifd;
	__u64 key, next;
	struct ebpf_net_sock_info info;
	struct ebpf_net_udp_sock udp;
	struct ebpf_net_udp_remote_key rk, rnext;
	struct ebpf_net_udp_remote_stats rv;
	char a[INET6_ADDRSTRLEN];
	bool first;

	/* TCP: the occupied slots of the table (tcp_keys[i] != 0) */
	fd = bpf_object__find_map_fd_by_name(obj, "tcp_keys");
	ifd = bpf_object__find_map_fd_by_name(obj, "tcp_socks");
	for (__u32 i = 0; !bpf_map_lookup_elem(fd, &i, &key); i++) {
		if (!key || bpf_map_lookup_elem(ifd, &i, &info) || !info.socket_id)
			continue;
		printf("SOCK ");
		print_info(&info);
		printf("\n");
	}
	fd = bpf_object__find_map_fd_by_name(obj, "udp_socks");
	for (first = true; !bpf_map_get_next_key(fd, first ? NULL : &key, &next); first = false) {
		key = next;
		if (bpf_map_lookup_elem(fd, &key, &udp))
			continue;
		printf("SOCK ");
		print_info(&udp.info);
		printf("\n");
	}
	fd = bpf_object__find_map_fd_by_name(obj, "udp_remote");
	for (first = true; !bpf_map_get_next_key(fd, first ? NULL : &rk, &rnext); first = false) {
		rk = rnext;
		if (bpf_map_lookup_elem(fd, &rk, &rv))
			continue;
		fmt_addr(rk.raddr, a, sizeof(a));
		printf("UDP id=%llu remote=%s:%u sent=%llu recv=%llu pkts_sent=%llu pkts_recv=%llu\n",
		       (unsigned long long)rk.socket_id, a, rk.rport, (unsigned long long)rv.bytes_sent,
		       (unsigned long long)rv.bytes_received, (unsigned long long)rv.packets_sent,
		       (unsigned long long)rv.packets_received);
	}
	fd = bpf_object__find_map_fd_by_name(obj, "drops");
	for (__u32 c = 0; c < EBPF_NET_LOSS_MAX; c++) {
		__u64 v = 0;

		if (!bpf_map_lookup_elem(fd, &c, &v) && v)
			printf("DROP cause=%u count=%llu\n", c, (unsigned long long)v);
	}
}

/* Write a __u32 knob into the .rodata image, by its BTF name (the way user
 * space is expected to do it). */
static int set_knob(struct bpf_object *obj, const char *name, __u32 value)
{
	const struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *map = bpf_object__find_map_by_name(obj, ".rodata");
	const struct btf_type *sec;
	const struct btf_var_secinfo *vs;
	size_t size = 0;
	char *data;
	int id;

	if (!btf || !map)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return id;
	sec = btf__type_by_id(btf, id);
	/* libbpf 1.1 returns const void *: the image is writable until load */
	data = (char *)bpf_map__initial_value(map, &size);
	vs = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (vs->size != 4 || vs->offset + 4 > size)
			return -EINVAL;
		memcpy(data + vs->offset, &value, 4);
		return 0;
	}
	return -ENOENT;
}

int main(int argc, char **argv)
{
	char *knobs[16];
	int nknobs = 0;
	__u32 netns_list[16];
	int nnetns = 0;
	char *sizes[16];
	int nsizes = 0;
	bool no_poll = false;
	const char *obj_path = "bpf/.output/ebpf_net.bpf.o";
	const char *cg_path = NULL;
	double linger = 1.0;
	struct bpf_link *links[64];
	int nlinks = 0, cg_fd = -1, opt, err = 0, failed = 0;
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct ring_buffer *rb = NULL;
	pid_t child = 0;

	while ((opt = getopt(argc, argv, "o:c:t:qk:n:m:s")) != -1) {
		switch (opt) {
		case 'm': if (nsizes < 16) sizes[nsizes++] = optarg; break;
		case 's': no_poll = true; break;
		case 'k': if (nknobs < 16) knobs[nknobs++] = optarg; break;
		case 'n': if (nnetns < 16) netns_list[nnetns++] = strtoul(optarg, NULL, 0); break;
		case 'o': obj_path = optarg; break;
		case 'c': cg_path = optarg; break;
		case 't': linger = atof(optarg); break;
		case 'q': quiet_proc = true; break;
		default:
			fprintf(stderr, "usage: %s [-o OBJ] [-c CGROUP2_DIR] [-t SECONDS] [-q] [-k KNOB=VALUE]... [-n NETNS]... [-m MAP=N]... [-s] [-- CMD ARGS...]\n", argv[0]);
			return 2;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	/* Open and load (the verifier runs here) */
	obj = bpf_object__open_file(obj_path, NULL);
	if (!obj) {
		fprintf(stderr, "cannot open %s: %s\n", obj_path, strerror(errno));
		return 1;
	}
	for (int i = 0; i < nknobs; i++) {
		char *eq = strchr(knobs[i], '=');

		if (!eq) {
			fprintf(stderr, "bad -k %s (want NAME=VALUE)\n", knobs[i]);
			bpf_object__close(obj);
			return 2;
		}
		*eq = 0;
		err = set_knob(obj, knobs[i], strtoul(eq + 1, NULL, 0));
		if (err) {
			fprintf(stderr, "cannot set knob %s: %s\n", knobs[i], strerror(-err));
			bpf_object__close(obj);
			return 2;
		}
		printf("KNOB %s=%s\n", knobs[i], eq + 1);
	}
	for (int i = 0; i < nsizes; i++) {
		char *eq = strchr(sizes[i], '=');
		struct bpf_map *m;

		if (eq)
			*eq = 0;
		m = bpf_object__find_map_by_name(obj, sizes[i]);
		if (!eq || !m || bpf_map__set_max_entries(m, strtoul(eq + 1, NULL, 0))) {
			fprintf(stderr, "bad -m %s\n", sizes[i]);
			bpf_object__close(obj);
			return 2;
		}
		printf("MAXENTRIES %s=%s\n", sizes[i], eq + 1);
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "load failed: %s\n", strerror(-err));
		bpf_object__close(obj);
		return 1;
	}

	/* Allowed network namespaces (filter_netns = 1) */
	for (int i = 0; i < nnetns; i++) {
		__u32 one = 1;

		bpf_map_update_elem(bpf_object__find_map_fd_by_name(obj, "netns_allowed"), &netns_list[i], &one, BPF_ANY);
	}

	/* Attach each program on its own; report failures, keep going */
	if (!cg_path)
		cg_path = find_cgroup2();
	if (cg_path)
		cg_fd = open(cg_path, O_RDONLY | O_DIRECTORY);
	bpf_object__for_each_program(prog, obj) {
		enum bpf_prog_type t = bpf_program__type(prog);
		struct bpf_link *l;

		if (t == BPF_PROG_TYPE_CGROUP_SOCK_ADDR || t == BPF_PROG_TYPE_CGROUP_SOCK)
			l = cg_fd >= 0 ? bpf_program__attach_cgroup(prog, cg_fd) : NULL;
		else
			l = bpf_program__attach(prog);
		if (!l) {
			printf("ATTACH %s %s FAILED: %s\n", bpf_program__name(prog), bpf_program__section_name(prog),
			       cg_fd < 0 && t != BPF_PROG_TYPE_TRACEPOINT ? "no cgroup2 mount" : strerror(errno));
			failed++;
			continue;
		}
		printf("ATTACH %s %s ok\n", bpf_program__name(prog), bpf_program__section_name(prog));
		if (nlinks < 64)
			links[nlinks++] = l;
	}
	fflush(stdout);

	rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "events"), on_event, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "ring_buffer__new failed\n");
		err = 1;
		goto out;
	}

	/* Optional command, run once everything is attached */
	if (optind < argc) {
		child = fork();
		if (child == 0) {
			execvp(argv[optind], argv + optind);
			_exit(127);
		}
	}

	/* Poll until the command ends (+ linger), the timeout, or a signal */
	{
		struct timespec t0, now;
		bool child_done = child == 0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (!stop) {
			if (no_poll && !child_done)
				usleep(100000);
			else
				ring_buffer__poll(rb, 100);
			if (!child_done) {
				int status;

				if (waitpid(child, &status, WNOHANG) == child) {
					child_done = true;
					clock_gettime(CLOCK_MONOTONIC, &t0);
					printf("CMD exit status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
				}
				continue;
			}
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (linger > 0 && (now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9 >= linger)
				break;
		}
		ring_buffer__consume(rb);
	}
	dump_maps(obj);

out:
	/* Detach everything, free everything */
	ring_buffer__free(rb);
	for (int i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	if (cg_fd >= 0)
		close(cg_fd);
	bpf_object__close(obj);
	printf("DONE attached=%d failed=%d\n", nlinks, failed);
	return err ? 1 : 0;
}
