// Counters of the intake, exported as the reducer's own metrics.

export interface IntakeStats {
  /** Connections open now. */
  connections: number;
  accepted: number;
  messages: number;
  bytes: number;
  unknownMessages: number;
  heartbeatTimeouts: number;
  /** Connections closed for a malformed stream, by ProtocolError code (INTERNAL: a handler failed). */
  decodeErrors: Record<string, number>;
}

export function newIntakeStats(): IntakeStats {
  return { connections: 0, accepted: 0, messages: 0, bytes: 0, unknownMessages: 0, heartbeatTimeouts: 0, decodeErrors: {} };
}
