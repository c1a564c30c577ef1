import { describe, expect, it } from 'vitest'
import {
  checkJsonValue,
  DEFAULT_INTERNAL_MANIFEST_PATH,
  internalManifestPath,
  objectKeyOf,
  parseEntry,
  type ShardEntry,
  serializeEntry,
  shardCompression,
  validateEntry,
} from './entries.js'
import { InvalidEntryError, InvalidManifestError, S3ExchangeError } from './errors.js'

const where = { key: 'ds/manifest.jsonl', lineNumber: 7 }

/** Runs `fn`, expects it to throw an InvalidManifestError, and returns that error. */
function invalid(fn: () => unknown): InvalidManifestError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect(error).toBeInstanceOf(S3ExchangeError)
    return error as InvalidManifestError
  }
  throw new Error('expected an InvalidManifestError, nothing was thrown')
}

function expectLocated(error: InvalidManifestError, reason: RegExp): void {
  expect(error.key).toBe('ds/manifest.jsonl')
  expect(error.lineNumber).toBe(7)
  expect(error.reason).toMatch(reason)
  expect(error.message).toContain('ds/manifest.jsonl')
  expect(error.message).toContain('line 7')
  expect(error.message).toMatch(reason)
  expect(error.name).toBe('InvalidManifestError')
}

describe('parseEntry', () => {
  it('parses the three kinds and keeps unknown fields', () => {
    expect(parseEntry('{"kind":"file","key":"a.wav","id":"a","x_extra":[1,{"y":null}]}', where)).toStrictEqual({
      kind: 'file',
      key: 'a.wav',
      id: 'a',
      x_extra: [1, { y: null }],
    })
    expect(parseEntry('{"kind":"shard","archive_key":"s/0.tar.gz","compression":null,"count":3}', where)).toStrictEqual({
      kind: 'shard',
      archive_key: 's/0.tar.gz',
      compression: null,
      count: 3,
    })
    expect(parseEntry('{"kind":"manifest_ref","key":"m/part.jsonl"}', where)).toStrictEqual({ kind: 'manifest_ref', key: 'm/part.jsonl' })
  })

  it('reads \\uXXXX escapes and raw UTF-8 alike', () => {
    expect(parseEntry('{"kind":"file","key":"a/\\u00fc.wav"}')).toStrictEqual(parseEntry('{"kind":"file","key":"a/ü.wav"}'))
  })

  it('tolerates surrounding whitespace, including a trailing \\r', () => {
    expect(parseEntry('  {"kind":"file","key":"a"}\r')).toStrictEqual({ kind: 'file', key: 'a' })
  })

  it('rejects bad JSON, naming key and line, with the JSON error as cause', () => {
    const error = invalid(() => parseEntry('{"kind":"file","key":', where))
    expectLocated(error, /invalid JSON/)
    expect(error.cause).toBeInstanceOf(SyntaxError)
  })

  it.each([
    ['an array', '[{"kind":"file","key":"a"}]', /expected a JSON object, got an array/],
    ['a number', '42', /expected a JSON object, got number 42/],
    ['a string', '"file"', /expected a JSON object, got string/],
    ['null', 'null', /expected a JSON object, got null/],
  ])('rejects a line that is %s', (_what, line, reason) => {
    expectLocated(
      invalid(() => parseEntry(line, where)),
      reason,
    )
  })

  it('rejects a missing kind', () => {
    expectLocated(
      invalid(() => parseEntry('{"key":"a.wav"}', where)),
      /missing 'kind'/,
    )
  })

  it.each([['"folder"'], ['5'], ['null']])('rejects an unknown kind %s', (kind) => {
    expectLocated(
      invalid(() => parseEntry(`{"kind":${kind},"key":"a.wav"}`, where)),
      /unknown entry kind/,
    )
  })

  it('names the unknown kind in the message', () => {
    expect(invalid(() => parseEntry('{"kind":"folder"}', where)).message).toContain('"folder"')
  })

  it.each([
    ['file', '{"kind":"file","id":"a"}', /file entry missing 'key'/],
    ['manifest_ref', '{"kind":"manifest_ref"}', /manifest_ref entry missing 'key'/],
    ['shard', '{"kind":"shard","key":"s.tar"}', /shard entry missing 'archive_key'/],
  ])('rejects a %s entry without its key field', (_kind, line, reason) => {
    expectLocated(
      invalid(() => parseEntry(line, where)),
      reason,
    )
  })

  it.each([
    ['a file key that is a number', '{"kind":"file","key":5}', /file entry has an invalid 'key'/],
    ['an empty file key', '{"kind":"file","key":""}', /file entry has an invalid 'key'/],
    ['a null archive_key', '{"kind":"shard","archive_key":null}', /shard entry has an invalid 'archive_key'/],
  ])('rejects %s', (_what, line, reason) => {
    expectLocated(
      invalid(() => parseEntry(line, where)),
      reason,
    )
  })

  it.each([
    ['size_bytes as a string (file)', '{"kind":"file","key":"a","size_bytes":"12"}', /'size_bytes' must be number or null/],
    ['size_bytes as a string (shard)', '{"kind":"shard","archive_key":"a.tar","size_bytes":"12"}', /'size_bytes' must be number or null/],
    ['compression as a number', '{"kind":"shard","archive_key":"a.tar","compression":1}', /'compression' must be string or null/],
    ['compression as a boolean', '{"kind":"shard","archive_key":"a.tar","compression":false}', /'compression' must be string or null/],
    ['internal_manifest_path as null', '{"kind":"shard","archive_key":"a.tar","internal_manifest_path":null}', /'internal_manifest_path'/],
  ])('rejects %s', (_what, line, reason) => {
    expectLocated(
      invalid(() => parseEntry(line, where)),
      reason,
    )
  })

  it('accepts null size_bytes and null compression', () => {
    expect(parseEntry('{"kind":"file","key":"a","size_bytes":null}').size_bytes).toBeNull()
    expect(parseEntry('{"kind":"shard","archive_key":"a.tar","compression":null}')).toMatchObject({ compression: null })
  })

  it('without a location, still says what is wrong', () => {
    const error = invalid(() => parseEntry('{"kind":"file"}'))
    expect(error.key).toBeUndefined()
    expect(error.lineNumber).toBeUndefined()
    expect(error.message).toBe("Invalid manifest: file entry missing 'key'")
  })

  it('validateEntry checks already parsed values the same way', () => {
    expectLocated(
      invalid(() => validateEntry({ kind: 'file' }, where)),
      /missing 'key'/,
    )
    expect(validateEntry({ kind: 'file', key: 'a' })).toStrictEqual({ kind: 'file', key: 'a' })
  })
})

