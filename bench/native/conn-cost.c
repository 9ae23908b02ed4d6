// bench/native/conn-cost: what an object's programs cost one short connection, measured paired: chunks
// of short loopback connections (connect, accept, a 3-byte request, a 3-byte answer, the server
// closes first as an HTTP server with Connection: close does, the client reads EOF and closes)
// alternate with the programs of each object attached and detached. The drift of a shared VM hits
// both sides of a pair alike. All in one thread, so the kernel work of both ends (softirq
// included: loopback delivers inline) lands on this CPU.
//
// Every program of an object is attached, as the collector attaches them: tracepoints with
// bpf_program__attach, cgroup programs on the cgroup v2 directory given (a cgroup hook that every
// inet socket runs at create or close would count against each connection; bpf/'s UDP helpers run
// for UDP only). Not the SEC("raw_tp") programs without a tracepoint (refresh_tcp, refresh_udp):
// user space runs them. The ring buffer is drained between chunks, outside the timing.
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
#define MAX_PROGRAMS 32

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
			struct bpf_link *links[MAX_PROGRAMS];
			struct bpf_program *prog;
			double off = chunk(n), on;
			int attached = 0;

			bpf_object__for_each_program(prog, objects[j]) {
				const char *section = bpf_program__section_name(prog);

				if (!strcmp(section, "raw_tp"))
					continue; /* run by user space, never attached */
				if (attached == MAX_PROGRAMS) {
					fprintf(stderr, "conn-cost: %s has more than %d programs\n", argv[3 + j], MAX_PROGRAMS);
					return 1;
				}
				links[attached] = strncmp(section, "cgroup/", 7) ? bpf_program__attach(prog)
										: bpf_program__attach_cgroup(prog, cgroup);
				if (!links[attached]) {
					fprintf(stderr, "conn-cost: cannot attach %s of %s\n", bpf_program__name(prog), argv[3 + j]);
					return 1;
				}
				attached++;
			}
			on = chunk(n);
			for (int p = 0; p < attached; p++)
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
