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

const VM_FLAGS: FlagName[] = ['name', 'driver', 'url', 'internal-key', 'image', 'arch', 'port', 'memory', 'no-snapshot', 'fresh', 'timeout', 'config-file', 'seed-version']

export const COMMANDS = {
  start: {
    usage: 'start [options]',
    summary: 'boot (or reuse) the VM, wait until healthy, print URLs and env',
    more: 'The VM keeps running until `stack-emulator stop` (or --idle-timeout without a suite using it).\nSecret keys are hidden in the human output; --json and `exec` hand them over.',
    flags: [...VM_FLAGS, 'idle-timeout', 'json'],
  },
  status: {
    usage: 'status [--name <name>] [--json]',
    summary: 'exit 0 when running and healthy, 1 when not healthy, 3 when not running',
    flags: ['name', 'json'],
  },
  stop: {
    usage: 'stop [--name <name>] [--json]',
    summary: 'stop the VM (also while suites use it); exit 0 when nothing runs',
    flags: ['name', 'json'],
  },
  reset: {
    usage: 'reset [--name <name>] [--force] [--json]',
    summary: 'bring the running VM back to its clean ready state; exit 3 when nothing runs',
    flags: ['name', 'force', 'json'],
    flagHelp: { force: 'reset even while other suites hold the VM' },
  },
  logs: {
    usage: 'logs [--name <name>] [--supervisor] [--json]',
    summary: "print the VM's serial console and its services' output (--supervisor: the supervisor's log)",
    flags: ['name', 'supervisor', 'json'],
  },
  exec: {
    usage: 'exec [options] -- <command> [args...]',
    summary: "run a command with the emulator's env; exit with its exit code",
    more: "Exit codes: the command's own; 128 + the signal's number when a signal ended it; 127 when it\nis not found, 126 when it cannot be run. SIGINT and SIGTERM are passed on to it.",
    flags: [...VM_FLAGS, 'isolation', 'json'],
  },
  'image build': {
    usage: 'image build [--force] [--json]',
    summary: 'build the fixture image into the cache (needs root)',
    more: 'Debootstrap and chroot need root: `sudo npx stack-emulator image build` once; later runs reuse\nthe cached image. Without it, the first start builds the image.',
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
  supervisor: boolean
  fix: boolean
  /** What follows `--` (exec's command). */
  rest: string[]
  /** The command's one argument (`image rm`'s image). */
  operand?: string
  options: EmulatorOptions
  image: ReturnType<typeof imageOptionsFromFlags>
}

export function parseCli(argv: string[]): ParsedArgs {
  const dashDash = argv.indexOf('--')
  const own = dashDash >= 0 ? argv.slice(0, dashDash) : argv
  const rest = dashDash >= 0 ? argv.slice(dashDash + 1) : []
  const { values, positionals, given } = parseFlags(own)
  const parsed = { json: Boolean(values.json), force: Boolean(values.force), supervisor: Boolean(values.supervisor), fix: Boolean(values.fix), rest, image: { pull: {}, olderThanDays: undefined } }
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
  const bad = (message: string) => usageError(message, command)
  return { ...parsed, command, operand, options: optionsFromFlags(values, bad), image: imageOptionsFromFlags(values, bad) }
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
  const [name, extra] = first === 'image' ? [`image ${more[0] ?? ''}`.trim(), more.slice(1)] : [first, more]
  if (name in COMMANDS) return [name as keyof typeof COMMANDS, extra]
  const imageCommands = Object.keys(COMMANDS).filter((c) => c.startsWith('image '))
  const hint = name === 'image' ? ` The image commands are ${imageCommands.map((c) => `"${c}"`).join(', ')}.` : didYouMean(name, Object.keys(COMMANDS))
  throw usageError(`Unknown command "${name}".${hint}`)
}

export function usageError(message: string, command?: keyof typeof COMMANDS): StackEmulatorError {
  return new StackEmulatorError(message, { code: 'BAD_OPTION', fix: `Run \`stack-emulator ${command ? `${command} ` : ''}--help\` for ${command ? 'its' : 'the commands and'} options.` })
}

const LIST_NAMES: Record<string, string> = { exec: 'exec -- <command...>', help: 'help <command>', 'image rm': 'image rm <name[@tag]>' }
const column = (left: string, right: string) => `  ${left.padEnd(24)}${right}\n`
const flagLine = (flag: FlagName, help?: string) => {
  const f = FLAGS[flag] as { short?: string; value?: string; help: string }
  return column(`${f.short ? `-${f.short}, ` : ''}--${flag}${f.value ? ` ${f.value}` : ''}`, help ?? f.help)
}

/** The general help, or a command's. */
export function helpText(topic?: keyof typeof COMMANDS): string {
  if (!topic || topic === 'help') {
    return 'Usage: stack-emulator <command> [options]\n\nCommands:\n' +
      Object.entries(COMMANDS).map(([name, spec]) => column(LIST_NAMES[name] ?? name, spec.summary)).join('') +
      '\nRun `stack-emulator <command> --help` for its options.\n\nOptions:\n' +
      flagLine('help') + flagLine('version')
  }
  const spec: CommandSpec = COMMANDS[topic]
  const summary = spec.summary[0]!.toUpperCase() + spec.summary.slice(1)
  return `Usage: stack-emulator ${spec.usage}\n\n${summary}.\n${spec.more ? `${spec.more}\n` : ''}\nOptions:\n` +
    [...spec.flags, 'help' as const].map((flag) => flagLine(flag, spec.flagHelp?.[flag])).join('')
}
