"""
The Python side of the interop tests: the seeds' own stack (cbor2, pika, redis-py, paho-mqtt,
and NSQ's wire protocol spoken by hand as ansq does), run with Debian's /usr/bin/python3.

    peer.py MODE CONFIG_JSON

Publishing modes encode the fixture below with cbor2 and publish it as those services do.
Consuming modes print "ready" once subscribed, then one JSON line per message: the cbor2-decoded
value in a JSON-safe form (see plain()), the body's hex, and the headers the engine carried.
"""
import datetime
import json
import socket
import struct
import sys
import urllib.request

import cbor2


def fixture(n):
    """One message of the seeds' kind: a page view, with the types cattrs would unstructure."""
    return {
        "n": n,
        "url": f"/articles/{n}",
        "at": datetime.datetime(2026, 12, 1, 12, 0, n, tzinfo=datetime.timezone.utc),
        "tags": ["py", "con"],
        "views": 2**70 + n,
        "raw": bytes([0, 255, n]),
        "ratio": 0.25,
        "nested": {"k": [1, {"z": None}], "ok": True},
    }


def plain(v):
    """JSON-safe and exact: dates, bytes and ints past 2^53 get a tagged form."""
    if isinstance(v, datetime.datetime):
        return {"$date": v.astimezone(datetime.timezone.utc).isoformat()}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, bool) or v is None or isinstance(v, (float, str)):
        return v
    if isinstance(v, int):
        return v if abs(v) < 2**53 else {"$int": str(v)}
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, cbor2.CBORTag):
        return {"$tag": v.tag, "value": plain(v.value)}
    raise TypeError(f"cannot show {type(v)}")


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def show(body, headers=None):
    emit({"value": plain(cbor2.loads(body)), "hex": body.hex(), "headers": headers or {}})


def open_envelope(frame):
    """Conveyor's headers envelope (src/core/envelope.ts): "CVY" 0x01, u16 count, then
    count x (u16 name length, name, u32 value length, value), then the body."""
    if len(frame) < 6 or frame[:4] != b"CVY\x01":
        return frame, {}
    (count,) = struct.unpack_from(">H", frame, 4)
    at, headers = 6, {}
    for _ in range(count):
        (n,) = struct.unpack_from(">H", frame, at)
        name = frame[at + 2 : at + 2 + n].decode()
        at += 2 + n
        (m,) = struct.unpack_from(">I", frame, at)
        headers[name] = frame[at + 4 : at + 4 + m].decode()
        at += 4 + m
    return frame[at:], headers


# --- NSQ: TCP protocol V2 by hand (as ansq speaks it) and nsqd's HTTP /pub -----------------


class Nsq:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.sendall(b"  V2")
        self.buf = b""

    def command(self, line, body=None):
        data = line.encode() + b"\n"
        if body is not None:
            data += struct.pack(">I", len(body)) + body
        self.sock.sendall(data)

    def frame(self):
        """(frame type, data), answering heartbeats on the way."""
        while True:
            size = struct.unpack(">I", self.read(4))[0]
            kind = struct.unpack(">I", self.read(4))[0]
            data = self.read(size - 4)
            if kind == 0 and data == b"_heartbeat_":
                self.command("NOP")
                continue
            if kind == 1:
                raise RuntimeError(f"nsqd error: {data.decode()}")
            return kind, data

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("nsqd closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def nsq_pub(c):
    bodies = [cbor2.dumps(fixture(n)) for n in range(c["count"])]
    half = len(bodies) // 2
    # The first half through nsqd's HTTP API, one POST each, as pynsq's HTTP writers do.
    for body in bodies[:half]:
        req = urllib.request.Request(f"{c['http']}/pub?topic={c['topic']}", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as res:
            assert res.read() == b"OK"
    # The rest over TCP: one PUB, then an MPUB of the others.
    nsq = Nsq(c["host"], c["port"])
    rest = bodies[half:]
    nsq.command(f"PUB {c['topic']}", rest[0])
    assert nsq.frame() == (0, b"OK")
    if len(rest) > 1:
        payload = struct.pack(">I", len(rest) - 1) + b"".join(struct.pack(">I", len(b)) + b for b in rest[1:])
        nsq.command(f"MPUB {c['topic']}", payload)
        assert nsq.frame() == (0, b"OK")
    emit({"published": len(bodies)})


def nsq_sub(c):
    nsq = Nsq(c["host"], c["port"])
    nsq.command(f"SUB {c['topic']} {c['channel']}")
    assert nsq.frame() == (0, b"OK")
    nsq.command("RDY 10")
    emit({"ready": True})
    for _ in range(c["count"]):
        kind, data = nsq.frame()
        assert kind == 2, kind
        msg_id, frame = data[10:26], data[26:]
        body, headers = open_envelope(frame) if c.get("envelope") else (frame, {})
        show(body, headers)
        nsq.command(f"FIN {msg_id.decode()}")


# --- RabbitMQ: pika, publisher confirms, manual acks ---------------------------------------


def amqp_pub(c):
    import pika

    with pika.BlockingConnection(pika.URLParameters(c["url"])) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        # Conveyor's topic is a durable fanout exchange of the same name; declaring it again
        # with the same arguments is a no-op.
        ch.exchange_declare(c["exchange"], "fanout", durable=True)
        for n in range(c["count"]):
            props = pika.BasicProperties(content_type="application/cbor", delivery_mode=2, headers={"origin": "python"})
            ch.basic_publish(c["exchange"], "", cbor2.dumps(fixture(n)), props, mandatory=True)
    emit({"published": c["count"]})


def amqp_sub(c):
    import pika

    with pika.BlockingConnection(pika.URLParameters(c["url"])) as conn:
        ch = conn.channel()
        ch.exchange_declare(c["exchange"], "fanout", durable=True)
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queue, c["exchange"])
        emit({"ready": True})
        got = 0
        for method, props, body in ch.consume(queue, inactivity_timeout=20):
            if method is None:
                raise RuntimeError("no message within 20 s")
            headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in (props.headers or {}).items()}
            headers["content_type"] = props.content_type
            show(body, headers)
            ch.basic_ack(method.delivery_tag)
            got += 1
            if got == c["count"]:
                break


