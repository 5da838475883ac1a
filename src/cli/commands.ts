/** The CLI's commands. Each returns its exit code; with --json each prints one JSON object. */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { acquire, type Emulator } from '../client/acquire.js'
import { instanceStatus, listInstances, resetInstance, stopAllInstances, stopInstance } from '../client/control.js'
import { instanceName } from '../client/options.js'
import { StackEmulatorError } from '../errors.js'
import { log } from '../log.js'
import { packageRoot } from '../package-root.js'
import { readSettings } from '../settings.js'
import { which } from '../which.js'
import { helpText, parseCli, usageError, type ParsedArgs } from './args.js'
import { withFlagNames } from './flags.js'
import { print } from './output.js'
import { withProgress } from './progress.js'

const NOT_RUNNING = 3

export async function runCli(argv: string[]): Promise<number> {
  let args: ParsedArgs | undefined
  try {
    args = parseCli(argv)
    switch (args.command) {
      case 'help':
        process.stdout.write(helpText(args.topic))
        return 0
      case 'version':
        process.stdout.write(`${await version()}\n`)
        return 0
      case 'start':
        return await start(args)
      case 'status':
        return await status(args)
      case 'stop':
        return await stop(args)
      case 'ps':
        return await ps(args)
      case 'reset':
        return await reset(args)
      case 'logs':
        return await (await import('./logs.js')).logs(args)
      case 'exec':
        return await exec(args)
      case 'image build':
        return await (await import('./image.js')).imageBuild(args)
      case 'image pull':
        return await (await import('./image.js')).imagePull(args)
      case 'image list':
        return await (await import('./image.js')).imageList(args)
      case 'image rm':
        return await (await import('./image.js')).imageRm(args)
      case 'image prune':
        return await (await import('./image.js')).imagePrune(args)
      case 'doctor':
        return await (await import('./doctor.js')).doctor(args)
    }
  } catch (error) {
    return fail(error, args?.json ?? argv.includes('--json'))
  }
}

function fail(error: unknown, json: boolean): number {
  const usage = error instanceof TypeError || (error instanceof StackEmulatorError && error.code === 'BAD_OPTION')
  // Option errors name acquire()'s options (memoryMb); here the user typed flags (--memory).
  const message = withFlagNames(error instanceof Error ? error.message : String(error))
  process.stderr.write(`stack-emulator: ${message}\n`)
  if (json) {
    const base = error instanceof StackEmulatorError ? error.toJSON() : { code: usage ? 'BAD_OPTION' : 'ERROR' }
    print({ error: { ...base, message } })
  }
  return usage ? 2 : 1
}

async function start(args: ParsedArgs): Promise<number> {
  const started = Date.now()
  const emulator = await withProgress((onProgress, onLog) =>
    acquire({ ...args.options, keepAlive: true, idleTimeoutMs: args.options.idleTimeoutMs ?? 0, onProgress, onLog }),
  )
  const summary = {
    name: emulator.name,
    backendUrl: emulator.backendUrl,
    dashboardUrl: emulator.dashboardUrl,
    services: emulator.services,
    env: emulator.env,
    driver: emulator.driver,
    id: emulator.id,
    accel: emulator.accel,
    origin: emulator.origin,
    durationMs: Date.now() - started,
    startup: emulator.startup,
  }
  await emulator.release() // the instance is kept alive; this process's lease ends here
  if (args.json) {
    print(summary)
  } else {
    process.stdout.write(`Stack Auth emulator "${summary.name}" is ready (${summary.origin}, ${summary.accel}, ${summary.durationMs} ms)\n`)
    for (const [service, url] of Object.entries(summary.services)) process.stdout.write(`  ${service.padEnd(10)} ${url}\n`)
    if (args.env) {
      process.stdout.write('\nEnvironment (secret keys hidden; use --json or `stack-emulator exec`):\n')
      for (const [key, value] of Object.entries(summary.env)) {
        process.stdout.write(`  ${key}=${/SECRET|ADMIN/.test(key) ? '<hidden>' : value}\n`)
      }
    }
    const name = summary.name === instanceName(undefined) ? '' : ` --name ${summary.name}`
    process.stdout.write(
      `Run a command with its environment: stack-emulator exec${name} -- <command>${args.env ? '' : ' (--env prints it)'}. Stop it: stack-emulator stop${name}.\n`,
    )
  }
  return 0
}

async function status(args: ParsedArgs): Promise<number> {
  const result = await instanceStatus(args.options.name, log)
  if (!result) {
    if (args.json) print({ name: nameOf(args), running: false })
    else process.stdout.write(`Instance "${nameOf(args)}" is not running.\n`)
    return NOT_RUNNING
  }
  if (args.json) {
    print({ running: true, ...result })
  } else {
    process.stdout.write(
      `Instance "${result.name}": ${result.state}, ${result.healthy ? 'healthy' : 'NOT healthy'}, ${result.vm?.origin ?? ''} ${result.vm?.accel ?? ''}\n`,
    )
    if (result.problem) process.stdout.write(`Problem: ${result.problem}\n`)
    if (result.note) process.stdout.write(`Note: ${result.note}\n`)
    for (const [service, url] of Object.entries(result.vm?.urls ?? {})) process.stdout.write(`  ${service.padEnd(10)} ${url}\n`)
    process.stdout.write(`Leases: ${result.leases.length}${result.leases.map((l) => `\n  pid ${l.pid} since ${l.since}: ${l.command}`).join('')}\n`)
    if (result.idleSinceMs !== undefined)
      process.stdout.write(`Idle for ${Math.round(result.idleSinceMs / 1000)} s (timeout: ${result.idleTimeoutMs ? `${result.idleTimeoutMs} ms` : 'never'})\n`)
  }
  return result.healthy ? 0 : 1
}

