"""The seed imports kafka3 (PyPI's kafka-python3 fork); Debian ships the same API as kafka
(python3-kafka, kafka-python 2.0.2). This alias lets the snippets run as written."""
from kafka import KafkaConsumer, KafkaProducer  # noqa: F401
