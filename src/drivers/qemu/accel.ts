/**
 * Chooses the accelerator by a real, time-bounded probe: on some hosts /dev/kvm exists but QEMU
 * aborts (kvm_buf_set_msrs) or hangs with it, so existence proves nothing. The verdict is cached
 * per QEMU version and kernel release, since a probe that hangs costs its whole timeout; the
 * fallback is said when the probe runs, so once per machine, not on every start. Only `auto`
 * falls back: an accelerator named in STACK_EMULATOR_ACCEL that does not work is an error.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { StackEmulatorError } from '../../errors.js'
import type { AccelChoice } from './settings.js'

export type Accel = 'kvm' | 'hvf' | 'tcg'

export interface AccelDecision {
  accel: Accel
  /** One line for the user when the choice fell back to TCG (after a fresh probe only). */
  warning?: string
}

export interface AccelVerdict {
  ok: boolean
  reason: string
}

type Qemu = { path: string; version: string }

const PROBE_TIMEOUT_MS = 4000
const CACHE_FILE = 'accel-probe.json'
const hostAccel = (): Accel => (process.platform === 'darwin' ? 'hvf' : 'kvm')
const cacheKey = (qemu: Qemu, accel: Accel) => `${qemu.path} ${qemu.version} ${os.release()} ${accel}`

export async function chooseAccel(options: { choice: AccelChoice; qemu: Qemu; cacheRoot: string }): Promise<AccelDecision> {
  const { choice, qemu } = options
  if (choice === 'tcg') return { accel: 'tcg' }
  const candidate = hostAccel()
  if (choice !== 'auto' && choice !== candidate) {
    throw new StackEmulatorError(`STACK_EMULATOR_ACCEL=${choice} cannot be used on ${process.platform}, which has ${candidate} (or tcg)`, {
      code: 'ACCEL_UNAVAILABLE',
      fix: `Set STACK_EMULATOR_ACCEL=${candidate} or tcg, or unset it to probe ${candidate.toUpperCase()} and fall back to TCG.`,
    })
  }
  const cacheFile = path.join(options.cacheRoot, CACHE_FILE)
  const key = cacheKey(qemu, candidate)
  // A named accelerator is probed again after a failed verdict: the user may have fixed the host since.
  const cached = await readCached(cacheFile, key).then((v) => (v && (v.ok || choice === 'auto') ? v : undefined))
  const verdict = cached ?? (await probe(qemu.path, candidate))
  if (!cached) await writeCached(cacheFile, key, verdict).catch(() => {}) // a read-only cache probes again next time
  if (verdict.ok) return { accel: candidate }
  if (choice !== 'auto') throw explicitChoiceFailed(choice, verdict)
  if (cached) return { accel: 'tcg' }
  return {
    accel: 'tcg',
    warning: `${candidate.toUpperCase()} is not usable here (${verdict.reason}); falling back to TCG (much slower). Set STACK_EMULATOR_ACCEL=tcg to skip the probe.`,
  }
}

function explicitChoiceFailed(choice: Accel, verdict: AccelVerdict): StackEmulatorError {
  const access = choice === 'kvm' && /\/dev\/kvm/.test(verdict.reason) ? ' Give this user /dev/kvm (sudo usermod -aG kvm $USER, then log in again), or' : ''
  return new StackEmulatorError(`STACK_EMULATOR_ACCEL=${choice}, but ${choice.toUpperCase()} is not usable here: ${verdict.reason}`, {
    code: 'ACCEL_UNAVAILABLE',
    fix: `${access}${access ? ' set' : 'Set'} STACK_EMULATOR_ACCEL=tcg, or unset it (the probe then falls back to TCG by itself, with a warning).`,
  })
}

/** The verdict the next start would reuse for this QEMU and kernel, without probing (for `doctor`). */
export async function cachedAccelVerdict(cacheRoot: string, qemu: Qemu): Promise<{ accel: Accel; verdict: AccelVerdict | undefined }> {
  const accel = hostAccel()
  return { accel, verdict: await readCached(path.join(cacheRoot, CACHE_FILE), cacheKey(qemu, accel)) }
}

async function probe(qemuPath: string, accel: Accel): Promise<AccelVerdict> {
  const { execa } = await import('execa') // only when no verdict is cached: off the start-up path
  if (accel === 'kvm') {
    try {
      await fs.access('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK)
    } catch {
      return { ok: false, reason: '/dev/kvm is missing or not accessible' }
    }
  }
  // Start a real VM (SeaBIOS with nothing to boot keeps its vCPU busy) and ask QMP whether it
  // runs; then make sure it is still alive a moment later, since the broken cases abort or hang.
  const child = execa(qemuPath, ['-accel', accel, '-machine', 'pc', '-cpu', 'host', '-m', '64M', '-nodefaults', '-display', 'none', '-qmp', 'stdio'], {
    timeout: PROBE_TIMEOUT_MS,
    reject: false,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: true,
  })
  let out = ''
  const running = new Promise<boolean>((resolve) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('"QMP"') && !out.includes('query-status-sent')) {
        out += 'query-status-sent'
        child.stdin?.write('{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n')
      }
      if (/"status":\s*"running"/.test(out)) resolve(true)
    })
    void child.then(() => resolve(false))
  })
  const isRunning = await running
  if (isRunning) {
    await new Promise((r) => setTimeout(r, 700))
    if (child.exitCode === null) {
      child.stdin?.write('{"execute":"quit"}\n')
      await child
      return { ok: true, reason: '' }
    }
  }
  const result = await child
  if (result.timedOut) return { ok: false, reason: `QEMU hung for ${PROBE_TIMEOUT_MS} ms` }
  const lastLine = String(result.stderr).trim().split('\n').pop() ?? ''
  return {
    ok: false,
    reason: `QEMU exited${result.signal ? ` with ${result.signal}` : ` with code ${result.exitCode}`}${lastLine ? `: ${lastLine.slice(0, 160)}` : ''}`,
  }
}

async function readCached(file: string, key: string): Promise<AccelVerdict | undefined> {
  try {
    const cached = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, AccelVerdict>
    return cached[key]
  } catch {
    return undefined
  }
}

async function writeCached(file: string, key: string, verdict: AccelVerdict): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  await fs.writeFile(tmp, JSON.stringify({ [key]: verdict }))
  await fs.rename(tmp, file)
}
