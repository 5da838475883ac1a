/**
 * The Docker driver's tests need an engine: a DOCKER_HOST already set is used as it is;
 * otherwise the tests start one of their own (scripts/docker-engine.sh: Debian's docker.io, its
 * own data root and socket, installed when missing, which needs root) and stop it afterwards.
 */
import { execa } from 'execa'
import path from 'node:path'

const script = path.join(import.meta.dirname, '../../scripts/docker-engine.sh')

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.DOCKER_HOST) return undefined
  const started = await execa('bash', [script, 'start'], { reject: false })
  if (started.exitCode !== 0) throw new Error(`The Docker driver's tests could not start a Docker engine:\n${started.stderr}\nStart one and set DOCKER_HOST, or run as root.`)
  process.env.DOCKER_HOST = started.stdout.trim()
  process.stderr.write(`[drivers] Docker engine at ${process.env.DOCKER_HOST}\n`)
  return async () => {
    await execa('bash', [script, 'stop'], { reject: false })
  }
}
