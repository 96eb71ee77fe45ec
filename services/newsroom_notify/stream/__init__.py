"""The Faust shell: app factory, agents and the Kafka plumbing around the pure domain."""
