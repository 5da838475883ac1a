/**
 * The QEMU driver's part of `stack-emulator doctor`: the binary and its version, the accelerator
 * (from the cached probe verdict: no VM is started), the tools the driver runs, and captures
 * QEMU refused.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { missing, tool, type Finding } from '../../finding.js'
import type { StackEmulatorError } from '../../errors.js'
import { which } from '../../which.js'
import { cachedAccelVerdict } from './accel.js'
import { findQemu, isChosenBinary, type QemuBinary } from './binary.js'
import type { QemuSettings } from './settings.js'
import { listRefusals } from './snapshot.js'

export interface QemuDoctorContext {
  qemu: QemuSettings
  cacheRoot: string
  root: boolean
  /** /dev/kvm; tests point it elsewhere. */
  kvm: string
}

export async function qemuFindings(ctx: QemuDoctorContext): Promise<Finding[]> {
  const binary = ctx.qemu.binary
  const found = await which(binary)
  const where = 'path' in found ? found.path : undefined
  let problem: StackEmulatorError | undefined
  const qemu = where
    ? await findQemu(binary).catch((error: StackEmulatorError) => {
        problem = error
        return undefined
      })
    : undefined
  // A binary STACK_EMULATOR_QEMU chose is the user's to fix: no package would (and --fix installs none).
  const finding: Finding = qemu
    ? { id: 'qemu', status: 'ok', message: `QEMU ${qemu.version} at ${where}` }
    : isChosenBinary(binary)
      ? {
          id: 'qemu',
          status: 'fail',
          message: problem?.message.split('. ')[0] ?? `${binary} (STACK_EMULATOR_QEMU) not found`,
          fix: 'point STACK_EMULATOR_QEMU at a QEMU system emulator, or unset it',
        }
      : missing(ctx.root, 'qemu', `${binary} ${where ? 'does not run' : 'not found'}; it runs the VM`, 'qemu-system-x86', 'fail')
  return [
    finding,
    await accel(ctx, qemu),
    ...(await Promise.all([
      tool(ctx.root, 'qemu-img', 'qemu-utils', 'runs the VM on copy-on-write disks'),
      tool(ctx.root, 'xorriso', 'xorriso', 'writes the runtime volume (STACKCFG) of the fixture and of the real image'),
    ])),
    ...(await refusedCaptures(ctx.cacheRoot)),
  ]
}

/** Captures QEMU refused, which make every start of their configuration a cold boot. */
async function refusedCaptures(cacheRoot: string): Promise<Finding[]> {
  return (await listRefusals(cacheRoot)).map((refusal) => ({
    id: 'snapshot',
    status: 'warn',
    message: `starts of ${path.basename(refusal.slot)} cold-boot: its ready snapshot's capture was refused on ${refusal.at} (${refusal.reason})`,
    fix: 'stack-emulator image prune (tries the capture again at the next start)',
  }))
}

async function accel(ctx: QemuDoctorContext, qemu: QemuBinary | undefined): Promise<Finding> {
  if (ctx.qemu.accel === 'tcg') return { id: 'accel', status: 'ok', message: 'TCG, as STACK_EMULATOR_ACCEL=tcg asks (no probe)' }
  const { accel, verdict } = qemu ? await cachedAccelVerdict(ctx.cacheRoot, qemu) : { accel: 'kvm', verdict: undefined }
  const name = accel.toUpperCase()
  // STACK_EMULATOR_ACCEL=kvm (or hvf) does not fall back: where it cannot work, every start fails.
  const named = ctx.qemu.accel !== 'auto'
  const fallBack = { fix: 'set STACK_EMULATOR_ACCEL=tcg, or unset it to fall back to TCG' }
  if (named && ctx.qemu.accel !== accel)
    return { id: 'accel', status: 'fail', message: `STACK_EMULATOR_ACCEL=${ctx.qemu.accel} cannot be used on ${process.platform}`, ...fallBack }
  if (verdict?.ok) return { id: 'accel', status: 'ok', message: `${name} works (probed)` }
  if (verdict && named)
    return {
      id: 'accel',
      status: 'fail',
      message: `STACK_EMULATOR_ACCEL=${ctx.qemu.accel}, but ${name} is not usable here (${verdict.reason}): starts fail`,
      ...fallBack,
    }
  if (verdict) return { id: 'accel', status: 'warn', message: `${name} is not usable here (${verdict.reason}); VMs run under TCG (much slower)` }
  if (accel !== 'kvm') return { id: 'accel', status: 'ok', message: `not probed yet; the first start probes ${name}` }
  const kvm = await fs.access(ctx.kvm, fs.constants.R_OK | fs.constants.W_OK).then(
    () => 'usable',
    (e: NodeJS.ErrnoException) => e.code,
  )
  if (kvm === 'usable') return { id: 'accel', status: 'ok', message: `not probed yet; the first start probes KVM (${ctx.kvm} is there)` }
  const then = named ? `starts fail (STACK_EMULATOR_ACCEL=${ctx.qemu.accel})` : 'VMs will run under TCG (much slower)'
  const status = named ? 'fail' : 'warn'
  return kvm === 'EACCES'
    ? { id: 'accel', status, message: `${ctx.kvm} is not accessible to this user: ${then}`, fix: 'sudo usermod -aG kvm $USER (then log in again)' }
    : { id: 'accel', status, message: `no ${ctx.kvm}: ${then}`, ...(named ? fallBack : {}) }
}
