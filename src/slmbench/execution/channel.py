"""The result channel between a test program and the harness.

A test program signals "all tests ran" by writing the value of the environment variable
TOKEN_ENV (a fresh random nonce per execution) to file descriptor RESULT_FD, which the executor
opens as a pipe it reads on the harness side. A program that exits early with status 0 (exit(0)
before the tests) never writes it, so it cannot pass. (A module of its own: the inline Python
runtime needs these two names and nothing else of the languages package.)
"""

RESULT_FD = 3
TOKEN_ENV = "SLMBENCH_TOKEN"
