/**
 * Command-line parsing, per command: an unknown flag or command is an error with a suggestion,
 * and a flag that the command does not take is an error naming both.
 */
import { parseArgs } from 'node:util'
import { StackEmulatorError } from '../errors.js'
import type { EmulatorOptions } from '../client/options.js'
import { FLAGS, imageOptionsFromFlags, optionsFromFlags, type FlagName, type FlagValues } from './flags.js'
import { didYouMean } from './suggest.js'

interface CommandSpec {
  /** What follows `stack-emulator` in the usage line. */
  usage: string
  summary: string
  /** More lines for the command's own help. */
  more?: string
  flags: FlagName[]
  /** The flag's help where it means something particular to this command. */
  flagHelp?: Partial<Record<FlagName, string>>
  /** The one argument the command takes, as its usage shows it (`image rm <name[@tag]>`). */
  operand?: string
}

const VM_FLAGS: FlagName[] = [
  'name',
  'driver',
  'url',
  'internal-key',
  'image',
  'arch',
  'port',
  'memory',
  'no-snapshot',
  'fresh',
  'timeout',
  'config-file',
  'seed-version',
]

export const COMMANDS = {
  start: {
    usage: 'start [options]',
    summary: 'boot (or reuse) the VM, wait until healthy, print its URLs',
    more: 'The VM keeps running until `stack-emulator stop` (or --idle-timeout without a suite using it).\n--env also prints its environment, secret keys hidden; --json and `exec` hand them over.',
    flags: [...VM_FLAGS, 'idle-timeout', 'env', 'json'],
  },
  status: {
    usage: 'status [--name <name>] [--json]',
    summary: 'exit 0 when running and healthy, 1 when not healthy, 3 when not running',
    flags: ['name', 'json'],
  },
  stop: {
    usage: 'stop [--name <name> | --all] [--json]',
    summary: 'stop the VM (also while suites use it); exit 0 when nothing runs',
    flags: ['name', 'all', 'json'],
    flagHelp: { all: 'stop every instance under the state root' },
  },
  ps: {
    usage: 'ps [--json]',
    summary: 'every instance under the state root: state, driver, image, URLs, leases, uptime (alias: list)',
    flags: ['json'],
  },
  reset: {
    usage: 'reset [--name <name>] [--force] [--json]',
    summary: 'bring the running VM back to its clean ready state; exit 3 when nothing runs',
    flags: ['name', 'force', 'json'],
    flagHelp: { force: 'reset even while other suites hold the VM' },
  },
  logs: {
    usage: 'logs [--name <name>] [--supervisor] [--since <time>] [-f] [--json]',
    summary: "print the VM's serial console and its services' output (--supervisor: the supervisor's log)",
    more: "--since keeps the lines from that time on: the services' output from their journal in the guest\n(the console has no timestamps), the supervisor's log by its own. --follow (-f) then prints new\nlines as they come, until Ctrl-C or the instance stops.",
    flags: ['name', 'supervisor', 'since', 'follow', 'json'],
  },
  exec: {
    usage: 'exec [options] [--] <command> [args...]',
    summary: "run a command with the emulator's env; exit with its exit code",
    more: "The command starts at the first word that is not one of exec's options (or after --).\nExit codes: the command's own; 128 + the signal's number when a signal ended it; 127 when it\nis not found, 126 when it cannot be run. SIGINT and SIGTERM are passed on to it.",
    flags: [...VM_FLAGS, 'isolation', 'json'],
  },
  'image build': {
    usage: 'image build [--force] [--json]',
    summary: 'build the fixture image into the cache (no root needed)',
    more: 'Once; later runs reuse the cached image (without it, the first start builds it). Without root,\nmmdebstrap runs in its unshare mode: user namespaces and subordinate ids (`doctor` checks them).\nRun as root into a cache folder a user owns, it hands the image to that user.',
    flags: ['force', 'json'],
    flagHelp: { force: 'rebuild even when an image of the same inputs is cached' },
  },
  'image pull': {
    usage: 'image pull [--branch <branch> | --tag <tag>] [--arch amd64|arm64] [--sha256 <hex>] [--manifest <file>] [--base-env <file>] [--warm] [--json]',
    summary: 'download the real Stack Auth emulator image (a GitHub release) into the cache',
    more: "From GitHub's API, or STACK_EMULATOR_RELEASES_URL; GITHUB_TOKEN is sent to that API only.\nAn interrupted pull resumes. Then use it: --image stack-auth (the newest pulled) or\n--image stack-auth@<tag>. A warning says when the release was built from another Stack Auth\ncommit than the shipped manifest and base env describe: pass files for it (--manifest, --base-env).",
    flags: ['branch', 'tag', 'arch', 'sha256', 'manifest', 'base-env', 'warm', 'json'],
  },
  'image list': {
    usage: 'image list [--json]',
    summary: 'the cached images: pulled releases and built fixtures',
    flags: ['json'],
  },
  'image rm': {
    usage: 'image rm <name[@tag]> [--json]',
    summary: 'remove cached images and their snapshots: stack-auth, stack-auth@<tag> or fixture',
    operand: '<name[@tag]>',
    flags: ['json'],
  },
  'image prune': {
    usage: 'image prune [--older-than <days>] [--json]',
    summary: 'remove images, snapshots and partial downloads not used for a while',
    flags: ['older-than', 'json'],
  },
  doctor: {
    usage: 'doctor [--fix] [--json]',
    summary: "check this machine's prerequisites; --fix installs what is missing",
    more: 'Exit 0 when nothing fails, 1 otherwise.',
    flags: ['fix', 'json'],
  },
  help: { usage: 'help [<command>]', summary: "a command's help (also: stack-emulator <command> --help)", flags: [] },
} satisfies Record<string, CommandSpec>

