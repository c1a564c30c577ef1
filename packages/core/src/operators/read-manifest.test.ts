import { PutObjectCommand } from '@aws-sdk/client-s3'
import { countRequests } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { describe, expect, it } from 'vitest'
import type { ManifestEntry } from '../format/entries.js'
import { parseManifest } from '../format/entry-stream.js'
import { InvalidManifestError, ManifestNotFoundError, ObjectNotFoundError } from '../format/errors.js'
import type { S3Context } from '../s3/context.js'
import { MANIFEST_KEY, readManifest } from './read-manifest.js'

const s3 = useTestS3()
const ctx = (): S3Context => ({ client: s3.client, bucket: s3.bucket })

async function put(name: string, body: string | Uint8Array): Promise<string> {
  const key = s3.key(name)
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body, ContentType: 'application/x-ndjson' }))
  return key
}

async function invalidAt(key: string): Promise<InvalidManifestError> {
  const error = await Array.fromAsync(readManifest(ctx(), key)).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(InvalidManifestError)
  const invalid = error as InvalidManifestError
  expect(invalid.key).toBe(key)
  expect(invalid.message).toContain(key)
  return invalid
}

describe('readManifest', () => {
  it('yields the entries of one manifest, in order, refs not followed', async () => {
    const key = await put(
      'rm/basic.jsonl',
      [
        '{"kind":"file","key":"a.wav","id":"a"}',
        '{"kind":"manifest_ref","key":"other.jsonl"}',
        '{"kind":"shard","archive_key":"s/0.tar.gz","count":2}',
        '',
      ].join('\n'),
    )
    expect(await Array.fromAsync(readManifest(ctx(), key))).toStrictEqual([
      { kind: 'file', key: 'a.wav', id: 'a' },
      { kind: 'manifest_ref', key: 'other.jsonl' },
      { kind: 'shard', archive_key: 's/0.tar.gz', count: 2 },
    ])
  })

  it('is marked with its key (for expandRefs)', async () => {
    const key = await put('rm/marked.jsonl', '')
    const source = readManifest(ctx(), key)
    expect(source[MANIFEST_KEY]).toBe(key)
    expect(await Array.fromAsync(source)).toStrictEqual([])
  })

  it('makes no request before it is iterated', async () => {
    const counts = countRequests(s3.client)
    readManifest(ctx(), s3.key('rm/never-read.jsonl'))
    expect(counts.GetObjectCommand ?? 0).toBe(0)
  })

  it('a missing manifest is ManifestNotFoundError with the key', async () => {
    const key = s3.key('rm/missing.jsonl')
    const error = await Array.fromAsync(readManifest(ctx(), key)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ManifestNotFoundError)
    expect((error as ManifestNotFoundError).key).toBe(key)
    expect((error as ManifestNotFoundError).referencedFrom).toBeUndefined()
    expect((error as Error).message).toContain(key)
    expect((error as Error).cause).toBeInstanceOf(ObjectNotFoundError)
  })

  it('names the manifest it was referenced from, when told', async () => {
    const key = s3.key('rm/missing-ref.jsonl')
    const error = await Array.fromAsync(readManifest(ctx(), key, { referencedFrom: 'root.jsonl' })).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ManifestNotFoundError)
    expect((error as ManifestNotFoundError).referencedFrom).toBe('root.jsonl')
    expect((error as Error).message).toContain('root.jsonl')
  })

  it('a bad line N is InvalidManifestError with the key and line N, after the good lines before it', async () => {
    const key = await put(
      'rm/bad-json.jsonl',
      '{"kind":"file","key":"a"}\n\n{"kind":"file","key":"b"}\n{"kind":"file",\n{"kind":"file","key":"c"}\n',
    )
    const seen: ManifestEntry[] = []
    const error = await (async () => {
      for await (const entry of readManifest(ctx(), key)) seen.push(entry)
    })().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect((error as InvalidManifestError).key).toBe(key)
    expect((error as InvalidManifestError).lineNumber).toBe(4)
    expect((error as Error).message).toContain('line 4')
    expect(seen.map((e) => (e as { key: string }).key)).toStrictEqual(['a', 'b'])
  })

  it.each([
    ['a missing kind', '{"key":"x"}', /missing 'kind'/],
    ['an unknown kind', '{"kind":"folder","key":"x"}', /unknown entry kind/],
    ['a file without key', '{"kind":"file"}', /missing 'key'/],
    ['a shard without archive_key', '{"kind":"shard"}', /missing 'archive_key'/],
    ['an array', '[1,2]', /expected a JSON object/],
  ])('%s on line 3 is InvalidManifestError at line 3', async (_what, line, reason) => {
    const key = await put(`rm/bad-${line.length}-${line.charCodeAt(2)}.jsonl`, `{"kind":"file","key":"a"}\n\r\n${line}\n`)
    const error = await invalidAt(key)
    expect(error.lineNumber).toBe(3)
    expect(error.reason).toMatch(reason)
  })

  it('invalid UTF-8 on line 2 is InvalidManifestError at line 2', async () => {
    const key = await put(
      'rm/bad-utf8.jsonl',
      Buffer.concat([Buffer.from('{"kind":"file","key":"a"}\n{"kind":"file","key":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]),
    )
    const error = await invalidAt(key)
    expect(error.lineNumber).toBe(2)
    expect(error.reason).toMatch(/UTF-8/)
  })

  it('a line longer than maxLineBytes is InvalidManifestError naming the line', async () => {
    const key = await put('rm/long.jsonl', `{"kind":"file","key":"a"}\n{"kind":"file","key":"${'x'.repeat(500)}"}\n`)
    const error = await Array.fromAsync(readManifest(ctx(), key, { maxLineBytes: 100 })).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect((error as InvalidManifestError).key).toBe(key)
    expect((error as InvalidManifestError).lineNumber).toBe(2)
    expect((error as InvalidManifestError).reason).toMatch(/longer than 100 bytes/)
  })

  it('accepts blank lines, \\r\\n, a BOM, a last line without newline, and keeps unknown fields', async () => {
    const key = await put(
      'rm/lenient.jsonl',
      '\ufeff{"kind":"file","key":"a","x_unknown":{"deep":[1,null]}}\r\n\r\n   \n\t\r\n{"kind":"shard","archive_key":"s.tar","compression":null,"future":true}\r\n{"kind":"file","key":"\\u00fc","id":"ü"}',
    )
    expect(await Array.fromAsync(readManifest(ctx(), key))).toStrictEqual([
      { kind: 'file', key: 'a', x_unknown: { deep: [1, null] } },
      { kind: 'shard', archive_key: 's.tar', compression: null, future: true },
      { kind: 'file', key: 'ü', id: 'ü' },
    ])
  })

  it('line numbers count blank and \\r\\n lines', async () => {
    const key = await put('rm/crlf-bad.jsonl', '\r\n{"kind":"file","key":"a"}\r\n\r\n\r\n{"kind":"file"}\r\n')
    expect((await invalidAt(key)).lineNumber).toBe(5)
  })

  it('a manifest larger than one network chunk parses completely and in order', async () => {
    const n = 20_000
    const lines: string[] = []
    for (let i = 0; i < n; i++) lines.push(JSON.stringify({ kind: 'file', key: `big/${i}.wav`, id: String(i), meta: { n: i, s: 'é' } }))
    const text = `${lines.join('\n')}\n`
    expect(Buffer.byteLength(text)).toBeGreaterThan(1_000_000)
    const key = await put('rm/big.jsonl', text)
    let i = 0
    for await (const entry of readManifest(ctx(), key)) {
      expect(entry).toStrictEqual({ kind: 'file', key: `big/${i}.wav`, id: String(i), meta: { n: i, s: 'é' } })
      i++
    }
    expect(i).toBe(n)
  })

  it('a bad line deep in a big manifest has the right line number', async () => {
    const lines: string[] = []
    for (let i = 0; i < 15_000; i++) lines.push(`{"kind":"file","key":"k${i}"}`)
    lines[12_344] = '{"kind":"file","key":"k12344"' // line 12,345, cut short
    const key = await put('rm/big-bad.jsonl', `${lines.join('\n')}\n`)
    expect((await invalidAt(key)).lineNumber).toBe(12_345)
  })

  it('stopping early closes the body', async () => {
    const lines: string[] = []
    for (let i = 0; i < 5000; i++) lines.push(`{"kind":"file","key":"k${i}"}`)
    const key = await put('rm/early.jsonl', `${lines.join('\n')}\n`)
    const seen: string[] = []
    for await (const entry of readManifest(ctx(), key)) {
      seen.push((entry as { key: string }).key)
      if (seen.length === 3) break
    }
    expect(seen).toStrictEqual(['k0', 'k1', 'k2'])
    // The client still works afterwards (the connection was let go).
    expect(await Array.fromAsync(readManifest(ctx(), key))).toHaveLength(5000)
  })
})

describe('parseManifest', () => {
  it('parses chunks into entries with line numbers', async () => {
    const chunks = [Buffer.from('{"kind":"file","key":"a"}\n\n{"ki'), Buffer.from('nd":"file","key":"b"}\n{"kind":"x"}\n')]
    const entries: ManifestEntry[] = []
    const error = await (async () => {
      for await (const entry of parseManifest(chunks, { key: 'mem.jsonl' })) entries.push(entry)
    })().catch((e: unknown) => e)
    expect(entries).toStrictEqual([
      { kind: 'file', key: 'a' },
      { kind: 'file', key: 'b' },
    ])
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect((error as InvalidManifestError).key).toBe('mem.jsonl')
    expect((error as InvalidManifestError).lineNumber).toBe(4)
  })
})
