/**
 * Python interop: the bucket that Python s3exchange 0.1.1 wrote (test/fixtures), read through
 * this library, must give exactly what the Python reader gave (expected.json): the same entries,
 * in the same order, and the same bytes.
 */
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { uploadDirectory } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { isBlankLine, parseEntry, S3ExchangeStore, serializeEntry } from 's3exchange'
import { beforeAll, describe, expect, it } from 'vitest'

const fixture = join(import.meta.dirname, 'fixtures/python-s3exchange-0.1.1')

interface Expected {
  roots: Record<
    string,
    {
      entries_resolved: unknown[]
      entries_raw: unknown[]
      files: unknown[]
      objects: { entry: unknown; size: number; sha256: string }[]
    }
  >
}

const expected: Expected = JSON.parse(await readFile(join(fixture, 'expected.json'), 'utf8'))
const roots = Object.keys(expected.roots)
const s3 = useTestS3()
let store: S3ExchangeStore

beforeAll(async () => {
  await uploadDirectory(s3.client, s3.bucket, join(fixture, 'bucket'))
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
})

it('the fixture has the six roots the README describes', () => {
  expect(roots).toHaveLength(6)
})

describe.each(roots)('root %s', (root) => {
  const want = expected.roots[root] as Expected['roots'][string]

  it('iterManifestEntries (refs resolved) gives entries_resolved, in order', async () => {
    expect(await Array.fromAsync(store.iterManifestEntries(root))).toStrictEqual(want.entries_resolved)
  })

  it('iterManifestEntries (refs not resolved) gives entries_raw, in order', async () => {
    expect(await Array.fromAsync(store.iterManifestEntries(root, { resolveRefs: false }))).toStrictEqual(want.entries_raw)
  })

  it('listManifestFiles (shards included) gives files, in order', async () => {
    expect(await Array.fromAsync(store.listManifestFiles(root, { includeShards: true }))).toStrictEqual(want.files)
  })

  it('iterObjects gives objects: the same entries, sizes and sha256 of the bytes, in order', async () => {
    const objects = []
    for await (const { entry, body } of store.iterObjects(root)) {
      const bytes = await body.bytes()
      objects.push({ entry, size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') })
    }
    expect(objects).toStrictEqual(want.objects)
  })

  it('iterObjects gives the same at concurrency 1 as at the default', async () => {
    const keys = []
    for await (const { entry, body } of store.iterObjects(root, { concurrency: 1 })) {
      keys.push([entry.key, (await body.bytes()).byteLength])
    }
    expect(keys).toStrictEqual(want.objects.map((o) => [(o.entry as { key: string }).key, o.size]))
  })
})

describe('the wire format', () => {
  it('re-serializing every manifest Python wrote gives its exact bytes back', async () => {
    const manifests = (await readdir(join(fixture, 'bucket'), { recursive: true })).filter((p) => p.endsWith('.jsonl'))
    expect(manifests.length).toBeGreaterThanOrEqual(10)
    for (const path of manifests) {
      const original = await readFile(join(fixture, 'bucket', path), 'utf8')
      const lines = original.split('\n')
      const rewritten = lines.map((line, i) =>
        isBlankLine(line) ? line : serializeEntry(parseEntry(line, { key: path, lineNumber: i + 1 })),
      )
      expect(rewritten.join('\n'), path).toBe(original)
    }
  })

  it('re-serializing the internal manifests of Python shards (non-ASCII member path included) gives their exact bytes', async () => {
    const { readTarMembers, parseInternalManifest } = await import('@s3exchange/core/internals')
    const { Readable } = await import('node:stream')
    const archives = (await readdir(join(fixture, 'bucket'), { recursive: true })).filter((p) => /\.tar(\.gz)?$/.test(p))
    expect(archives).toHaveLength(6)
    for (const path of archives) {
      const source = Readable.from([await readFile(join(fixture, 'bucket', path))])
      for await (const member of readTarMembers(source, { archiveKey: path })) {
        if (member.name !== '__manifest__.jsonl') continue
        const chunks: Buffer[] = []
        for await (const chunk of member.stream) chunks.push(Buffer.from(chunk))
        const original = Buffer.concat(chunks).toString('utf8')
        const entries = await parseInternalManifest([Buffer.from(original)], path, member.name)
        expect(entries.map((e) => `${serializeEntry(e)}\n`).join(''), path).toBe(original)
      }
    }
  })
})
