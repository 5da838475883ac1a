/**
 * The pieces behind issue 22's faults under a serving VM: why QEMU went (the OOM killer or
 * another process), who holds a port, and moving host ports between two QEMUs when another
 * process takes one in between (HMP stood in for by real listening sockets).
 */
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { exitReason, oomKills } from '../../src/drivers/qemu/exit-reason.js'
import { moveForwards, portTaken, takeBack } from '../../src/drivers/qemu/forwards.js'
import type { QemuProcess } from '../../src/drivers/qemu/process.js'
import { ResetNotDone } from '../../src/drivers/types.js'
import { portHolder } from '../../src/port-holder.js'

const servers: net.Server[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve))
})

function listen(port = 0): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

const portOf = (server: net.Server) => (server.address() as net.AddressInfo).port

/** A QEMU stand-in whose HMP hostfwd_add/remove listen on and close real ports, answering as QEMU does. */
class FakeQemu {
  readonly ports = new Map<number, net.Server>()
  /** Runs between this one's hostfwd_remove and its answer: another process's chance. */
  afterRemove?: (port: number) => Promise<void>
  readonly qmp = {
    hmp: async (command: string): Promise<string> => {
      const [verb, rule] = command.split(' ').filter((w) => w !== 'net0')
      const port = Number(/127\.0\.0\.1:(\d+)/.exec(rule!)![1])
      if (verb === 'hostfwd_remove') {
        const server = this.ports.get(port)
        if (!server) return `invalid host forwarding rule 'tcp:127.0.0.1:${port}'\r\n`
        this.ports.delete(port)
        await new Promise((resolve) => server.close(resolve))
        await this.afterRemove?.(port)
        return ''
      }
      try {
        const server = await listen(port)
        this.ports.set(port, server)
        return ''
      } catch {
        return `Could not set up host forwarding rule '${rule}'\r\n`
      }
    },
  }

  static async with(forwards: { guestPort: number; hostPort: number }[]): Promise<FakeQemu> {
    const qemu = new FakeQemu()
    for (const f of forwards) await qemu.qmp.hmp(`hostfwd_add net0 tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`)
    return qemu
  }

  get proc(): QemuProcess {
    return this as unknown as QemuProcess
  }

  async close(): Promise<void> {
    for (const server of this.ports.values()) await new Promise((resolve) => server.close(resolve))
  }
}

async function freePorts(n: number): Promise<number[]> {
  const held = await Promise.all(Array.from({ length: n }, () => listen()))
  const ports = held.map(portOf)
  for (const server of held) await new Promise((resolve) => server.close(resolve))
  return ports
}

describe('why QEMU went', () => {
  it("tells the OOM killer from another process by the kernel's count of OOM kills", () => {
    const kill = { code: null, signal: 'SIGKILL', stderr: '' }
    expect(exitReason(kill, 3, 4)).toMatch(/^was killed by SIGKILL: out of memory .*memoryMb/)
    expect(exitReason(kill, 3, 3)).toBe('was killed by SIGKILL from another process (the kernel counted no out-of-memory kill)')
    expect(exitReason(kill, undefined, 3)).toBe('was killed by SIGKILL (out of memory, or another process)')
    expect(exitReason({ code: null, signal: 'SIGTERM', stderr: 'qemu-system-x86_64: terminating on signal 15 from pid 99\n' }, 0, 0)).toBe(
      'was killed by SIGTERM (qemu-system-x86_64: terminating on signal 15 from pid 99)',
    )
    expect(exitReason({ code: 1, signal: null, stderr: '' }, 0, 0)).toBe('exited with code 1')
  })

  it("reads the kernel's count where Linux has one", async () => {
    if (process.platform === 'linux') expect(await oomKills()).toBeGreaterThanOrEqual(0)
  })
})

