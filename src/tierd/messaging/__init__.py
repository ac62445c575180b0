"""Messages, the priority queue, and (with the network work) codec, bridge and client."""
