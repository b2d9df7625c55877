"""RabbitMQ: topology, message codec, publisher with confirms, and the generic consume loop."""
