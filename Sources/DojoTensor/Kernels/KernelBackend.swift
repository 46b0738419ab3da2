// TEMP until the kernels branch lands (it defines KernelBackend).
public enum KernelBackend: String, Sendable { case oneDNN, reference }
