"""The pure domain core: who must hear about what, why, and when.

No Faust or Kafka imports anywhere under this package. Stage handlers take their state as plain
mappings and return intents (``domain/intents.py``: a message to a stage under a key, an event
to publish, a fan-out's candidacies for many recipients), so tests drive them with dicts and
lists; ``domain/dispatch.py`` routes a message to its handler, for the Faust shell and the
in-process ``LocalPipeline`` alike.

Flow of a comment::

    comments --(article)--> threads --(commenter:<author>)--> follows --(recipient)--> inbox
                            reply, mention,                   + followed_commenter,  consent,
                            follow_up candidates              merged per recipient   dedupe,
                                                                                     priority,
                                                      notifications topic <----------quiet hours
"""
