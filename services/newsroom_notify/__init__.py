"""newsroom-notify: who must hear about which comment, and when.

Consumes article, comment and subscription events from Kafka and publishes instant
notifications and periodic digests (see README.md, docs/ and schemas/).
"""

__version__ = "0.1.0"