describe('who holds a port', () => {
  it('names the process that listens on it, and nothing for a free port', async () => {
    const server = await listen()
    servers.push(server)
    if (process.platform === 'linux') expect(await portHolder(portOf(server))).toMatch(new RegExp(`^pid ${process.pid} \\(`))
    const [free] = await freePorts(1)
    expect(await portHolder(free!)).toBeUndefined()
  })
})

describe('moving host ports between two QEMUs', () => {
  const manifest = {
    services: [
      { name: 'dashboard', guestPort: 8101 },
      { name: 'backend', guestPort: 8102 },
    ],
  }

  it('moves every port to the new QEMU', async () => {
    const [a, b, pa, pb] = await freePorts(4)
    const forwards = [
      { guestPort: 8101, hostPort: a! },
      { guestPort: 8102, hostPort: b! },
    ]
    const own = [
      { guestPort: 8101, hostPort: pa! },
      { guestPort: 8102, hostPort: pb! },
    ]
    const [old, next] = [await FakeQemu.with(forwards), await FakeQemu.with(own)]
    expect(await moveForwards(old.proc, next.proc, forwards, own, [])).toEqual({ moved: true })
    expect([...old.ports.keys()]).toEqual([])
    expect([...next.ports.keys()].sort()).toEqual([a, b].sort())
    await Promise.all([old.close(), next.close()])
  })

  it('a port taken in between: the others go back to the old QEMU, the taken one is lost, named with its holder, and taken back once free', async () => {
    const [a, b, pa, pb] = await freePorts(4)
    const forwards = [
      { guestPort: 8101, hostPort: a! },
      { guestPort: 8102, hostPort: b! },
    ]
    const own = [
      { guestPort: 8101, hostPort: pa! },
      { guestPort: 8102, hostPort: pb! },
    ]
    const [old, next] = [await FakeQemu.with(forwards), await FakeQemu.with(own)]
    let squatter: net.Server | undefined
    old.afterRemove = async (port) => {
      if (port === b) squatter = await listen(port)
    }
    const move = await moveForwards(old.proc, next.proc, forwards, own, [])
    expect(move).toMatchObject({ moved: false, taken: forwards[1], lost: [forwards[1]] })
    expect([...old.ports.keys()]).toEqual([a]) // serving on the port it kept
    expect(next.ports.has(a!)).toBe(false)
    const error = await portTaken(manifest, forwards[1]!, [forwards[1]!])
    expect(error).toBeInstanceOf(ResetNotDone)
    expect(error.code).toBe('PORT_BUSY')
    if (process.platform === 'linux')
      expect(error.message).toMatch(
        new RegExp(`Host port ${b} \\(backend\\) was taken by pid ${process.pid} .*serves on as it was, without host port ${b} \\(backend\\)`),
      )
    expect(await takeBack(old.proc, [forwards[1]!])).toEqual([]) // still held
    await new Promise((resolve) => squatter!.close(resolve))
    expect(await takeBack(old.proc, [forwards[1]!])).toEqual([forwards[1]])
    // The next move takes along the port the old QEMU lacked, and only adds it.
    old.afterRemove = undefined
    const again = await FakeQemu.with(own)
    await next.close()
    expect(await moveForwards(old.proc, again.proc, forwards, own, [])).toEqual({ moved: true })
    await Promise.all([old.close(), again.close()])
  })

  it('a port the old QEMU had lost is only added to the new one', async () => {
    const [a, b, pa, pb] = await freePorts(4)
    const forwards = [
      { guestPort: 8101, hostPort: a! },
      { guestPort: 8102, hostPort: b! },
    ]
    const own = [
      { guestPort: 8101, hostPort: pa! },
      { guestPort: 8102, hostPort: pb! },
    ]
    const [old, next] = [await FakeQemu.with([forwards[0]!]), await FakeQemu.with(own)]
    expect(await moveForwards(old.proc, next.proc, forwards, own, [forwards[1]!])).toEqual({ moved: true })
    expect([...next.ports.keys()].sort()).toEqual([a, b].sort())
    await Promise.all([old.close(), next.close()])
  })
})
