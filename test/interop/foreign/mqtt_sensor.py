# A sensor as paho's getting-started examples write one (paho-mqtt 1.x, MQTT 3.1.1, QoS 1):
# every line typed is one reading on the kitchen's temperature topic.
import paho.mqtt.client as mqtt

client = mqtt.Client()
client.connect("127.0.0.1", 1883)
client.loop_start()

while True:
    reading = input()
    client.publish("plant/kitchen/temperature", reading, qos=1).wait_for_publish()
