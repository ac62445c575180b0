"""The message model (`message`) and the link contract (`link`).

The ZeroMQ transport is the private subpackage `_transport`. `queue`, the
level's priority queue, still lives here until it moves to the orchestrators.
"""
