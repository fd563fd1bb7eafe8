"""The floor: a naive serial → MQTT bridge with no durability, for comparison with gatewayd.

    naive_bridge.py SERIAL_PORT BROKER_PORT TOPIC

Reads CR-terminated scans with pyserial and publishes each one as it is, at QoS 1, with
paho-mqtt's network thread. Nothing is stored: a read taken while the broker is away, or
while this process is down, is lost.
"""

import sys

import paho.mqtt.client as mqtt
import serial
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


def main() -> None:
    port, broker_port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive-bridge", protocol=MQTTProtocolVersion.MQTTv5)
    client.connect("127.0.0.1", broker_port)
    client.loop_start()
    with serial.Serial(port, 9600) as scanner:
        pending = b""
        while True:
            pending += scanner.read(scanner.in_waiting or 1)
            *reads, pending = pending.split(b"\r")
            for read in reads:
                if read:
                    client.publish(topic, read, qos=1)


if __name__ == "__main__":
    main()
