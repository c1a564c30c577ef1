import { describe, expect, it } from 'vitest'
import { Budget } from './budget.js'

describe('Budget', () => {
  it('tryTake takes what is there, and nothing more', () => {
    const budget = new Budget(3)
    expect(budget.tryTake(2)).toBe(true)
    expect(budget.tryTake(2)).toBe(false)
    expect(budget.available).toBe(1)
    budget.give(2)
    expect(budget.available).toBe(3)
  })

  it('take waits its turn, first come first served; tryTake does not jump the queue', async () => {
    const budget = new Budget(1)
    expect(budget.tryTake(1)).toBe(true)
    const order: string[] = []
    const a = budget.take(1).then(() => order.push('a'))
    const b = budget.take(1).then(() => order.push('b'))
    budget.give(1)
    expect(budget.tryTake(1)).toBe(false) // b waits before
    await a
    budget.give(1)
    await b
    expect(order).toEqual(['a', 'b'])
    expect(budget.available).toBe(0)
  })

  it('changed() resolves the next time some is given back', async () => {
    const budget = new Budget(0)
    let woke = false
    const changed = budget.changed().then(() => {
      woke = true
    })
    await Promise.resolve()
    expect(woke).toBe(false)
    budget.give(5)
    await changed
    expect(woke).toBe(true)
  })
})
