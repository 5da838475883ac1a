/** `stack-emulator doctor [--fix] [--json]`: one line per finding; exit 1 when one fails. */
import { runChecks, SYSTEM_FILES, type DoctorContext, type Finding } from '../doctor/checks.js'
import { aptCommand, aptInstall } from '../doctor/fix.js'
import { readSettings } from '../settings.js'
import type { ParsedArgs } from './args.js'
import { log } from '../log.js'
import { print } from './output.js'

export async function doctor(args: Pick<ParsedArgs, 'json' | 'fix'>): Promise<number> {
  const ctx: DoctorContext = { settings: readSettings(), root: process.getuid?.() === 0, files: SYSTEM_FILES }
  let findings = await runChecks(ctx)
  const packages = [...new Set(findings.flatMap((f) => (f.status === 'ok' ? [] : (f.packages ?? []))))]
  let fixFailed = false
  if (args.fix && packages.length) {
    if (ctx.root) {
      log(`installing ${packages.join(' ')}`)
      const problem = await aptInstall(packages, log)
      if (problem) log(problem)
      fixFailed = Boolean(problem)
      findings = await runChecks(ctx)
    } else {
      fixFailed = true
    }
  }
  report(findings, args.json)
  const failed = findings.some((f) => f.status === 'fail')
  if (packages.length && !(args.fix && ctx.root)) {
    log(`to install what is missing: ${aptCommand(packages)}${args.fix ? '' : ' (or `stack-emulator doctor --fix` as root)'}`)
  }
  return failed || fixFailed ? 1 : 0
}

function report(findings: Finding[], json: boolean): void {
  if (json) {
    print({ ok: !findings.some((f) => f.status === 'fail'), findings: findings.map(({ id, status, message, fix }) => ({ id, status, message, ...(fix ? { fix } : {}) })) })
    return
  }
  const width = Math.max(...findings.map((f) => f.id.length))
  for (const f of findings) {
    const status = f.status === 'fail' ? 'FAIL' : f.status
    process.stdout.write(`${status.padEnd(4)} ${f.id.padEnd(width)}  ${f.message}${f.status !== 'ok' && f.fix ? ` — fix: ${f.fix}` : ''}\n`)
  }
}
