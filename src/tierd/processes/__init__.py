"""Processes: durable multi-step work with a lifecycle, steps, progress, history and recovery.

The public names (`tierd.Process`, `tierd.step`, `tierd.StepContext`,
`tierd.Retry`) are re-exported by `tierd`; the modules here are internal.
"""
