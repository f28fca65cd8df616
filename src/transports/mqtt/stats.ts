/**
 * `stats()` for mqtt://: there is nothing to read. An MQTT broker keeps sessions, not queues
 * (a shared subscription's backlog lives in its members' sessions), and the protocol has no
 * request that reports depth or consumers; Mosquitto's `$SYS/#` topics give broker totals only.
 */
import type { TransportStats } from '../../core/transport.ts';

export async function mqttStats(): Promise<TransportStats> {
  return {
    kind: 'mqtt',
    topics: [],
    note: "MQTT has no queue depth or consumer counts to report (a broker keeps sessions, not queues); Mosquitto's $SYS/# topics give broker-wide totals",
  };
}
