/**
 * `Budget`: a count of something a call may hold at once (bytes of memory, connections), taken
 * and given back. `tryTake` takes without waiting; `take` waits its turn (first come, first
 * served); `changed()` resolves the next time some is given back. No I/O.
 *
 * @example
 * ```ts
 * import { Budget } from '@s3exchange/core/internals'
 *
 * const connections = new Budget(4)
 * await connections.take(1)          // waits while 4 are held
 * try { … } finally { connections.give(1) }
 * ```
 */

/** A count taken and given back; see the module comment. */
export class Budget {
  #available: number
  #waiters: (() => void)[] = []
  #queue: { amount: number; resolve: () => void }[] = []

  constructor(total: number) {
    this.#available = total
  }

  /** What can be taken now. */
  get available(): number {
    return this.#available
  }

  /** Takes `amount` if it is available now (and nobody waits before); true when taken. */
  tryTake(amount: number): boolean {
    if (this.#queue.length > 0 || amount > this.#available) return false
    this.#available -= amount
    return true
  }

  /** Takes `amount`, waiting while it is not available (in the order of the calls). */
  take(amount: number): Promise<void> {
    if (this.tryTake(amount)) return Promise.resolve()
    return new Promise((resolve) => this.#queue.push({ amount, resolve }))
  }

  /** Gives `amount` back: serves those waiting in `take`, then wakes `changed()`. */
  give(amount: number): void {
    this.#available += amount
    while (this.#queue.length > 0 && (this.#queue[0] as { amount: number }).amount <= this.#available) {
      const next = this.#queue.shift() as { amount: number; resolve: () => void }
      this.#available -= next.amount
      next.resolve()
    }
    const waiters = this.#waiters
    this.#waiters = []
    for (const wake of waiters) wake()
  }

  /** Resolves the next time some is given back. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve))
  }
}
