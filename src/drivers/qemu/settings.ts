/**
 * The QEMU driver's own environment variables. settings.ts reads them with the rest, once, in
 * the client: they travel to the supervisor in its config file, as every setting does.
 */
import { StackEmulatorError } from '../../errors.js'

export type AccelChoice = 'auto' | 'kvm' | 'hvf' | 'tcg'
const ACCEL_CHOICES: readonly AccelChoice[] = ['auto', 'kvm', 'hvf', 'tcg']

export interface QemuSettings {
  /** QEMU system emulator binary name or path (STACK_EMULATOR_QEMU). @default 'qemu-system-x86_64' */
  binary: string
  /** Accelerator (STACK_EMULATOR_ACCEL): `auto` probes KVM (HVF on macOS) and falls back to TCG. @default 'auto' */
  accel: AccelChoice
}

export function readQemuSettings(env: NodeJS.ProcessEnv): QemuSettings {
  const accel = (env.STACK_EMULATOR_ACCEL || 'auto').toLowerCase()
  if (!(ACCEL_CHOICES as string[]).includes(accel)) {
    throw new StackEmulatorError(`STACK_EMULATOR_ACCEL must be one of ${ACCEL_CHOICES.join(', ')}; got ${JSON.stringify(env.STACK_EMULATOR_ACCEL)}`, {
      code: 'BAD_OPTION', fix: 'Unset it to probe, or set it to tcg to skip the probe.',
    })
  }
  return { binary: env.STACK_EMULATOR_QEMU || 'qemu-system-x86_64', accel: accel as AccelChoice }
}
