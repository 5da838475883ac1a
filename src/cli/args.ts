/** Command-line parsing: strict, so an unknown option is an error that names it. */
import { parseArgs } from 'node:util'
import { StackEmulatorError } from '../errors.js'
import type { EmulatorOptions } from '../client/options.js'

export const USAGE = `Usage: stack-emulator <command> [options]

Commands:
  start                 boot (or reuse) the VM, wait until healthy, print URLs and env
  status                exit 0 when running and healthy, 1 when not healthy, 3 when not running
  stop                  stop the VM (also while suites use it); exit 0 when nothing runs
  reset                 bring the running VM back to its clean ready state
  logs                  print the VM's serial console (--supervisor: the supervisor's log)
  exec -- <cmd...>      run a command with the emulator's env; exit with its exit code
  image build           build the fixture image into the cache (needs root)

Options:
  --name <name>         instance name (default: default)
  --image <manifest>    image manifest.json (default: the fixture image)
  --port <svc=port>     fixed host port for a service, repeatable (0 = QEMU picks)
  --memory <MiB>        guest memory
  --no-snapshot         cold boot and keep the instance's disk between runs
  --fresh               with --no-snapshot: start from a fresh disk
  --idle-timeout <ms>   start: stop after this long unused (default 0 = until stop)
  --isolation <mode>    exec: suite | exclusive | none (default suite)
  --timeout <ms>        longest wait for a cold boot (default 180000)
  --config-file <path>  stack.config.ts whose project the keys belong to
  --force               reset: even while other suites hold the VM; image build: rebuild
  --json                print exactly one JSON object on stdout
  -h, --help            this text
`

export interface ParsedArgs {
  command: string[]
  json: boolean
  force: boolean
  supervisor: boolean
  rest: string[]
  options: EmulatorOptions
}

export function parseCli(argv: string[]): ParsedArgs {
  const dashDash = argv.indexOf('--')
  const own = dashDash >= 0 ? argv.slice(0, dashDash) : argv
  const rest = dashDash >= 0 ? argv.slice(dashDash + 1) : []
  let parsed
  try {
    parsed = parseArgs({
      args: own,
      allowPositionals: true,
      strict: true,
      options: {
        name: { type: 'string' },
        image: { type: 'string' },
        port: { type: 'string', multiple: true },
        memory: { type: 'string' },
        'no-snapshot': { type: 'boolean' },
        fresh: { type: 'boolean' },
        'idle-timeout': { type: 'string' },
        isolation: { type: 'string' },
        timeout: { type: 'string' },
        'config-file': { type: 'string' },
        force: { type: 'boolean' },
        supervisor: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (error) {
    throw usageError((error as Error).message.replace(/\.\s*$/, '').split('. ')[0] ?? 'bad arguments')
  }
  const v = parsed.values
  if (v.help) return { command: ['help'], json: false, force: false, supervisor: false, rest, options: {} }
  const options: EmulatorOptions = {
    name: v.name,
    image: v.image,
    snapshot: v['no-snapshot'] ? false : undefined,
    fresh: v.fresh,
    memoryMb: v.memory === undefined ? undefined : integer('--memory', v.memory),
    idleTimeoutMs: v['idle-timeout'] === undefined ? undefined : integer('--idle-timeout', v['idle-timeout']),
    bootTimeoutMs: v.timeout === undefined ? undefined : integer('--timeout', v.timeout),
    isolation: v.isolation as EmulatorOptions['isolation'],
    configFile: v['config-file'],
    ports: v.port ? Object.fromEntries(v.port.map(parsePort)) : undefined,
  }
  return { command: parsed.positionals, json: Boolean(v.json), force: Boolean(v.force), supervisor: Boolean(v.supervisor), rest, options }
}

function parsePort(value: string): [string, number] {
  const m = /^([a-z][a-z0-9_-]*)=(\d+)$/i.exec(value)
  if (!m) throw usageError(`--port expects <service>=<port>, e.g. --port backend=26701; got "${value}"`)
  return [m[1]!, Number(m[2])]
}

function integer(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw usageError(`${flag} expects a whole number, got "${value}"`)
  return Number(value)
}

export function usageError(message: string): StackEmulatorError {
  return new StackEmulatorError(message, { code: 'BAD_OPTION', fix: 'Run `stack-emulator --help` for the commands and options.' })
}
