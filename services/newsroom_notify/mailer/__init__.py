"""The reference mailer: renders notifications and digests to e-mail and sends them by SMTP.

``render`` is pure (events -> ``EmailMessage``); ``ledger`` holds the pure de-duplication and
retraction rules; ``consumer`` is the thin Kafka/SMTP shell (``newsroom-notify mailer``).
"""
