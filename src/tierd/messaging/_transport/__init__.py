"""The ZeroMQ transport: how messages cross between processes and hosts.

A runtime talks to its clients and to the runtimes that serve its other
levels through ZeroMQ; everything that knows about sockets, frames and
peers is here, and nothing outside needs to know more than this:

- `codec`: the wire, versioned msgpack envelopes decoded defensively;
- `bridge`: the one I/O thread that owns the runtime's sockets (a ROUTER
  for clients and peers, a DEALER per peer), and `handoff`, how other
  threads give it work;
- `inbound`: what the runtime does with each frame a client or peer sends,
  with `dedup` (resends handled once) and `rejections` (refused frames
  counted and logged without floods);
- `peer`: `PeerLink`, the `tierd.messaging.link.Link` to the levels of
  another runtime: heartbeats, held messages, reply routes;
- `security`: CURVE keys and the ZAP authenticator;
- `client`: `tierd.Client`, the one public name, re-exported by `tierd`.

The transport depends on the message model and the link contract only:
`tierd.messaging.message`, `tierd.messaging.link`, `tierd.errors`,
`tierd.logging`, the primitives `tierd._outcome`, `tierd._deadlines` and
`tierd._clock`, and its own modules. It never imports the orchestrators,
the actors, the config, the runtime, metrics or remote control: a level is
reached through a `Link`, and where the config shapes the transport it is
read through small protocols beside the code that reads it
(`bridge.BridgeSettings`, `peer.PeerSettings`), which the config's pydantic
models satisfy as they are.
"""
