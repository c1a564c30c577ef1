/**
 * writeAll, the one loop that drains a source into a writer: items added in order, then finish;
 * a source that fails aborts the writer (once) and the error comes out unchanged. No S3 involved:
 * the writer is an in-memory recorder of the calls made to it.
 */
import { describe, expect, it } from 'vitest'
import { type Writer, writeAll } from './writer.js'

/** A writer that records what it is told, and fails where asked. */
function recorder(failOn?: { add?: number; finish?: boolean }): Writer<number, number[]> & { calls: string[] } {
  const calls: string[] = []
  const added: number[] = []
  return {
    calls,
    async add(item) {
      calls.push(`add ${item}`)
      if (failOn?.add === item) {
        calls.push('abort (itself)')
        throw new Error(`add ${item} failed`)
      }
      added.push(item)
    },
    async finish() {
      calls.push('finish')
      if (failOn?.finish) throw new Error('finish failed')
      return added
    },
    async abort() {
      calls.push('abort')
    },
  }
}

describe('writeAll', () => {
  it('adds every item in order, then finishes, and resolves to what finish returns', async () => {
    const writer = recorder()
    async function* source() {
      yield 1
      yield 2
    }
    expect(await writeAll(writer, source())).toEqual([1, 2])
    expect(writer.calls).toEqual(['add 1', 'add 2', 'finish'])
    expect(await writeAll(recorder(), [])).toEqual([])
  })

  it('a source that fails: the writer is aborted, not finished, and the error comes out unchanged', async () => {
    const writer = recorder()
    const broken = new Error('the source broke')
    async function* source() {
      yield 1
      throw broken
    }
    await expect(writeAll(writer, source())).rejects.toBe(broken)
    expect(writer.calls).toEqual(['add 1', 'abort'])
  })

  it('a writer that fails: abort is called again (a no-op for writers, which aborted themselves) and the error stands', async () => {
    const writer = recorder({ add: 2 })
    await expect(writeAll(writer, [1, 2, 3])).rejects.toThrow('add 2 failed')
    expect(writer.calls).toEqual(['add 1', 'add 2', 'abort (itself)', 'abort'])
    const finishing = recorder({ finish: true })
    await expect(writeAll(finishing, [1])).rejects.toThrow('finish failed')
    expect(finishing.calls).toEqual(['add 1', 'finish', 'abort'])
  })
})