describe('InvalidManifestError', () => {
  it('has key, lineNumber and reason', () => {
    const error = new InvalidManifestError('bad', { key: 'k.jsonl', lineNumber: 3 })
    expect(error).toMatchObject({ key: 'k.jsonl', lineNumber: 3, reason: 'bad' })
    expect(error.message).toBe('Invalid manifest (k.jsonl, line 3): bad')
  })
})

describe('serializeEntry', () => {
  it("gives Python's json.dumps(separators=(',', ':')) bytes", () => {
    // python3 -c 'import json; print(json.dumps({"kind":"file","key":"a\u00fc\x7f\U0001F600\n\t\x01\x1f\"\\/",
    //   "n":None,"b":True,"i":12}, separators=(",",":")))'
    const python = '{"kind":"file","key":"a\\u00fc\\u007f\\ud83d\\ude00\\n\\t\\u0001\\u001f\\"\\\\/","n":null,"b":true,"i":12}'
    const entry = { kind: 'file', key: 'aü\x7f😀\n\t\x01\x1f"\\/', n: null, b: true, i: 12 }
    expect(serializeEntry(entry)).toBe(python)
  })

  it('escapes non-ASCII as lowercase \\uXXXX', () => {
    expect(serializeEntry({ kind: 'file', key: 'Ünï/名前.wav' })).toBe('{"kind":"file","key":"\\u00dcn\\u00ef/\\u540d\\u524d.wav"}')
    expect(serializeEntry({ kind: 'file', key: '\u00ff\u0100\uabcd' })).toBe('{"kind":"file","key":"\\u00ff\\u0100\\uabcd"}')
  })

  it('escapes DEL (0x7f) but not the printable ASCII before it', () => {
    expect(serializeEntry({ kind: 'file', key: '~\x7f' })).toBe('{"kind":"file","key":"~\\u007f"}')
  })

  it('writes astral characters as surrogate pairs', () => {
    expect(serializeEntry({ kind: 'file', key: '𝄞' })).toBe('{"kind":"file","key":"\\ud834\\udd1e"}')
  })

  it('escapes control characters as Python does', () => {
    expect(serializeEntry({ kind: 'file', key: '\n\r\t\b\f\x00\x01' })).toBe('{"kind":"file","key":"\\n\\r\\t\\b\\f\\u0000\\u0001"}')
  })

  it('escapes non-ASCII in field names and nested values too', () => {
    expect(serializeEntry({ kind: 'file', key: 'a', meta: { clé: ['é', { ü: 1 }] } })).toBe(
      '{"kind":"file","key":"a","meta":{"cl\\u00e9":["\\u00e9",{"\\u00fc":1}]}}',
    )
  })

  it('keeps key order, keeps null, drops undefined', () => {
    expect(serializeEntry({ key: 'a', kind: 'file', id: null, meta: undefined, size_bytes: 3 })).toBe(
      '{"key":"a","kind":"file","id":null,"size_bytes":3}',
    )
  })

  it('writes no newline and no spaces', () => {
    const line = serializeEntry({ kind: 'shard', archive_key: 's.tar', compression: null, meta: { etag: 'x' } })
    expect(line).toBe('{"kind":"shard","archive_key":"s.tar","compression":null,"meta":{"etag":"x"}}')
  })

  it('round-trips through parseEntry', () => {
    const entry = { kind: 'file', key: 'ä/😀#x', id: 'ß', meta: { n: 1, ok: false, list: ['\u2028'] } } as const
    expect(parseEntry(serializeEntry(entry))).toStrictEqual(entry)
  })

  it('is stable across calls (no regex state left over)', () => {
    const entry = { kind: 'file', key: 'é' }
    expect(serializeEntry(entry)).toBe(serializeEntry(entry))
    expect(serializeEntry({ kind: 'file', key: 'plain' })).toBe('{"kind":"file","key":"plain"}')
    expect(serializeEntry(entry)).toBe('{"kind":"file","key":"\\u00e9"}')
  })
})

