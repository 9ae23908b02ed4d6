// bench/native/hook-cost: what the per-call programs (sock_send, sock_recv) cost one TCP send
// and one receive, measured paired: on one loopback TCP connection, chunks of
// send(1 byte) + recv(1 byte) alternate with the two programs attached and detached, so that
// the machine's drift (other tenants, frequency) hits both sides alike. The connection exists
// before the programs: the steady state of a keep-alive connection.
//
//   hook-cost <object.o> <rounds> <iterations per chunk>
// Prints one JSON object: mean ns per iteration off and on, the median of the per-round
// differences, and that median per call (two calls per iteration).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <bpf/libbpf.h>

static int client, server;

static double chunk(long n)
{
	struct timespec t0, t1;
	char b = 'x';

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		if (send(client, &b, 1, 0) != 1 || recv(server, &b, 1, 0) != 1) {
			perror("hook-cost: send/recv");
			exit(1);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int connect_pair(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (void *)&a, sizeof(a)) || listen(l, 1) || getsockname(l, (void *)&a, &len))
		return -1;
	client = socket(AF_INET, SOCK_STREAM, 0);
	if (client < 0 || connect(client, (void *)&a, sizeof(a)))
		return -1;
	server = accept(l, NULL, NULL);
	if (server < 0)
		return -1;
	return setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int main(int argc, char **argv)
{
	const char *names[] = { "sock_send", "sock_recv" };
	struct bpf_program *progs[2];
	struct bpf_link *links[2];
	struct bpf_object *obj;
	double *off, *on, *delta, sum_off = 0, sum_on = 0;
	int rounds;
	long n;

	if (argc != 4) {
		fprintf(stderr, "usage: hook-cost <object.o> <rounds> <iterations per chunk>\n");
		return 2;
	}
	rounds = atoi(argv[2]);
	n = atol(argv[3]);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "hook-cost: cannot load %s\n", argv[1]);
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		progs[i] = bpf_object__find_program_by_name(obj, names[i]);
		if (!progs[i]) {
			fprintf(stderr, "hook-cost: %s has no program %s\n", argv[1], names[i]);
			return 1;
		}
	}
	if (connect_pair()) {
		perror("hook-cost: loopback connection");
		return 1;
	}
	off = calloc(rounds, sizeof(double));
	on = calloc(rounds, sizeof(double));
	delta = calloc(rounds, sizeof(double));
	chunk(n); /* warm-up */
	for (int r = 0; r < rounds; r++) {
		off[r] = chunk(n);
		for (int i = 0; i < 2; i++) {
			links[i] = bpf_program__attach(progs[i]);
			if (!links[i]) {
				fprintf(stderr, "hook-cost: cannot attach %s\n", names[i]);
				return 1;
			}
		}
		on[r] = chunk(n);
		for (int i = 0; i < 2; i++)
			bpf_link__destroy(links[i]);
		delta[r] = on[r] - off[r];
		sum_off += off[r];
		sum_on += on[r];
	}
	qsort(delta, rounds, sizeof(double), by_value);
	printf("{\"off_ns_per_iteration\":%.1f,\"on_ns_per_iteration\":%.1f,\"median_delta_ns_per_iteration\":%.1f,\"ns_per_call\":%.1f}\n",
	       sum_off / rounds, sum_on / rounds, delta[rounds / 2], delta[rounds / 2] / 2);
	bpf_object__close(obj);
	return 0;
}
