import { describe, expect, it } from 'vitest'
import { parseCli } from '../../src/cli/args.js'
import { flagsFromOptions, withFlagNames } from '../../src/cli/flags.js'
import { closest, editDistance } from '../../src/cli/suggest.js'

describe('parseCli', () => {
  it('maps flags to options and keeps what follows --', () => {
    const parsed = parseCli(['exec', '--name', 'ci', '--port', 'backend=26701', '--no-snapshot', '--', 'npm', 'test', '--json'])
    expect(parsed.command).toBe('exec')
    expect(parsed.rest).toEqual(['npm', 'test', '--json'])
    expect(parsed.json).toBe(false)
    expect(parsed.options).toMatchObject({ name: 'ci', ports: { backend: 26701 }, snapshot: false })
  })

  it('takes image build as one command, and help for a command either way', () => {
    expect(parseCli(['image', 'build', '--force'])).toMatchObject({ command: 'image build', force: true })
    expect(parseCli(['help', 'image', 'build'])).toMatchObject({ command: 'help', topic: 'image build' })
    expect(parseCli(['start', '--help'])).toMatchObject({ command: 'help', topic: 'start' })
    expect(parseCli(['-h'])).toMatchObject({ command: 'help', topic: undefined })
    expect(parseCli(['--version'])).toMatchObject({ command: 'version' })
  })

  it('rejects unknown options and malformed values with a message that names the fix', () => {
    expect(() => parseCli(['start', '--bogus'])).toThrow(/Unknown option "--bogus"\. Run `stack-emulator --help`/)
    expect(() => parseCli(['start', '--port', '26701'])).toThrow(/--port expects <service>=<port>/)
    expect(() => parseCli(['start', '--memory', 'lots'])).toThrow(/--memory expects a whole number/)
    expect(() => parseCli(['start', '--name'])).toThrow(/--name <value>' argument missing/)
  })

  it('names the flags that do not apply to a command, and the command', () => {
    expect(() => parseCli(['status', '--force', '--memory', '5'])).toThrow(/^--force and --memory do not apply to status\. Run `stack-emulator status --help`/)
    expect(() => parseCli(['stop', '--isolation', 'none', '--json', '--fix', '--fresh'])).toThrow(/^--isolation, --fix and --fresh do not apply to stop\./)
    expect(() => parseCli(['image', 'build', '--image', 'x.json'])).toThrow(/^--image does not apply to image build\./)
  })

  it('suggests the command or flag that was meant', () => {
    expect(() => parseCli(['strat'])).toThrow(/^Unknown command "strat"\. Did you mean "start"\?/)
    expect(() => parseCli(['image', 'biuld'])).toThrow(/Did you mean "image build"\?/)
    expect(() => parseCli(['start', '--nmae', 'x'])).toThrow(/^Unknown option "--nmae"\. Did you mean "--name"\?/)
    expect(() => parseCli(['frobnicate'])).toThrow(/^Unknown command "frobnicate"\. Run/)
  })

  it("parses the image commands: pull flags, rm's one argument, prune's days", () => {
    expect(parseCli(['image', 'pull', '--tag', 'emulator-dev-latest', '--arch', 'arm64', '--warm', '--json'])).toMatchObject({
      command: 'image pull',
      json: true,
      image: { pull: { tag: 'emulator-dev-latest', arch: 'arm64', warm: true } },
    })
    expect(parseCli(['image', 'rm', 'stack-auth@emulator-dev-latest'])).toMatchObject({ command: 'image rm', operand: 'stack-auth@emulator-dev-latest' })
    expect(parseCli(['image', 'prune', '--older-than', '7'])).toMatchObject({ command: 'image prune', image: { olderThanDays: 7 } })
    expect(() => parseCli(['image', 'rm'])).toThrow(/^image rm needs <name\[@tag\]>\. Run `stack-emulator image rm --help`/)
    expect(() => parseCli(['image', 'rm', 'a', 'b'])).toThrow(/^Unexpected argument "b" for image rm/)
    expect(() => parseCli(['image', 'prune', '--older-than', 'week'])).toThrow(/^--older-than expects a whole number, got "week"/)
    expect(() => parseCli(['image', 'list', '--tag', 'x'])).toThrow(/^--tag does not apply to image list/)
    expect(() => parseCli(['image'])).toThrow(/The image commands are "image build", "image pull", "image list", "image rm", "image prune"/)
    expect(withFlagNames('Option "sha256" must be a sha256 digest')).toBe('--sha256 must be a sha256 digest')
  })

  it("takes exec's command from the first word after its own flags, with or without --; no command elsewhere", () => {
    expect(parseCli(['exec', 'npm', 'test'])).toMatchObject({ command: 'exec', rest: ['npm', 'test'] })
    // The command's own flags are the command's, -- and --json included.
    const sh = parseCli(['exec', '--name', 'ci', '--no-snapshot', '--port=backend=26701', 'sh', '-c', 'npm test -- --json', '--', '--json'])
    expect(sh).toMatchObject({
      command: 'exec',
      json: false,
      rest: ['sh', '-c', 'npm test -- --json', '--', '--json'],
      options: { name: 'ci', snapshot: false, ports: { backend: 26701 } },
    })
    expect(parseCli(['--name', 'ci', 'exec', '--json', 'env'])).toMatchObject({ command: 'exec', json: true, rest: ['env'], options: { name: 'ci' } })
    expect(() => parseCli(['exec', '--bogus', 'sh'])).toThrow(/Unknown option "--bogus"/)
    expect(parseCli(['exec', '--json'])).toMatchObject({ command: 'exec', rest: [] }) // exec says it needs one
    expect(() => parseCli(['stop', '--', 'ls'])).toThrow(/only exec takes one after --/)
    expect(() => parseCli(['start', 'sh', '-c', 'x'])).toThrow(/Unknown option "-c"|Unexpected argument "sh"/)
  })

  it('has ps with its alias list, stop --all (not with --name), start --env and -V', () => {
    expect(parseCli(['ps', '--json'])).toMatchObject({ command: 'ps', json: true })
    expect(parseCli(['list'])).toMatchObject({ command: 'ps' })
    expect(parseCli(['stop', '--all'])).toMatchObject({ command: 'stop', all: true })
    expect(() => parseCli(['stop', '--all', '--name', 'x'])).toThrow(/^--all and --name: give one of them/)
    expect(() => parseCli(['status', '--all'])).toThrow(/^--all does not apply to status/)
    expect(parseCli(['start', '--env'])).toMatchObject({ command: 'start', env: true })
    expect(parseCli(['-V'])).toMatchObject({ command: 'version' })
  })
})

describe('closest', () => {
  it('finds swaps and one-letter slips, not strangers', () => {
    expect(editDistance('strat', 'start')).toBe(1)
    expect(closest('stat', ['start', 'status', 'stop'])).toBe('start')
    expect(closest('stauts', ['start', 'status', 'stop'])).toBe('status')
    expect(closest('deploy', ['start', 'status', 'stop'])).toBeUndefined()
  })
})

describe('flags and options', () => {
  it('turns options back into exec flags, and option names in messages into flags', () => {
    expect(flagsFromOptions({ name: 'e2e', ports: { backend: 26701 }, memoryMb: 768, snapshot: false, configFile: false })).toEqual([
      '--name',
      'e2e',
      '--port',
      'backend=26701',
      '--memory',
      '768',
      '--no-snapshot',
    ])
    expect(withFlagNames('Option "memoryMb" must be an integer >= 64, got 5 (number).')).toBe('--memory must be an integer >= 64, got 5 (number).')
    expect(withFlagNames('Option "ports.backend" must be a port')).toBe('--port backend=<port> must be a port')
    expect(withFlagNames('Option "onLog" must be a function')).toBe('Option "onLog" must be a function')
  })
})

describe('--arch', () => {
  it('applies to start and exec as the arch option, and goes back into exec flags', () => {
    expect(parseCli(['start', '--arch', 'arm64']).options).toMatchObject({ arch: 'arm64' })
    expect(parseCli(['exec', '--arch', 'amd64', '--', 'true']).options).toMatchObject({ arch: 'amd64' })
    expect(flagsFromOptions({ image: 'stack-auth', arch: 'arm64' })).toEqual(['--image', 'stack-auth', '--arch', 'arm64'])
    expect(withFlagNames('Option "arch" is arm64, but the image x is built for amd64')).toBe('--arch is arm64, but the image x is built for amd64')
  })
})

describe('logs --since and --follow', () => {
  const now = Date.parse('2026-04-01T12:00:00Z')

  it('parses -f and --since for logs only', () => {
    expect(parseCli(['logs', '-f', '--since', '10m', '--name', 'x'])).toMatchObject({ command: 'logs', follow: true, since: '10m', options: { name: 'x' } })
    expect(parseCli(['logs'])).toMatchObject({ follow: false, since: undefined })
    expect(() => parseCli(['status', '--since', '10m'])).toThrow(/--since does not apply to status/)
  })

  it('takes a duration ago, an ISO time, a time of today or @epoch seconds; refuses the rest naming the forms', async () => {
    const { parseSince } = await import('../../src/cli/logs.js')
    expect(parseSince('90s', now)).toBe(now - 90_000)
    expect(parseSince('1h30m', now)).toBe(now - 5_400_000)
    expect(parseSince('2d', now)).toBe(now - 2 * 86_400_000)
    expect(parseSince('2026-04-01T11:00:00Z', now)).toBe(now - 3_600_000)
    expect(parseSince('@1775044800.5', now)).toBe(1775044800500)
    expect(new Date(parseSince('09:15', now)).getHours()).toBe(9)
    for (const bad of ['soon', '10', '25:00', '-5m']) expect(() => parseSince(bad, now)).toThrow(/--since expects a duration ago .*got/)
  })
})