# --- Redis: Streams (XADD / XREAD) and the seeds' Pub/Sub chatroom -----------------------


def redis_client(c):
    import redis

    return redis.Redis.from_url(c["url"])


def redis_pub(c):
    r = redis_client(c)
    for n in range(c["count"]):
        # Conveyor's entry layout: the body in field "b" (headers, when any, in "h" as JSON).
        r.xadd(c["stream"], {"b": cbor2.dumps(fixture(n))})
    emit({"published": c["count"]})


def redis_sub(c):
    r = redis_client(c)
    emit({"ready": True})
    last, got = "0", 0
    while got < c["count"]:
        reply = r.xread({c["stream"]: last}, count=c["count"], block=20000)
        if not reply:
            raise RuntimeError("no entry within 20 s")
        for entry_id, fields in reply[0][1]:
            last = entry_id
            headers = json.loads(fields[b"h"]) if b"h" in fields else {}
            show(fields[b"b"], headers)
            got += 1


def redis_chat_pub(c):
    r = redis_client(c)
    for n in range(c["count"]):
        r.publish(c["channel"], cbor2.dumps(fixture(n)))
    emit({"published": c["count"]})


def redis_chat_sub(c):
    pubsub = redis_client(c).pubsub()
    pubsub.subscribe(c["channel"])
    while pubsub.get_message(timeout=5) is None:  # the subscribe confirmation
        pass
    emit({"ready": True})
    got = 0
    while got < c["count"]:
        m = pubsub.get_message(timeout=20)
        if m is None:
            raise RuntimeError("no message within 20 s")
        if m["type"] == "message":
            show(m["data"])
            got += 1


# --- MQTT 5: paho, QoS 1, Content Type and user properties -------------------------------


def mqtt_client(c, on_message=None, on_subscribe=None):
    import paho.mqtt.client as mqtt

    client = mqtt.Client(client_id=c["clientId"], protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.connect(c["host"], c["port"])
    client.loop_start()
    return client


def mqtt_pub(c):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt_client(c)
    for n in range(c["count"]):
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/cbor"
        props.UserProperty = [("origin", "python")]
        client.publish(c["topic"], cbor2.dumps(fixture(n)), qos=1, properties=props).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()
    emit({"published": c["count"]})


def mqtt_sub(c):
    import queue

    got, subscribed = queue.Queue(), queue.Queue()
    client = mqtt_client(c, lambda _c, _u, m: got.put(m), lambda *_: subscribed.put(True))
    client.subscribe(c["topic"], qos=1)
    subscribed.get(timeout=10)
    emit({"ready": True})
    for _ in range(c["count"]):
        m = got.get(timeout=20)
        props = getattr(m, "properties", None)
        headers = dict(getattr(props, "UserProperty", []) or [])
        headers["content_type"] = getattr(props, "ContentType", None)
        show(m.payload, headers)
    client.loop_stop()
    client.disconnect()


MODES = {
    "fixture": lambda c: emit(
        {
            "values": [plain(fixture(n)) for n in range(c["count"])],
            "hex": [cbor2.dumps(fixture(n)).hex() for n in range(c["count"])],
            # Dates as tag 1 (epoch), as Conveyor writes them: then the bytes are the same.
            "hexEpoch": [cbor2.dumps(fixture(n), datetime_as_timestamp=True).hex() for n in range(c["count"])],
        }
    ),
    "nsq-pub": nsq_pub,
    "nsq-sub": nsq_sub,
    "amqp-pub": amqp_pub,
    "amqp-sub": amqp_sub,
    "redis-pub": redis_pub,
    "redis-sub": redis_sub,
    "redis-chat-pub": redis_chat_pub,
    "redis-chat-sub": redis_chat_sub,
    "mqtt-pub": mqtt_pub,
    "mqtt-sub": mqtt_sub,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](json.loads(sys.argv[2]))