describe('shard helpers', () => {
  const shard = (fields: Partial<ShardEntry>): ShardEntry => ({ kind: 'shard', archive_key: 's/0.tar', ...fields })

  it('shardCompression: absent means gzip, null means a plain tar', () => {
    expect(shardCompression(shard({}))).toBe('gzip')
    expect(shardCompression(shard({ compression: null }))).toBeNull()
    expect(shardCompression(shard({ compression: 'gzip' }))).toBe('gzip')
  })

  it('internalManifestPath defaults to __manifest__.jsonl', () => {
    expect(DEFAULT_INTERNAL_MANIFEST_PATH).toBe('__manifest__.jsonl')
    expect(internalManifestPath(shard({}))).toBe('__manifest__.jsonl')
    expect(internalManifestPath(shard({ internal_manifest_path: 'meta/index.jsonl' }))).toBe('meta/index.jsonl')
  })

  it('objectKeyOf names the object of each kind', () => {
    expect(objectKeyOf(shard({}))).toBe('s/0.tar')
    expect(objectKeyOf({ kind: 'file', key: 'f' })).toBe('f')
    expect(objectKeyOf({ kind: 'manifest_ref', key: 'm.jsonl' })).toBe('m.jsonl')
  })
})

describe('serializeEntry refuses what JSON would coerce or choke on (issue 12, case 12)', () => {
  const cyclic: Record<string, unknown> = {}
  cyclic.loop = { back: cyclic }
  it.each([
    [{ kind: 'file', key: 'a', meta: { n: 1n } }, 'meta.n', /BigInt/],
    [{ kind: 'file', key: 'a', meta: cyclic }, 'meta.loop.back', /cycle/],
    [{ kind: 'file', key: 'a', meta: { x: Number.NaN } }, 'meta.x', /NaN/],
    [{ kind: 'file', key: 'a', meta: { list: [1, Number.NEGATIVE_INFINITY] } }, 'meta.list[1]', /-Infinity/],
    [{ kind: 'file', key: 'a', meta: { f: () => 1 } }, 'meta.f', /function/],
    [{ kind: 'file', key: 'a', meta: { s: new Set([1]) } }, 'meta.s', /Set/],
    [{ kind: 'file', key: 'a', size_bytes: Number.NaN }, 'size_bytes', /non-negative integer/],
    [{ kind: 'file', key: 'a', size_bytes: -3 }, 'size_bytes', /non-negative integer/],
    [{ kind: 'file', key: 'a', size_bytes: 2.5 }, 'size_bytes', /non-negative integer/],
    [{ kind: 'file', key: 'a', size_bytes: '7' }, 'size_bytes', /non-negative integer/],
    [{ kind: 'shard', archive_key: 's.tar', count: -1 }, 'count', /non-negative integer/],
    [{ kind: 'file', key: 'a', extra: 5n }, 'extra', /BigInt/],
  ] as [Record<string, unknown>, string, RegExp][])('%o: InvalidEntryError on %s', (entry, field, reason) => {
    let error: unknown
    try {
      serializeEntry(entry)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(InvalidEntryError)
    expect(error).toMatchObject({ key: entry.kind === 'shard' ? entry.archive_key : entry.key, field })
    expect((error as Error).message).toMatch(reason)
  })

  it('keeps what JSON holds as it is: nulls, Dates (toJSON), nested objects and arrays, undefined fields left out', () => {
    const date = new Date('2026-01-02T03:04:05Z')
    expect(
      serializeEntry({ kind: 'file', key: 'a', size_bytes: null, meta: { d: date, l: [1, 'x', null], o: { p: true } }, gone: undefined }),
    ).toBe('{"kind":"file","key":"a","size_bytes":null,"meta":{"d":"2026-01-02T03:04:05.000Z","l":[1,"x",null],"o":{"p":true}}}')
    expect(() => checkJsonValue('k', 'meta', { shared: [1], again: [1] })).not.toThrow()
  })
})
