import { describe, expect, it } from 'vitest'
import type { CursorPosition } from '../format/cursor.js'
import { parseEntry } from '../format/entries.js'
import { cursorOf, positionOf, setPosition } from './positions.js'

const at = (line: number): CursorPosition => ({
  root: 'ds/manifest.jsonl',
  options: '',
  frames: [{ key: 'ds/manifest.jsonl', etag: 'abc', start: 0, end: 40, startCrc: 0, crc: 1234, line }],
  rootRefs: 0,
  visited: [],
})

/** The line of a traversal's position (the positions set here). */
const lineOf = (entry: object) => (positionOf(entry)?.position as CursorPosition | undefined)?.frames[0]?.line

describe('positions', () => {
  it('are carried by the entry without changing what it reads or writes as', () => {
    const line = '{"kind":"file","key":"a/b.wav","id":"1","meta":{"sr":16000}}'
    const entry = parseEntry(line)
    setPosition(entry, { position: at(1) })
    expect(lineOf(entry)).toBe(1)
    expect(cursorOf(entry)).toEqual(expect.any(String))
    expect(JSON.stringify(entry)).toBe(line)
    expect(Object.keys(entry)).toEqual(['kind', 'key', 'id', 'meta'])
    expect(Object.getOwnPropertySymbols({ ...entry })).toEqual([])
    expect(positionOf({ ...entry })).toBeUndefined()
    expect(positionOf(structuredClone(entry))).toBeUndefined()
  })

  it('a later position of the same entry replaces the earlier one', () => {
    const entry = parseEntry('{"kind":"shard","archive_key":"s.tar"}')
    setPosition(entry, { position: at(1) })
    setPosition(entry, { position: at(2), resumeAfter: { index: 3, path: 'x' } })
    expect(lineOf(entry)).toBe(2)
    expect(positionOf(entry)?.resumeAfter).toEqual({ index: 3, path: 'x' })
  })

  it('an entry that cannot take a property (frozen) still has its position', () => {
    const entry = Object.freeze(parseEntry('{"kind":"file","key":"k"}'))
    setPosition(entry, { position: at(7) })
    expect(lineOf(entry)).toBe(7)
    const open = parseEntry('{"kind":"file","key":"k"}')
    setPosition(open, { position: at(7) })
    expect(cursorOf(entry)).toBe(cursorOf(open))
  })

  it('an entry that never had one has none', () => {
    expect(positionOf(parseEntry('{"kind":"file","key":"k"}'))).toBeUndefined()
    expect(cursorOf({})).toBeUndefined()
  })
})
