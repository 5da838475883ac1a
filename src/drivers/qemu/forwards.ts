/**
 * Moving the instance's host ports from the running QEMU to its replacement at a reset (HMP
 * `hostfwd_remove` then `hostfwd_add`, about 2 ms each, one port at a time). Two listeners cannot
 * share a port (slirp sets SO_REUSEADDR, which does not allow that), so each port is free for one
 * round trip; another process that binds it then keeps it (issue 22). The ports then go back to
 * the running QEMU, which serves on as it was; one it cannot take back either is lost until its
 * holder lets go, and the VM takes it back then (takeBack).
 */
import { StackEmulatorError } from '../../errors.js'
import { portHolder } from '../../port-holder.js'
import type { ImageManifest } from '../../image/manifest.js'
import { ResetNotDone } from '../types.js'
import type { Forward } from './argv.js'
import type { QemuProcess } from './process.js'

/** HMP answers a command it could not carry out with text ("Could not set up ..."), not an error. */
export async function hmp(proc: QemuProcess, command: string): Promise<void> {
  const output = (await proc.qmp.hmp(command)).trim()
  if (/could not|invalid|not found|error|failed/i.test(output)) throw new Error(`${command}: ${output}`)
}

const add = (proc: QemuProcess, f: Forward) => hmp(proc, `hostfwd_add net0 tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`)
const remove = (proc: QemuProcess, hostPort: number) => hmp(proc, `hostfwd_remove net0 tcp:127.0.0.1:${hostPort}`)

export type Move =
  | { moved: true }
  /** Not moved; `taken`: a port another process bound meanwhile. `lost`: the ports the old QEMU could not take back. */
  | { moved: false; taken?: Forward; lost: Forward[]; error: unknown }

/**
 * Moves `forwards` from `from` to `to` (whose own ports, `toOwn`, go), except those in `missing`,
 * which `from` had lost already: they are only added to `to`. On failure the moved ones go back.
 */
export async function moveForwards(from: QemuProcess, to: QemuProcess, forwards: Forward[], toOwn: Forward[], missing: Forward[]): Promise<Move> {
  const moved: Forward[] = []
  for (const forward of forwards) {
    const had = !missing.includes(forward)
    try {
      await remove(to, toOwn.find((f) => f.guestPort === forward.guestPort)!.hostPort)
      if (had) await remove(from, forward.hostPort)
    } catch (error) {
      return { moved: false, lost: await giveBack(from, to, moved, missing), error }
    }
    try {
      await add(to, forward)
      moved.push(forward)
    } catch (error) {
      const busy = /could not set up host forwarding/i.test(String(error))
      const back = had ? [...moved, forward] : moved
      return { moved: false, taken: busy ? forward : undefined, lost: await giveBack(from, to, back, missing), error }
    }
  }
  return { moved: true }
}

/** Puts `forwards` back on `from`; returns what it lacks then (those it could not take, and those it lacked before). */
async function giveBack(from: QemuProcess, to: QemuProcess, forwards: Forward[], missing: Forward[]): Promise<Forward[]> {
  const lost = missing.filter((f) => !forwards.includes(f))
  for (const forward of forwards) {
    await remove(to, forward.hostPort).catch(() => {}) // it may never have got it
    await add(from, forward).catch(() => lost.push(forward))
  }
  return lost
}

/** The lost ports that `proc` takes back now (their holders let go). */
export async function takeBack(proc: QemuProcess, lost: Forward[]): Promise<Forward[]> {
  const back: Forward[] = []
  for (const forward of lost)
    await add(proc, forward).then(
      () => back.push(forward),
      () => {},
    )
  return back
}

/** "host port 26701 (backend)". */
export function portName(manifest: Pick<ImageManifest, 'services'>, forward: Forward): string {
  const service = manifest.services.find((s) => s.guestPort === forward.guestPort)?.name
  return `host port ${forward.hostPort}${service ? ` (${service})` : ''}`
}

/** Why a reset left the VM as it was: `taken` went to another process between the two QEMUs. */
export async function portTaken(manifest: Pick<ImageManifest, 'services'>, taken: Forward, lost: Forward[]): Promise<ResetNotDone> {
  const holder = await portHolder(taken.hostPort)
  const name = portName(manifest, taken)
  const serving =
    lost.length === 0
      ? 'on all its ports'
      : `without ${lost.map((f) => portName(manifest, f)).join(', ')} until ${lost.length === 1 ? 'it is' : 'they are'} free again (it takes ${lost.length === 1 ? 'it' : 'them'} back by itself)`
  return new ResetNotDone(
    `The reset was not done: ${name[0]!.toUpperCase()}${name.slice(1)} was taken by ${holder ?? 'another process'} as it moved to the new VM; the VM serves on as it was, ${serving}`,
    {
      code: 'PORT_BUSY',
      fix: `Stop ${holder ?? 'whatever listens on it'} (ss -ltnp 'sport = :${taken.hostPort}'), or give the service another port (or 0, for one chosen free); then reset again.`,
    },
  )
}

/** The standing problem while ports are lost: acquires are refused (their URLs would reach another process), status says it. */
export async function portsLost(manifest: Pick<ImageManifest, 'services'>, lost: Forward[]): Promise<StackEmulatorError> {
  const held = await Promise.all(lost.map(async (f) => `${portName(manifest, f)} is held by ${(await portHolder(f.hostPort)) ?? 'another process'}`))
  return new StackEmulatorError(`The VM lost ports to other processes at a reset: ${held.join(', ')}; it serves on its other ports`, {
    code: 'PORT_BUSY',
    fix: 'Stop those processes: the VM takes its ports back by itself within seconds.',
  })
}
