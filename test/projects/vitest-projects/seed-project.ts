// The per-project seed (seedProject): a user each new project starts with; SEED_LOG records each run.
import fs from 'node:fs'
import type { MintedProject } from 'stack-emulator'
import { createUser } from '../vitest-isolation/users.js'
import { PROJECT_SEED_EMAIL } from './project-check.js'

export default async function seedProject(project: MintedProject): Promise<void> {
  await createUser(project.env.STACK_API_URL!, project, PROJECT_SEED_EMAIL)
  if (process.env.SEED_LOG) fs.appendFileSync(process.env.SEED_LOG, `${project.projectId}\n`)
}