async function stop(args: ParsedArgs): Promise<number> {
  if (args.all) {
    const names = await stopAllInstances(log)
    if (args.json) print({ stopped: names })
    else process.stdout.write(names.length ? `Stopped ${names.join(', ')}.\n` : 'Nothing was running.\n')
    return 0
  }
  const stopped = await stopInstance(args.options.name, log)
  if (args.json) print({ name: nameOf(args), stopped })
  else process.stdout.write(stopped ? 'Stopped.\n' : 'Nothing was running.\n')
  return 0
}

/** `ps` (`list`): one line per instance folder under the state root. */
async function ps(args: ParsedArgs): Promise<number> {
  const stateRoot = readSettings().stateRoot
  const now = Date.now()
  const instances = (await listInstances(stateRoot)).map((i) => ({ ...i, uptimeMs: i.startedAt ? now - Date.parse(i.startedAt) : undefined }))
  if (args.json) {
    print({ stateRoot, instances })
    return 0
  }
  if (!instances.length) {
    process.stdout.write(`No instances under ${stateRoot}.\n`)
    return 0
  }
  const rows = [
    ['NAME', 'STATE', 'DRIVER', 'IMAGE', 'LEASES', 'UPTIME', 'URLS'],
    ...instances.map((i) => [
      i.name,
      i.state,
      i.driver ?? '-',
      i.image ?? '-',
      ['stopped', 'not answering', "another user's"].includes(i.state) ? '-' : String(i.leases.length),
      i.uptimeMs === undefined ? '-' : duration(i.uptimeMs),
      Object.entries(i.urls)
        .map(([service, url]) => `${service}=${url}`)
        .join(' ') || '-',
    ]),
  ]
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  for (const row of rows) process.stdout.write(`${row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')}\n`)
  return 0
}

/** 42s, 5m07s, 3h12m, 2d04h. */
function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  const two = (n: number) => String(n).padStart(2, '0')
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`
  return `${Math.floor(s / 86_400)}d${two(Math.floor(s / 3600) % 24)}h`
}

async function reset(args: ParsedArgs): Promise<number> {
  const started = Date.now()
  const info = await resetInstance(args.options.name, args.force)
  if (!info) {
    if (args.json) print({ name: nameOf(args), running: false })
    else process.stdout.write('Nothing is running; nothing to reset.\n')
    return NOT_RUNNING
  }
  const result = { name: nameOf(args), resetMs: info.lastResetMs, totalMs: Date.now() - started, origin: info.origin }
  if (args.json) print(result)
  else process.stdout.write(`Reset in ${result.resetMs} ms.\n`)
  return 0
}

async function exec(args: ParsedArgs): Promise<number> {
  const [file, ...rest] = args.rest
  if (!file) throw usageError('exec needs a command, e.g. stack-emulator exec -- npm test', 'exec')
  // Before booting anything: a mistyped command should not cost a VM start.
  const found = await which(file)
  if ('error' in found) return cannotRun(args, file, found.error)
  const emulator: Emulator = await withProgress((onProgress, onLog) => acquire({ ...args.options, onProgress, onLog }))
  try {
    const { execa } = await import('execa') // loaded only by exec: `start` is on the user's wait path
    const child = execa(file, rest, { env: emulator.env, stdio: 'inherit', reject: false })
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal)
    const onInt = forward('SIGINT')
    const onTerm = forward('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    const result = await child
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
    if (result.exitCode === undefined && !result.signal) return cannotRun(args, file, result.code ?? 'ENOENT')
    const exitCode = result.exitCode ?? 128 + (os.constants.signals[result.signal!] ?? 0)
    if (args.json) print({ exitCode, signal: result.signal ?? null })
    return exitCode
  } finally {
    await emulator.release()
  }
}

/** As a shell says it: 127 when the command is not found, 126 when it cannot be run. */
function cannotRun(args: ParsedArgs, file: string, code: string): number {
  const exitCode = code === 'ENOENT' ? 127 : 126
  const reason = code === 'ENOENT' ? 'command not found' : code === 'EACCES' ? 'permission denied' : 'cannot run it'
  log(`exec: ${file}: ${reason} (${code})`)
  if (args.json) print({ exitCode, signal: null })
  return exitCode
}

async function version(): Promise<string> {
  return (JSON.parse(await fs.readFile(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version
}

function nameOf(args: ParsedArgs): string {
  return instanceName(args.options.name)
}
