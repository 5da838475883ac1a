/**
 * The built CLI as a user runs it, for what needs no VM: version, help, usage errors and their
 * exit codes, exec's command lookup, and the commands on an instance that is not running.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { once } from 'node:events'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = path.resolve(import.meta.dirname, '../..')
const cliPath = path.join(root, 'dist/cli/main.js')
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'se-cli-'))

/** A private home: nothing here touches a real instance or cache. */
const cli = (args: string[], env: Record<string, string> = {}) =>
  execa(process.execPath, [cliPath, ...args], {
    env: { STACK_EMULATOR_HOME: home, STACK_EMULATOR_CACHE_DIR: path.join(home, 'cache'), ...env },
    reject: false,
    timeout: 30_000,
  })

/** The CLI with its stdout (and stderr too, with `closeStderr`) read by no one, as under `| head -1`. */
async function cliWithClosedOutput(args: string[], closeStderr = false) {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { ...process.env, STACK_EMULATOR_HOME: home, STACK_EMULATOR_CACHE_DIR: path.join(home, 'cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // Closed before the CLI has started, so its first write fails (no race with a reader's timing).
  child.stdout.destroy()
  if (closeStderr) child.stderr.destroy()
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
  const [exitCode, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null]
  return { exitCode, signal, stderr }
}

beforeAll(() => expect(fs.existsSync(cliPath), 'run `npm run build` first').toBe(true))
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))

