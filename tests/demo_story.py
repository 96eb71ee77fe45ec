"""What the demo's story (``newsroom-notify demo``, also the compose ``demo`` profile) must
produce, written out from its steps by the rules in the README: the e2e demo test and the
compose check (tests/compose/stack.py) both hold the service to it."""

from __future__ import annotations

# (recipient, reason) of the notifications; Dan follows in a digest instead.
EXPECTED = {
    # A guest ticking "replies" is asked to confirm; an address that has confirmed nothing yet
    # is called "reader" (the name typed with a request could be anybody's text).
    ("reader", "confirm_subscription"),
    ("Geoff Roach", "reply"),  # Ben replies to him
    ("Ben Okoro", "reply"),  # Carla replies to Ben
    ("Carla Diaz", "reply"),  # Ben answers Carla
    ("Ana Lima", "mention"),  # Carla mentions her
    ("Ana Lima", "follow_up"),  # she follows the article instantly
}
