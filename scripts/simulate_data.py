from bayeslift.entry import run_step
from bayeslift.simulate import write_simulated_data

sim = snakemake.params.simulation
run_step(snakemake.log[0], write_simulated_data, n_history=sim["n_history"], n_new_users=sim["n_new_users"],
         seed=sim["seed"], scenario=sim["scenario"], **dict(snakemake.output))
