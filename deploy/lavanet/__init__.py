"""The plan as a Lava process network (network; Lava environment), the custom Lava processes (procs),
running a script in the Lava environment from the training one (env), and the installation's smoke
test (smoke). Named `lavanet`, not `lava`: a folder `lava` here would shadow the `lava` package for
scripts run from deploy/."""
