"""The message model (`message`), the link contract (`link`) and the event seam (`events`).

The ZeroMQ transport is the private subpackage `_transport`.
"""
