"""Settings of the serving tests, each with its reason."""

# Small limits so the 413 cases need only small bodies; the batch-equality request fits under both.
TEST_MAX_BODY_BYTES = 32 * 1024
TEST_MAX_INSTANCES = 100
# Users in the batch-vs-HTTP equality check (~110 bytes each in JSON, under TEST_MAX_BODY_BYTES).
EQUALITY_USERS = 100
# How long a server subprocess may take to import torch, verify the manifest and bind (seconds).
SERVER_START_TIMEOUT = 60
# Hypothesis: bounded so the fuzz file runs in seconds.
FUZZ_MAX_EXAMPLES = 200
# HTTP and batch numbers must agree when both are printed to 9 significant digits (batch CSV holds full float64).
FLOAT_FORMAT = "%.9g"
