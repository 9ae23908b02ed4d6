// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Process lifecycle events (ring buffer, struct ebpf_net_proc_event):
 *   tracepoint/sched/sched_process_exec   exec (pid, ppid, comm, filename)
 *   raw_tracepoint/sched_process_fork     new processes only (not threads)
 *   tracepoint/sched/sched_process_exit   thread-group leader exits
 */
#include "common.bpf.h"

/* Fields every process event carries, from a task. */
static __always_inline void proc_fill(struct ebpf_net_proc_event *e, __u32 type,
				      struct task_struct *task)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->type = type;
	e->pid = BPF_CORE_READ(task, tgid);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ts_ns = bpf_ktime_get_ns();
	e->start_ns = BPF_CORE_READ(task, start_time);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
}

/* Network-namespace filter (a task whose netns is unknown passes). */
static __always_inline bool proc_netns_ok(struct task_struct *task)
{
	__u32 netns;

	if (!netns_filtering())
		return true;
	netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	return !netns || netns_ok(netns);
}

SEC("tracepoint/sched/sched_process_exec")
int proc_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ebpf_net_proc_event *e;
	__u32 off;

	if (!proc_netns_ok(task))
		return 0;

	/* Reserve the record */
	e = reserve_event(sizeof(*e));
	if (!e)
		return 0;

	/* Task fields (comm is already the new program's) */
	proc_fill(e, EBPF_NET_EV_PROC_EXEC, task);

	/* Filename: a __data_loc string inside the tracepoint record */
	off = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);

	bpf_ringbuf_submit(e, SUBMIT_FLAGS);
	return 0;
}

SEC("raw_tracepoint/sched_process_fork")
int proc_fork(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(struct task_struct *parent, struct task_struct *child) */
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	struct ebpf_net_proc_event *e;

	/* A new thread shares its creator's tgid: processes only */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	if (!proc_netns_ok(child))
		return 0;

	e = reserve_event(sizeof(*e));
	if (!e)
		return 0;

	/* The child's ids, comm and start time; cgroup and uid of the parent
	 * (current), which the child inherits */
	proc_fill(e, EBPF_NET_EV_PROC_FORK, child);

	bpf_ringbuf_submit(e, SUBMIT_FLAGS);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int proc_exit(struct trace_event_raw_sched_process_exit *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ebpf_net_proc_event *e;
	__u64 id = bpf_get_current_pid_tgid();

	/* Thread-group leader only (a process whose other threads still run
	 * gets this with flags.group_dead = 0) */
	if ((__u32)id != (__u32)(id >> 32))
		return 0;
	if (!proc_netns_ok(task))
		return 0;

	e = reserve_event(sizeof(*e));
	if (!e)
		return 0;

	proc_fill(e, EBPF_NET_EV_PROC_EXIT, task);

	/* Exit status (set before this tracepoint), group_dead where the
	 * tracepoint has it (6.16+) */
	e->exit_code = BPF_CORE_READ(task, exit_code);
	if (bpf_core_field_exists(ctx->group_dead) && ctx->group_dead)
		e->flags |= EBPF_NET_PROC_F_GROUP_DEAD;

	bpf_ringbuf_submit(e, SUBMIT_FLAGS);
	return 0;
}
