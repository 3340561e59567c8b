"""System metrics: what each run costs the machine, and the load of every worker machine."""
