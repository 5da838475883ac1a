/**
 * Lease bookkeeping and the isolation policy, kept apart from sockets and the VM so the rules
 * read in one place.
 */
import type { ClientInfo, Isolation, LeaseInfo } from './protocol.js'

export interface Lease {
  id: number
  client: ClientInfo
  since: Date
  /** Set once the VM was handed to this lease. */
  acquired: boolean
  isolation: Isolation
}

export class LeaseBook {
  private nextId = 1
  private readonly leases = new Set<Lease>()
  /** True once a handed-out lease has ended since the last reset: its data may be in the VM. */
  dirty = false

  open(client: ClientInfo): Lease {
    const lease: Lease = { id: this.nextId++, client, since: new Date(), acquired: false, isolation: 'suite' }
    this.leases.add(lease)
    return lease
  }

  close(lease: Lease): void {
    if (!this.leases.delete(lease)) return
    if (lease.acquired) this.dirty = true
  }

  get size(): number {
    return this.leases.size
  }

  has(lease: Lease): boolean {
    return this.leases.has(lease)
  }

  byId(id: number | undefined): Lease | undefined {
    return [...this.leases].find((l) => l.id === id)
  }

  /** Leases other than `lease` that hold the VM now. */
  othersHolding(lease: Lease | undefined): Lease[] {
    return [...this.leases].filter((l) => l !== lease && l.acquired)
  }

  /** Under 'exclusive' (or while an exclusive lease holds the VM) a suite waits for the others. */
  mustWait(lease: Lease): boolean {
    const others = this.othersHolding(lease)
    if (lease.isolation === 'exclusive') return others.length > 0
    return others.some((l) => l.isolation === 'exclusive')
  }

  /** Reset before handing out: the VM was used and nobody else is using it now. */
  needsReset(lease: Lease): boolean {
    return lease.isolation !== 'none' && this.dirty && this.othersHolding(lease).length === 0
  }

  list(): LeaseInfo[] {
    return [...this.leases].map((l) => ({ id: l.id, pid: l.client.pid, command: l.client.command, since: l.since.toISOString() }))
  }
}
