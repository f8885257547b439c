"""payGO terminal simulator: registers and kiosks that speak the POS sync API
(docs/pos-sync-api.md) as clients, for demos, load tests and end-to-end tests.

A pure client: it imports nothing from the server (no Django).
"""

from simulator.runner import OptionError, Options, Simulation, SimulationAborted, run

__all__ = ["OptionError", "Options", "Simulation", "SimulationAborted", "run"]
