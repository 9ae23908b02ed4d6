// The metrics the reducer exports: the OpenTelemetry network metric family, with Prometheus
// names. Flow series are oriented: `source` is the endpoint a measurement belongs to (the one
// that sent the bytes, retransmitted, measured the RTT); `dest` is its peer. Connection
// counts (active, new, resets, SYN timeouts) are oriented client to server.

import type { MetricDef } from '../outputs/report.js';

const counter = (name: string, otelName: string, unit: string, help: string): MetricDef => ({ name, otelName, kind: 'counter', unit, help });
const gauge = (name: string, otelName: string, unit: string, help: string): MetricDef => ({ name, otelName, kind: 'gauge', unit, help });

/** RTT histogram bucket bounds, in seconds: 50 µs to 2.5 s. */
export const RTT_BOUNDS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export const flowMetrics = {
  tcpBytes: counter('tcp_bytes', 'tcp.bytes', 'By', 'TCP payload bytes sent from source to dest.'),
  tcpSegments: counter('tcp_segments', 'tcp.packets', '{segment}', 'TCP segments sent from source to dest.'),
  tcpRetrans: counter('tcp_retrans', 'tcp.retrans', '{segment}', 'TCP segments retransmitted by source to dest.'),
  tcpActive: gauge('tcp_active', 'tcp.active', '{connection}', 'Open TCP connections from client source to server dest, at the end of the interval.'),
  tcpNewSockets: counter('tcp_new_sockets', 'tcp.new_sockets', '{connection}', 'TCP connections opened from client source to server dest.'),
  tcpResets: counter('tcp_resets', 'tcp.resets', '{connection}', 'TCP connections from client source to server dest ended by a reset (refused, or reset after established).'),
  tcpSynTimeouts: counter('tcp_syn_timeouts', 'tcp.syn_timeouts', '{connection}', 'TCP connects from source to dest that got no answer to their SYNs.'),
  tcpRtt: { name: 'tcp_rtt_seconds', otelName: 'tcp.rtt', kind: 'histogram', unit: 's', help: 'Smoothed RTT measured by source towards dest: one observation per connection per interval.' } as MetricDef,
  tcpRttAverage: gauge('tcp_rtt_average_seconds', 'tcp.rtt.average', 's', 'Average smoothed RTT measured by source towards dest during the interval.'),
  udpBytes: counter('udp_bytes', 'udp.bytes', 'By', 'UDP payload bytes sent from source to dest.'),
  udpPackets: counter('udp_packets', 'udp.packets', '{datagram}', 'UDP datagrams sent from source to dest.'),
} as const satisfies Record<string, MetricDef>;

export const selfMetrics = {
  connections: gauge('ebpf_net_reducer_collectors', 'ebpf_net.reducer.collectors', '{connection}', 'Collectors connected now.'),
  messages: counter('ebpf_net_reducer_messages', 'ebpf_net.reducer.messages', '{message}', 'Messages received from collectors.'),
  bytes: counter('ebpf_net_reducer_received_bytes', 'ebpf_net.reducer.received_bytes', 'By', 'Bytes received from collectors.'),
  decodeErrors: counter('ebpf_net_reducer_decode_errors', 'ebpf_net.reducer.decode_errors', '{error}', 'Collector connections closed for a malformed stream, by error code.'),
  unknownMessages: counter('ebpf_net_reducer_unknown_messages', 'ebpf_net.reducer.unknown_messages', '{message}', 'Messages skipped because their id is unknown to this reducer.'),
  dropped: counter('ebpf_net_reducer_dropped', 'ebpf_net.reducer.dropped', '{entry}', 'Entries evicted or refused because a table was full, by table.'),
  collectorLost: counter('ebpf_net_collector_lost_events', 'ebpf_net.collector.lost_events', '{event}', 'Events the collectors reported lost, by node and cause.'),
  series: gauge('ebpf_net_reducer_series', 'ebpf_net.reducer.series', '{series}', 'Flow series held now.'),
  seriesOverflow: counter('ebpf_net_reducer_series_overflow', 'ebpf_net.reducer.series_overflow', '{series}', 'Series folded into the overflow series because --max-series was reached.'),
} as const satisfies Record<string, MetricDef>;