export interface ParsedArgs {
  command: keyof typeof COMMANDS | 'version'
  /** With `help`: the command asked about, if any. */
  topic?: keyof typeof COMMANDS
  json: boolean
  force: boolean
  /** stop --all */
  all: boolean
  /** start --env */
  env: boolean
  supervisor: boolean
  /** logs --since: as typed (the logs command reads it) */
  since?: string
  /** logs --follow */
  follow: boolean
  fix: boolean
  /** exec's command: what follows `--`, or exec's options. */
  rest: string[]
  /** The command's one argument (`image rm`'s image). */
  operand?: string
  options: EmulatorOptions
  image: ReturnType<typeof imageOptionsFromFlags>
}

export function parseCli(argv: string[]): ParsedArgs {
  const { own, rest } = splitCommand(argv)
  const { values, positionals, given } = parseFlags(own)
  const parsed = {
    json: Boolean(values.json),
    force: Boolean(values.force),
    all: Boolean(values.all),
    env: Boolean(values.env),
    supervisor: Boolean(values.supervisor),
    fix: Boolean(values.fix),
    since: values.since,
    follow: Boolean(values.follow),
    rest,
    image: { pull: {}, olderThanDays: undefined },
  }
  if (values.version) return { ...parsed, command: 'version', options: {} }

  if (!positionals.length && given.length) throw usageError(`Missing command before --${given[0]}`)
  const [command, extra] = commandOf(positionals)
  if (command === 'help' || values.help) {
    const topic = command === 'help' ? (extra.length ? commandOf(extra)[0] : undefined) : command
    return { ...parsed, command: 'help', topic, options: {} }
  }
  const spec: CommandSpec = COMMANDS[command]
  const foreign = given.filter((flag) => !spec.flags.includes(flag))
  if (foreign.length) {
    const list = foreign.map((f) => `--${f}`)
    const named = list.length === 1 ? `${list[0]} does` : `${list.slice(0, -1).join(', ')} and ${list.at(-1)} do`
    throw usageError(`${named} not apply to ${command}`, command)
  }
  const operand = spec.operand ? extra.shift() : undefined
  if (spec.operand && operand === undefined) throw usageError(`${command} needs ${spec.operand}`, command)
  if (extra.length) {
    const hint = command === 'exec' ? `; put the command after --: stack-emulator exec -- ${extra.join(' ')}` : ''
    throw usageError(`Unexpected argument "${extra[0]}" for ${command}${hint}`, command)
  }
  if (rest.length && command !== 'exec') throw usageError(`${command} runs no command; only exec takes one after --`, command)
  if (values.all && values.name !== undefined) throw usageError('--all and --name: give one of them', command)
  const bad = (message: string) => usageError(message, command)
  return { ...parsed, command, operand, options: optionsFromFlags(values, bad), image: imageOptionsFromFlags(values, bad) }
}

/**
 * The CLI's own arguments and exec's command: what follows `--`, or else, after `exec`, the first
 * word that is neither a flag nor a flag's value and everything after it (`exec sh -c 'npm test'`).
 */
