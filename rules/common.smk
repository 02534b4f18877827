# Paths and helpers shared by the rules; rules never build paths by string concatenation.
from pathlib import Path

RESULTS = "results"
LOGS = "logs"
R_LIB = sorted(str(p) for p in Path(workflow.basedir, "R", "lib").glob("*.R"))
BOUNDARY_SCHEMA = str(Path(workflow.basedir, "python", "bayeslift", "boundary.yaml"))
SIMULATED = {
    "history": "data/simulated/history.csv",
    "new_users": "data/simulated/new_users.csv",
    "history_truth": "data/simulated_truth/history_truth.csv",
    "new_users_truth": "data/simulated_truth/new_users_truth.csv",
}


def results(*parts):
    return str(Path(RESULTS, *parts))


def logs(name):
    return str(Path(LOGS, f"{name}.log"))
