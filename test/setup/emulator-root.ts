// Placeholder: the emulator's trust-root patch for vitest lands here (see src/emulator/).
export {};
