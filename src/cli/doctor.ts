/** `stack-emulator doctor [--fix] [--json]`: one line per finding; exit 1 when one fails. */
import { runChecks, SYSTEM_FILES, type DoctorContext, type Finding } from '../doctor/checks.js'
import { aptCommand, aptInstall } from '../doctor/fix.js'
import { log } from '../log.js'
import { readSettings } from '../settings.js'
import type { ParsedArgs } from './args.js'
import { print } from './output.js'

export async function doctor(args: Pick<ParsedArgs, 'json' | 'fix'>): Promise<number> {
  const ctx: DoctorContext = { settings: readSettings(), root: process.getuid?.() === 0, files: SYSTEM_FILES }
  let findings = await runChecks(ctx)
  const packages = [...new Set(findings.flatMap((f) => (f.status === 'ok' ? [] : (f.packages ?? []))))]
  const install = args.fix && ctx.root && packages.length > 0
  let problem: string | undefined
  if (install) {
    log(`installing ${packages.join(' ')}`)
    problem = await aptInstall(packages, log)
    findings = await runChecks(ctx)
  }
  report(findings, args.json)
  if (problem) log(problem)
  if (packages.length && !install) log(`to install what is missing: ${aptCommand(packages)}${args.fix ? '' : ' (or `stack-emulator doctor --fix` as root)'}`)
  // --fix that could not install (not root, or apt-get failed) fails even if only warnings were left.
  const unfixed = args.fix && packages.length > 0 && (!install || problem !== undefined)
  return unfixed || findings.some((f) => f.status === 'fail') ? 1 : 0
}

function report(findings: Finding[], json: boolean): void {
  if (json) {
    print({
      ok: !findings.some((f) => f.status === 'fail'),
      findings: findings.map(({ id, status, message, fix }) => ({ id, status, message, ...(fix ? { fix } : {}) })),
    })
    return
  }
  const width = Math.max(...findings.map((f) => f.id.length))
  for (const f of findings) {
    const fix = f.status !== 'ok' && f.fix ? ` — fix: ${f.fix}` : ''
    process.stdout.write(`${(f.status === 'fail' ? 'FAIL' : f.status).padEnd(4)} ${f.id.padEnd(width)}  ${f.message}${fix}\n`)
  }
}
