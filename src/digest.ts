import crypto from 'node:crypto'

export function sha256(data: crypto.BinaryLike): string {
  return crypto.createHash('sha256').update(data).digest('hex')
}
