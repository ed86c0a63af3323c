//! lawmesh-sim: outage simulations (being built; see the simulations issue).
