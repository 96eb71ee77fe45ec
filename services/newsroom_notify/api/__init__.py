"""The subscription HTTP API: subscribe, confirm, one-click unsubscribe, preferences, erasure.

``service`` holds the logic over two ports (publish an event, read a profile) and returns plain
responses, so it is tested without a web server; ``web`` mounts it on the worker's Faust web
server and routes reads to the worker that owns the subscriber's partition.
"""