describe('stack-emulator', () => {
  it("--version prints package.json's version", async () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
    const r = await cli(['--version'])
    expect([r.exitCode, r.stdout]).toEqual([0, version])
    const short = await cli(['-V'])
    expect([short.exitCode, short.stdout]).toEqual([0, version])
  })

  it('has help per command, as --help and as help <command>', async () => {
    const general = await cli(['--help'])
    expect(general.exitCode).toBe(0)
    for (const command of ['start', 'status', 'stop', 'reset', 'logs', 'exec', 'image build', 'doctor']) expect(general.stdout).toContain(`  ${command}`)
    const [flag, word] = await Promise.all([cli(['start', '--help']), cli(['help', 'start'])])
    expect(flag.stdout).toMatch(/^Usage: stack-emulator start/)
    expect(flag.stdout).toContain('--memory <MiB>')
    expect(flag.stdout).not.toContain('--force')
    expect(word.stdout).toBe(flag.stdout)
    expect((await cli(['image', 'build', '--help'])).stdout).toMatch(/^Usage: stack-emulator image build[\s\S]*--force/)
  })

  it('exits 2 naming flags that do not apply, with one line on stderr', async () => {
    const r = await cli(['status', '--force', '--memory', '5'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toBe('stack-emulator: --force and --memory do not apply to status. Run `stack-emulator status --help` for its options.')
  })

  it('suggests the command or flag that was meant', async () => {
    expect((await cli(['strat'])).stderr).toMatch(/^stack-emulator: Unknown command "strat"\. Did you mean "start"\?/)
    const flag = await cli(['start', '--nmae', 'x'])
    expect([flag.exitCode, flag.stderr]).toEqual([2, expect.stringMatching(/Unknown option "--nmae"\. Did you mean "--name"\?/)])
  })

  it('names flags, not API options, when a value is out of range; with --json, one object on stdout', async () => {
    const r = await cli(['start', '--memory', '5', '--json'])
    expect(r.exitCode).toBe(2)
    const message = expect.stringMatching(/^--memory must be an integer from 64 to \d+, got 5 \(number\)\.$/)
    expect(r.stderr).toEqual(expect.stringMatching(/^stack-emulator: --memory must be an integer from 64 to \d+, got 5 \(number\)\.$/))
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: 'BAD_OPTION', message } })
  })

  it("exec: 127 and the OS's reason when the command is not found, 126 when it cannot run, before any VM", async () => {
    const missing = await cli(['exec', '--', 'nosuchcmd-stack-emulator'])
    expect([missing.exitCode, missing.stderr]).toEqual([127, 'stack-emulator: exec: nosuchcmd-stack-emulator: command not found (ENOENT)'])
    const script = path.join(home, 'not-executable.sh')
    fs.writeFileSync(script, 'exit 0\n', { mode: 0o644 })
    const denied = await cli(['exec', '--json', '--', script])
    expect(denied.exitCode).toBe(126)
    expect(denied.stderr).toBe(`stack-emulator: exec: ${script}: permission denied (EACCES)`)
    expect(JSON.parse(denied.stdout)).toEqual({ exitCode: 126, signal: null })
  })

  it('exec takes the command without --: its flags are its own, looked up before any VM', async () => {
    const plain = await cli(['exec', 'nosuchcmd-stack-emulator', '-c', 'exit 3'])
    expect([plain.exitCode, plain.stderr]).toEqual([127, 'stack-emulator: exec: nosuchcmd-stack-emulator: command not found (ENOENT)'])
    const flagged = await cli(['exec', '--name', 'ci', '--json', 'nosuchcmd-stack-emulator', '--json'])
    expect([flagged.exitCode, JSON.parse(flagged.stdout)]).toEqual([127, { exitCode: 127, signal: null }])
    const none = await cli(['exec', '--name', 'ci'])
    expect([none.exitCode, none.stderr]).toEqual([2, expect.stringMatching(/^stack-emulator: exec needs a command, e\.g\. stack-emulator exec -- npm test/)])
  })

  it('ps (list) and stop --all with nothing running', async () => {
    const fresh = fs.mkdtempSync(path.join(home, 'empty-'))
    const empty = await cli(['ps'], { STACK_EMULATOR_HOME: fresh })
    expect([empty.exitCode, empty.stdout]).toEqual([0, `No instances under ${path.join(fresh, 'state')}.`])
    expect(JSON.parse((await cli(['list', '--json'], { STACK_EMULATOR_HOME: fresh })).stdout)).toEqual({ stateRoot: path.join(fresh, 'state'), instances: [] })
    // A folder of an instance that ran once: listed as stopped; a file beside it (the generated config) is none.
    fs.mkdirSync(path.join(fresh, 'state', 'old'), { recursive: true, mode: 0o700 })
    fs.writeFileSync(path.join(fresh, 'state', 'stack.config.ts'), '')
    const listed = JSON.parse((await cli(['ps', '--json'], { STACK_EMULATOR_HOME: fresh })).stdout)
    expect(listed.instances).toEqual([expect.objectContaining({ name: 'old', state: 'stopped', urls: {}, leases: [] })])
    expect(listed.instances[0]).not.toHaveProperty('uptimeMs')
    expect((await cli(['ps'], { STACK_EMULATOR_HOME: fresh })).stdout.split('\n')).toEqual([
      expect.stringMatching(/^NAME +STATE +DRIVER +IMAGE +LEASES +UPTIME +URLS$/),
      expect.stringMatching(/^old +stopped +- +- +- +- +-$/),
    ])
    const stopAll = await cli(['stop', '--all'], { STACK_EMULATOR_HOME: fresh })
    expect([stopAll.exitCode, stopAll.stdout]).toEqual([0, 'Nothing was running.'])
    expect(JSON.parse((await cli(['stop', '--all', '--json'], { STACK_EMULATOR_HOME: fresh })).stdout)).toEqual({ stopped: [] })
    const both = await cli(['stop', '--all', '--name', 'old'], { STACK_EMULATOR_HOME: fresh })
    expect([both.exitCode, both.stderr]).toEqual([2, expect.stringMatching(/^stack-emulator: --all and --name: give one of them/)])
  })

  it('status, stop, reset and logs of an instance that is not running', async () => {
    const status = await cli(['status', '--json', '--name', 'idle'])
    expect([status.exitCode, JSON.parse(status.stdout)]).toEqual([3, { name: 'idle', running: false }])
    expect((await cli(['stop', '--name', 'idle'])).exitCode).toBe(0)
    expect((await cli(['reset', '--name', 'idle'])).exitCode).toBe(3)
    expect((await cli(['logs', '--name', 'idle'])).exitCode).toBe(3)
    // A name that is a file of the state root (the generated config) is no instance either.
    fs.mkdirSync(path.join(home, 'state'), { recursive: true })
    fs.writeFileSync(path.join(home, 'state', 'stack.config.ts'), 'export const config = {}\n')
    expect((await cli(['status', '--name', 'stack.config.ts'])).stdout).toBe('Instance "stack.config.ts" is not running.')
    expect((await cli(['stop', '--name', 'stack.config.ts'])).exitCode).toBe(0)
  })

  it('a reader that goes away (`doctor | head -1`) ends the output, not the command: no EPIPE trace, the usual exit code', async () => {
    const [plain, closed] = await Promise.all([cli(['doctor']), cliWithClosedOutput(['doctor'])])
    expect(closed.stderr).not.toMatch(/EPIPE|Unhandled|\n\s+at /)
    expect([closed.exitCode, closed.signal]).toEqual([plain.exitCode, null])
    expect(await cliWithClosedOutput(['status', '--name', 'idle'])).toEqual({ exitCode: 3, signal: null, stderr: '' })
    expect(await cliWithClosedOutput(['--help'])).toEqual({ exitCode: 0, signal: null, stderr: '' })
    // Both closed (`2>&1 | head -1`): a usage error still exits 2.
    expect((await cliWithClosedOutput(['strat'], true)).exitCode).toBe(2)
  })
})
