"""The pure domain core: who must hear about what, why, and when.

No Faust or Kafka imports anywhere under this package. Stage handlers take their state as plain
mappings and return the messages to send, so tests drive them with dicts and lists.

Flow of a comment::

    comments --(article)--> threads --(commenter:<author>)--> follows --(recipient)--> inbox
                            reply, mention,                   + followed_commenter,  consent,
                            follow_up candidates              merged per recipient   dedupe,
                                                                                     priority,
                                                      notifications topic <----------quiet hours
"""
