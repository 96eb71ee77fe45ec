"""The development harness of newsroom-notify (distribution ``newsroom-notify-dev``, not part of
the service's wheel or image): the local Apache Kafka (``kafka``), the process supervisor
(``process``), the demo (``demo``), event builders (``builders``), one sample of every event
(``samples``), the seeded workload of the fault tests and benchmarks (``workload``) and the
generator of ``schemas/`` (``schemas``). It imports the service; the service never imports it
(``make lint`` checks), except the ``demo`` and ``post --samples`` commands, which load it when
asked and say how to install it when it is missing."""
