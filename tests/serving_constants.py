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
# Printed format of batch scoring (scoring.FLOAT_FORMAT); HTTP and batch numbers must agree under it.
FLOAT_FORMAT = "%.9g"
