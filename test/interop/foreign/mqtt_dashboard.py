# A dashboard as paho's getting-started examples write one: every room's temperature, by wildcard.
import paho.mqtt.client as mqtt


def on_connect(client, userdata, flags, rc):
    client.subscribe("plant/+/temperature", qos=1)


def on_subscribe(client, userdata, mid, granted_qos):
    print("subscribed")


def on_message(client, userdata, msg):
    print(f"{msg.topic}: {msg.payload.decode('utf-8')}")


client = mqtt.Client()
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect("127.0.0.1", 1883)
client.loop_forever()
