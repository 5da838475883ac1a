/**
 * The QEMU driver's own environment variables, read from the STACK_EMULATOR_* variables that
 * Settings carries (read once in the client, sent to the supervisor in its config file), and
 * checked when the client resolves the image (drivers/registry.ts), before anything starts.
 */
import { StackEmulatorError } from '../../errors.js'

export type AccelChoice = 'auto' | 'kvm' | 'hvf' | 'tcg'
const ACCEL_CHOICES: readonly AccelChoice[] = ['auto', 'kvm', 'hvf', 'tcg']

export interface QemuSettings {
  /** QEMU system emulator binary name or path (STACK_EMULATOR_QEMU). @default 'qemu-system-x86_64' */
  binary: string
  /** Accelerator (STACK_EMULATOR_ACCEL): `auto` probes KVM (HVF on macOS) and falls back to TCG. @default 'auto' */
  accel: AccelChoice
  /**
   * Seeded snapshots kept in the cache, all projects and images together
   * (STACK_EMULATOR_MAX_SEEDED_SNAPSHOTS): each save drops the least recently used beyond it,
   * never one a running VM uses. @default 5
   */
  maxSeededSnapshots: number
}

export const MAX_SEEDED_SNAPSHOTS = 5

export function readQemuSettings(env: NodeJS.ProcessEnv): QemuSettings {
  const accel = (env.STACK_EMULATOR_ACCEL || 'auto').toLowerCase()
  if (!(ACCEL_CHOICES as string[]).includes(accel)) {
    throw new StackEmulatorError(`STACK_EMULATOR_ACCEL must be one of ${ACCEL_CHOICES.join(', ')}; got ${JSON.stringify(env.STACK_EMULATOR_ACCEL)}`, {
      code: 'BAD_OPTION',
      fix: 'Unset it to probe, or set it to tcg to skip the probe.',
    })
  }
  return {
    binary: env.STACK_EMULATOR_QEMU || 'qemu-system-x86_64',
    accel: accel as AccelChoice,
    maxSeededSnapshots: maxSeeded(env.STACK_EMULATOR_MAX_SEEDED_SNAPSHOTS),
  }
}

function maxSeeded(value: string | undefined): number {
  if (!value) return MAX_SEEDED_SNAPSHOTS
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) {
    throw new StackEmulatorError(`STACK_EMULATOR_MAX_SEEDED_SNAPSHOTS must be a whole number of snapshots, at least 1; got ${JSON.stringify(value)}`, {
      code: 'BAD_OPTION',
      fix: `Unset it for ${MAX_SEEDED_SNAPSHOTS}, or raise it to keep more projects' seeded snapshots (each holds a copy of the RAM the guest touched).`,
    })
  }
  return Number(value)
}
