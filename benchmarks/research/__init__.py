"""Research code behind benchmark scripts: candidate formulations and instruments, not part of the library.

Scripts in benchmarks/ import it as `research.<module>` (their folder is on sys.path).
"""
