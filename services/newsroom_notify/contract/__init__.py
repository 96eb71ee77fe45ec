"""Contract v1: the events on the service's topics, their codec and their schemas.

Everything another service relies on lives here: ``events`` (pydantic models of every CloudEvent
in and out), ``codec`` (bytes <-> models, with the reason a record is rejected), ``topics``
(which events travel on which topic, with which key) and ``identity`` (guest subscriber ids).
"""
