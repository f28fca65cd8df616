/**
 * Per-connection protocol state, as nsqd's clientV2: what IDENTIFY negotiated, the subscription,
 * and the counters /stats reports. The connection (connection.ts) owns the socket; the command
 * handlers (commands.ts) read and change this state.
 */
import type { ChannelConsumer } from '../engine.ts';
import type { AuthState } from './auth.ts';
import { DEFAULT_OUTPUT_BUFFER_SIZE, DEFAULT_OUTPUT_BUFFER_TIMEOUT_MS, type ProtocolLimits } from '../options.ts';

/** nsqd's client states, numbered as nsqd reports them in /stats. */
export const STATE_INIT = 0;
export const STATE_SUBSCRIBED = 3;
export const STATE_CLOSING = 4;

export class ClientState {
  readonly id: number;
  readonly remoteAddress: string;
  readonly connectTime = Math.floor(Date.now() / 1000);
  state = STATE_INIT;

  clientId: string;
  hostname: string;
  userAgent = '';
  /** 0 = heartbeats disabled (IDENTIFY heartbeat_interval -1). */
  heartbeatIntervalMs: number;
  msgTimeoutMs: number;
  /** Bytes buffered before a write is forced; 1 = write every frame at once (IDENTIFY -1). */
  outputBufferSize = DEFAULT_OUTPUT_BUFFER_SIZE;
  outputBufferTimeoutMs = DEFAULT_OUTPUT_BUFFER_TIMEOUT_MS;
  sampleRate = 0;

  topicName: string | undefined;
  channelName: string | undefined;
  consumer: ChannelConsumer | undefined;
  readyCount = 0;
  messageCount = 0;
  finishCount = 0;
  requeueCount = 0;
  /** Upgraded to TLS (IDENTIFY tls_v1), with what was negotiated. */
  tls = false;
  tlsVersion = '';
  tlsCipherSuite = '';
  /** The client certificate's subject CN (with a client auth policy), sent to the auth server. */
  tlsCommonName = '';
  /** The AUTH secret and the auth server's last answer (refreshed once expired). */
  authSecret: string | undefined;
  auth: AuthState | undefined;
  /** Messages published per topic (nsqd's pub_counts); only producers have entries. */
  readonly pubCounts = new Map<string, number>();

  constructor(id: number, remoteAddress: string, limits: ProtocolLimits) {
    this.id = id;
    this.remoteAddress = remoteAddress;
    // nsqd names a client by its address until IDENTIFY says otherwise.
    this.clientId = remoteAddress;
    this.hostname = remoteAddress;
    this.heartbeatIntervalMs = Math.floor(limits.clientTimeoutMs / 2);
    this.msgTimeoutMs = limits.msgTimeoutMs;
  }

  countPublished(topic: string, count: number): void {
    this.pubCounts.set(topic, (this.pubCounts.get(topic) ?? 0) + count);
  }

  /** nsqd's ClientStats JSON (stats.go); compression is always off here. */
  stats(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      client_id: this.clientId,
      hostname: this.hostname,
      version: 'V2',
      remote_address: this.remoteAddress,
      state: this.state,
      ready_count: this.readyCount,
      in_flight_count: this.consumer?.inFlight ?? 0,
      message_count: this.messageCount,
      finish_count: this.finishCount,
      requeue_count: this.requeueCount,
      connect_ts: this.connectTime,
      sample_rate: this.sampleRate,
      deflate: false,
      snappy: false,
      user_agent: this.userAgent,
      tls: this.tls,
      tls_cipher_suite: this.tlsCipherSuite,
      tls_version: this.tlsVersion,
      tls_negotiated_protocol: '',
      tls_negotiated_protocol_is_mutual: false,
    };
    if (this.auth) {
      out.authed = true;
      out.auth_identity = this.auth.identity;
      out.auth_identity_url = this.auth.identityUrl;
    }
    if (this.pubCounts.size > 0) {
      out.pub_counts = [...this.pubCounts].map(([topic, count]) => ({ topic, count }));
    }
    return out;
  }
}
