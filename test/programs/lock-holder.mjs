// Holds an instance's lock (argv[3] = "instance") or ownership ("owner") for the folder argv[2]
// from the built package, prints "held" once it has it, and keeps it until killed or HOLD_MS.
import { claimOwnership, withInstanceLock } from '../../dist/instance/lock.js'

const [dir, role] = process.argv.slice(2)
const hold = () => new Promise((r) => setTimeout(r, Number(process.env.HOLD_MS ?? 60_000)))
if (role === 'owner') {
  const held = await claimOwnership(dir)
  process.stdout.write(held ? 'held\n' : 'owned-by-another\n')
  if (held) await hold()
} else {
  await withInstanceLock({ dir }, async () => {
    process.stdout.write(`held ${Date.now()}\n`)
    await hold()
    process.stdout.write(`released ${Date.now()}\n`)
  })
}
