"""Daemons: the `Daemon` base class, its states, and the built-in daemons."""