function splitCommand(argv: string[]): { own: string[]; rest: string[] } {
  const dashDash = argv.indexOf('--')
  const plain = dashDash >= 0 ? { own: argv.slice(0, dashDash), rest: argv.slice(dashDash + 1) } : { own: argv, rest: [] }
  let sawExec = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') break
    if (/^-./.test(arg)) {
      const flag = (FLAGS as Record<string, { type: string }>)[arg.replace(/^--?/, '')]
      if (flag?.type === 'string' && arg.startsWith('--') && !arg.includes('=')) i++ // its value
      continue
    }
    if (sawExec) return { own: argv.slice(0, i), rest: argv.slice(i) }
    if (arg !== 'exec') break
    sawExec = true
  }
  return plain
}

function parseFlags(args: string[]): { values: FlagValues; positionals: string[]; given: FlagName[] } {
  try {
    const { values, positionals, tokens } = parseArgs({ args, options: FLAGS, allowPositionals: true, strict: true, tokens: true })
    const given = [...new Set(tokens.flatMap((t) => (t.kind === 'option' ? [t.name as FlagName] : [])))]
    return { values, positionals, given: given.filter((flag) => flag !== 'help' && flag !== 'version') }
  } catch (error) {
    const unknown = /^Unknown option '(-{1,2})([^']+)'/.exec((error as Error).message)
    if (unknown) throw usageError(`Unknown option "${unknown[1]}${unknown[2]}".${didYouMean(unknown[2]!, Object.keys(FLAGS), '--')}`)
    throw usageError((error as Error).message.replace(/\.\s*$/, '').split('. ')[0] ?? 'bad arguments')
  }
}

/** `image build` is one command of two words; the rest are what follows it. */
function commandOf(positionals: string[]): [keyof typeof COMMANDS, string[]] {
  const [first = 'help', ...more] = positionals
  const [name, extra] = first === 'image' ? [`image ${more[0] ?? ''}`.trim(), more.slice(1)] : [first === 'list' ? 'ps' : first, more]
  if (name in COMMANDS) return [name as keyof typeof COMMANDS, extra]
  const imageCommands = Object.keys(COMMANDS).filter((c) => c.startsWith('image '))
  const hint = name === 'image' ? ` The image commands are ${imageCommands.map((c) => `"${c}"`).join(', ')}.` : didYouMean(name, Object.keys(COMMANDS))
  throw usageError(`Unknown command "${name}".${hint}`)
}

export function usageError(message: string, command?: keyof typeof COMMANDS): StackEmulatorError {
  return new StackEmulatorError(message, {
    code: 'BAD_OPTION',
    fix: `Run \`stack-emulator ${command ? `${command} ` : ''}--help\` for ${command ? 'its' : 'the commands and'} options.`,
  })
}

const LIST_NAMES: Record<string, string> = { exec: 'exec [--] <command...>', ps: 'ps, list', help: 'help <command>', 'image rm': 'image rm <name[@tag]>' }
const column = (left: string, right: string) => `  ${left.padEnd(24)}${right}\n`
const flagLine = (flag: FlagName, help?: string) => {
  const f = FLAGS[flag] as { short?: string; value?: string; help: string }
  return column(`${f.short ? `-${f.short}, ` : ''}--${flag}${f.value ? ` ${f.value}` : ''}`, help ?? f.help)
}

/** The general help, or a command's. */
export function helpText(topic?: keyof typeof COMMANDS): string {
  if (!topic || topic === 'help') {
    return (
      'Usage: stack-emulator <command> [options]\n\nCommands:\n' +
      Object.entries(COMMANDS)
        .map(([name, spec]) => column(LIST_NAMES[name] ?? name, spec.summary))
        .join('') +
      '\nRun `stack-emulator <command> --help` for its options.\n\nOptions:\n' +
      flagLine('help') +
      flagLine('version')
    )
  }
  const spec: CommandSpec = COMMANDS[topic]
  const summary = spec.summary[0]!.toUpperCase() + spec.summary.slice(1)
  return (
    `Usage: stack-emulator ${spec.usage}\n\n${summary}.\n${spec.more ? `${spec.more}\n` : ''}\nOptions:\n` +
    [...spec.flags, 'help' as const].map((flag) => flagLine(flag, spec.flagHelp?.[flag])).join('')
  )
}
