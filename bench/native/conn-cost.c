// bench/native/conn-cost: what the TCP programs cost one short connection, measured paired: chunks
// of short loopback connections (connect, accept, a 3-byte request, a 3-byte answer, the server
// closes first as an HTTP server with Connection: close does, the client reads EOF and closes)
// alternate with the programs of each object attached and detached. The drift of a shared VM hits
// both sides of a pair alike. All in one thread, so the kernel work of both ends (softirq
// included: loopback delivers inline) lands on this CPU.
//
// The programs attached are those that fire on a TCP connection: tcp_state, tcp_destroy,
// tcp_rst_rx, tcp_rst_tx, sock_send, sock_recv, and, in an object that has them, the cgroup
// programs udp_create and udp_release (on the cgroup v2 directory given: they would run for every
// inet socket created and closed, TCP too, before they could tell it is not UDP; bpf/ no longer
// has them). The ring buffer is drained between chunks, outside the timing.
//
//   conn-cost <cgroup v2 dir> <rounds> <connections per chunk> <object.o>...
// Prints one JSON object per object: the median and quartiles of the per-round differences, in ns
// per connection.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <bpf/libbpf.h>

#define MAX_OBJECTS 4
#define MAX_ROUNDS 1000

static const struct {
	const char *name;
	int cgroup; /* attached to the cgroup, not to its tracepoint */
} programs[] = {
	{ "tcp_state", 0 },  { "tcp_destroy", 0 }, { "tcp_rst_rx", 0 },	 { "tcp_rst_tx", 0 },
	{ "sock_send", 0 },  { "sock_recv", 0 },   { "udp_create", 1 }, { "udp_release", 1 },
};
#define N_PROGRAMS (sizeof(programs) / sizeof(programs[0]))

static int listener;
static struct sockaddr_in addr;

static void fail(const char *what)
{
	perror(what);
	exit(1);
}

static double chunk(long n)
{
	struct timespec t0, t1;
	char b[4];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0), s;

		if (c < 0 || connect(c, (void *)&addr, sizeof(addr)))
			fail("conn-cost: connect");
		s = accept(listener, NULL, NULL);
		if (s < 0)
			fail("conn-cost: accept");
		if (send(c, "GET", 3, 0) != 3 || recv(s, b, 3, 0) != 3 || send(s, "ok\n", 3, 0) != 3)
			fail("conn-cost: request");
		close(s);
		if (recv(c, b, 3, 0) != 3 || recv(c, b, 3, 0) != 0)
			fail("conn-cost: answer");
		close(c);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n;
}

static int on_record(void *ctx, void *data, size_t size)
{
	return 0;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct bpf_object *objects[MAX_OBJECTS];
	struct ring_buffer *rings[MAX_OBJECTS];
	static double delta[MAX_OBJECTS][MAX_ROUNDS];
	socklen_t len = sizeof(addr);
	int rounds, k, cgroup;
	long n;

	if (argc < 5 || argc - 4 > MAX_OBJECTS) {
		fprintf(stderr, "usage: conn-cost <cgroup v2 dir> <rounds> <connections per chunk> <object.o>... (at most %d)\n", MAX_OBJECTS);
		return 2;
	}
	cgroup = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (cgroup < 0)
		fail("conn-cost: cgroup v2 directory");
	argv++;
	argc--;
	rounds = atoi(argv[1]);
	n = atol(argv[2]);
	k = argc - 3;
	if (rounds < 1 || rounds > MAX_ROUNDS || n < 1) {
		fprintf(stderr, "conn-cost: rounds must be 1..%d and the chunk at least 1\n", MAX_ROUNDS);
		return 2;
	}
	for (int j = 0; j < k; j++) {
		objects[j] = bpf_object__open_file(argv[3 + j], NULL);
		if (!objects[j] || bpf_object__load(objects[j])) {
			fprintf(stderr, "conn-cost: cannot load %s\n", argv[3 + j]);
			return 1;
		}
		rings[j] = ring_buffer__new(bpf_object__find_map_fd_by_name(objects[j], "events"), on_record, NULL, NULL);
		if (!rings[j]) {
			fprintf(stderr, "conn-cost: %s has no ring buffer 'events'\n", argv[3 + j]);
			return 1;
		}
	}
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (void *)&addr, sizeof(addr)) || listen(listener, 64) ||
	    getsockname(listener, (void *)&addr, &len))
		fail("conn-cost: listener");

	chunk(n); /* warm-up */
	for (int r = 0; r < rounds; r++) {
		for (int j = 0; j < k; j++) {
			struct bpf_link *links[N_PROGRAMS];
			double off = chunk(n), on;

			for (size_t p = 0; p < N_PROGRAMS; p++) {
				struct bpf_program *prog = bpf_object__find_program_by_name(objects[j], programs[p].name);

				links[p] = NULL;
				if (!prog && programs[p].cgroup)
					continue; /* not in this object */
				links[p] = !prog ? NULL : programs[p].cgroup ? bpf_program__attach_cgroup(prog, cgroup) : bpf_program__attach(prog);
				if (!links[p]) {
					fprintf(stderr, "conn-cost: cannot attach %s of %s\n", programs[p].name, argv[3 + j]);
					return 1;
				}
			}
			on = chunk(n);
			for (size_t p = 0; p < N_PROGRAMS; p++)
				bpf_link__destroy(links[p]);
			ring_buffer__consume(rings[j]);
			delta[j][r] = on - off;
		}
	}
	for (int j = 0; j < k; j++) {
		qsort(delta[j], rounds, sizeof(double), by_value);
		printf("{\"object\":\"%s\",\"median_ns_per_connection\":%.0f,\"q1_ns\":%.0f,\"q3_ns\":%.0f}\n", argv[3 + j],
		       delta[j][rounds / 2], delta[j][rounds / 4], delta[j][3 * rounds / 4]);
		ring_buffer__free(rings[j]);
		bpf_object__close(objects[j]);
	}
	close(listener);
	close(cgroup);
	return 0;
}
