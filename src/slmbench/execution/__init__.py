"""Running untrusted programs: warm worker pool, sandbox, per-language runners.

``Executor(workers=..., sandbox=...).run(requests)`` yields one ExecResult per ExecRequest as
they finish. The harness process never runs sample code itself.
"""
