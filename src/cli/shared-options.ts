import { BACKEND_CHOICES, type BackendChoice, DEVICE_CHOICES, type DeviceChoice, PRECISION_CHOICES, type Precision } from '../backend/select.js';

/**
 * Options that several commands declare alike, written once: `.option('model', MODEL_FILE)`.
 * Commands that word one differently (train's --model is the cell type) declare their own.
 */

/** The model file a command reads. */
export const MODEL_FILE = { alias: 'm', type: 'string', demandOption: true, describe: 'checkpoint written by charnn train' } as const;

export const INVALID_UTF8 = {
  type: 'string',
  choices: ['error', 'replace'] as const,
  default: 'error' as const,
  describe: 'on bytes that are not UTF-8: stop, or decode as U+FFFD',
} as const;

/** How eval and dump read text tokens outside the model's vocabulary. */
export const UNKNOWN_IN_TEXT = {
  type: 'string',
  choices: ['error', 'skip', 'unk'] as const,
  describe: 'tokens outside the vocabulary: stop, drop them, or read them as <unk> [default: unk at word level, skip at char level]',
} as const;

export const BACKEND = {
  type: 'string',
  choices: BACKEND_CHOICES,
  default: 'auto' as BackendChoice,
  describe: 'CPU arithmetic: native SIMD addon, or TypeScript',
} as const;

/** train's and bench's --precision (see applyPrecision). */
export const PRECISION = {
  type: 'string',
  choices: PRECISION_CHOICES,
  default: 'fp32' as Precision,
  describe: 'matrix products in float32, or bf16 (bfloat16 inputs, float32 sums; weights, optimizer state and cells stay float32): native backend on a CPU with AVX512-BF16 only',
} as const;

export const DEVICE = {
  type: 'string',
  choices: DEVICE_CHOICES,
  default: 'auto' as DeviceChoice,
  describe: 'where to run: the GPU when a hardware WebGPU adapter is present (auto), the GPU or fail (gpu), or the CPU (cpu)',
} as const;
