import DojoSim

// INTEGRATOR: replace this file. `dojo validate` calls `simulateValidationCase` for every supported case and
// compares what it returns with the published measurement (see Sources/DojoSim/Validation.swift and
// docs/VALIDATION.md). It must simulate one global step of `c.globalBatch` samples of `c.modelSpec` (a zoo model
// spec) at `c.precision` on `c.gpus` GPUs of `try c.machine()`, honouring the non-nil fields of `c.plan` (and
// `c.modelParallel`, TP × PP when only the product is known), and return the step time with the plan it ran.

/// PLACEHOLDER: the simulator is not wired yet, so every supported case fails with this message.
func simulateValidationCase(_ c: ValidationCase) throws -> SimulatedStep {
    throw ValidationRunError("simulator not yet wired")
}
