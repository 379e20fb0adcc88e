"""The benchmark harness: a seeded workload generator and runners for pricer, zen and HTTP."""
