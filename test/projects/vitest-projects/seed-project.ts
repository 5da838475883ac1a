// The per-project seed (seedProject), as the README writes one: a user each new project starts
// with, through Stack Auth's SDK; SEED_LOG records each run.
import fs from 'node:fs'
import { StackServerApp } from '@stackframe/js'
import type { MintedProject } from 'stack-emulator/vitest'
import { PROJECT_SEED_EMAIL } from './project-check.js'

export default async function seedProject(project: MintedProject): Promise<void> {
  const { projectId, publishableClientKey, secretServerKey } = project
  const app = new StackServerApp({ tokenStore: 'memory', baseUrl: project.env.STACK_API_URL, projectId, publishableClientKey, secretServerKey })
  await app.createUser({ primaryEmail: PROJECT_SEED_EMAIL, password: 'secret-123' })
  if (process.env.SEED_LOG) fs.appendFileSync(process.env.SEED_LOG, `${projectId}\n`)
}
