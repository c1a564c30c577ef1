import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { countRequests } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { pipe } from 'it-pipe'
import { afterEach, describe, expect, it } from 'vitest'
import type { ManifestEntry } from '../format/entries.js'
import { InvalidManifestError, ManifestNotFoundError, ObjectChangedError } from '../format/errors.js'
import type { S3Context } from '../s3/context.js'
import { expandRefs } from './expand-refs.js'
import { readManifest } from './read-manifest.js'

const s3 = useTestS3()
const clients: S3Client[] = []

/** A fresh client whose GetObject keys are recorded, in order. */
function tracked(): { ctx: S3Context; gets: string[] } {
  const client = s3.s3.createClient()
  clients.push(client)
  const gets: string[] = []
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'GetObjectCommand') gets.push((args.input as { Key: string }).Key)
      return next(args)
    },
    { step: 'initialize', name: 'test-track-gets' },
  )
  return { ctx: { client, bucket: s3.bucket }, gets }
}

afterEach(() => {
  for (const client of clients.splice(0)) client.destroy()
})

let dir = 0
/** Writes manifests under a fresh folder: name → lines, where `@x` is a ref to manifest x and other strings are file keys. */
async function manifests(spec: Record<string, string[]>): Promise<(name: string) => string> {
  const base = `refs-${++dir}`
  const keyOf = (name: string) => s3.key(`${base}/${name}.jsonl`)
  for (const [name, items] of Object.entries(spec)) {
    const lines = items.map((item) =>
      item.startsWith('@')
        ? JSON.stringify({ kind: 'manifest_ref', key: keyOf(item.slice(1)) })
        : JSON.stringify({ kind: 'file', key: item }),
    )
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: keyOf(name), Body: `${lines.join('\n')}\n` }))
  }
  return keyOf
}

async function keys(items: AsyncIterable<ManifestEntry>): Promise<string[]> {
  const out: string[] = []
  for await (const item of items) out.push(item.kind === 'shard' ? `shard:${item.archive_key}` : item.key)
  return out
}

describe('expandRefs', () => {
  it('inlines refs depth first, in file order', async () => {
    const key = await manifests({
      root: ['r1', '@a', 'r2', '@b', 'r3'],
      a: ['a1', '@c', 'a2'],
      b: ['b1'],
      c: ['c1', 'c2'],
    })
    const { ctx, gets } = tracked()
    expect(await keys(pipe(readManifest(ctx, key('root')), expandRefs(ctx)))).toStrictEqual([
      'r1',
      'a1',
      'c1',
      'c2',
      'a2',
      'r2',
      'b1',
      'r3',
    ])
    expect(gets).toStrictEqual([key('root'), key('a'), key('c'), key('b')])
  })

  it('passes shards and files through and never yields a manifest_ref', async () => {
    const key = await manifests({ a: ['a1'] })
    const { ctx } = tracked()
    const input: ManifestEntry[] = [
      { kind: 'shard', archive_key: 's.tar' },
      { kind: 'manifest_ref', key: key('a') },
      { kind: 'file', key: 'f' },
    ]
    const out: ManifestEntry[] = []
    for await (const entry of expandRefs(ctx)(input)) out.push(entry)
    expect(out).toStrictEqual([
      { kind: 'shard', archive_key: 's.tar' },
      { kind: 'file', key: 'a1' },
      { kind: 'file', key: 'f' },
    ])
  })

  it('a cycle a → b → a terminates, reading each manifest once', async () => {
    const key = await manifests({ a: ['a1', '@b', 'a2'], b: ['b1', '@a', 'b2'] })
    const { ctx, gets } = tracked()
    const counts = countRequests(ctx.client)
    expect(await keys(pipe(readManifest(ctx, key('a')), expandRefs(ctx)))).toStrictEqual(['a1', 'b1', 'b2', 'a2'])
    expect(counts.GetObjectCommand).toBe(2)
    expect(gets).toStrictEqual([key('a'), key('b')])
  })

  it('a cycle reached from a plain array input reads each manifest once', async () => {
    const key = await manifests({ a: ['a1', '@b'], b: ['b1', '@a'] })
    const { ctx, gets } = tracked()
    expect(await keys(expandRefs(ctx)([{ kind: 'manifest_ref', key: key('a') }]))).toStrictEqual(['a1', 'b1'])
    expect(gets).toStrictEqual([key('a'), key('b')])
  })

  it('a manifest that refers to itself is read once', async () => {
    const key = await manifests({ self: ['s1', '@self', 's2'] })
    const { ctx, gets } = tracked()
    expect(await keys(pipe(readManifest(ctx, key('self')), expandRefs(ctx)))).toStrictEqual(['s1', 's2'])
    expect(gets).toHaveLength(1)
  })

  it('a diamond root → a, b → c reads c once, where it is first met', async () => {
    const key = await manifests({ root: ['@a', '@b'], a: ['a1', '@c'], b: ['b1', '@c', 'b2'], c: ['c1'] })
    const { ctx, gets } = tracked()
    expect(await keys(pipe(readManifest(ctx, key('root')), expandRefs(ctx)))).toStrictEqual(['a1', 'c1', 'b1', 'b2'])
    expect(gets).toStrictEqual([key('root'), key('a'), key('c'), key('b')])
    expect(gets.filter((k) => k === key('c'))).toHaveLength(1)
  })

  it('the same ref twice in one manifest is read once', async () => {
    const key = await manifests({ root: ['@a', 'x', '@a'], a: ['a1'] })
    const { ctx, gets } = tracked()
    expect(await keys(pipe(readManifest(ctx, key('root')), expandRefs(ctx)))).toStrictEqual(['a1', 'x'])
    expect(gets).toHaveLength(2)
  })

  it('the root key of a readManifest input counts as visited: root → a → root does not re-read root', async () => {
    const key = await manifests({ root: ['r1', '@a', 'r2'], a: ['a1', '@root', 'a2'] })
    const { ctx, gets } = tracked()
    expect(await keys(pipe(readManifest(ctx, key('root')), expandRefs(ctx)))).toStrictEqual(['r1', 'a1', 'a2', 'r2'])
    expect(gets).toStrictEqual([key('root'), key('a')])
  })

  it('a shared visited set spans calls and is updated', async () => {
    const key = await manifests({ a: ['a1', '@b'], b: ['b1'] })
    const { ctx, gets } = tracked()
    const visited = new Set<string>([key('b')])
    expect(await keys(pipe(readManifest(ctx, key('a')), expandRefs(ctx, { visited })))).toStrictEqual(['a1'])
    expect([...visited].sort()).toStrictEqual([key('a'), key('b')].sort())
    expect(gets).toStrictEqual([key('a')])
  })

  it('a ref to a missing manifest is ManifestNotFoundError with the key and where it was referenced from', async () => {
    const key = await manifests({ root: ['r1', '@a'], a: ['a1', '@missing'] })
    const { ctx } = tracked()
    const seen: string[] = []
    const error = await (async () => {
      for await (const entry of pipe(readManifest(ctx, key('root')), expandRefs(ctx))) seen.push((entry as { key: string }).key)
    })().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ManifestNotFoundError)
    expect((error as ManifestNotFoundError).key).toBe(key('missing'))
    expect((error as ManifestNotFoundError).referencedFrom).toBe(key('a'))
    expect((error as Error).message).toContain(key('missing'))
    expect((error as Error).message).toContain(key('a'))
    expect(seen).toStrictEqual(['r1', 'a1'])
  })

  it('a bad line in a referenced manifest names that manifest and line', async () => {
    const key = await manifests({ root: ['@a'] })
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key('a'), Body: '{"kind":"file","key":"a1"}\n{"kind":"nope"}\n' }))
    const { ctx } = tracked()
    const error = await keys(pipe(readManifest(ctx, key('root')), expandRefs(ctx))).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect((error as InvalidManifestError).key).toBe(key('a'))
    expect((error as InvalidManifestError).lineNumber).toBe(2)
  })

  it('stopping early does not read the refs further on', async () => {
    const key = await manifests({ root: ['r1', '@a', '@b'], a: ['a1', 'a2'], b: ['b1'] })
    const { ctx, gets } = tracked()
    for await (const entry of pipe(readManifest(ctx, key('root')), expandRefs(ctx))) {
      if (entry.kind === 'file' && entry.key === 'a1') break
    }
    expect(gets).toStrictEqual([key('root'), key('a')])
  })
})

describe('a manifest being descended from holds no connection (issue 12, case 2)', () => {
  /** A client whose GetObject requests are recorded with their Range and If-Match, and whose open bodies are counted. */
  function watched(): { ctx: S3Context; gets: { key: string; range?: string; ifMatch?: string }[]; open: (key: string) => number } {
    const client = s3.s3.createClient()
    clients.push(client)
    const gets: { key: string; range?: string; ifMatch?: string }[] = []
    const open = new Map<string, number>()
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'GetObjectCommand') return next(args)
        const input = args.input as { Key: string; Range?: string; IfMatch?: string }
        gets.push({ key: input.Key, range: input.Range, ifMatch: input.IfMatch })
        const result = await next(args)
        const body = (result.response as { body?: NodeJS.ReadableStream & { once: (e: string, f: () => void) => void; closed?: boolean } })
          .body
        if (body && !body.closed) {
          open.set(input.Key, (open.get(input.Key) ?? 0) + 1)
          body.once('close', () => open.set(input.Key, (open.get(input.Key) ?? 0) - 1))
        }
        return result
      },
      { step: 'deserialize', name: 'test-watch-gets' },
    )
    return { ctx: { client, bucket: s3.bucket }, gets, open: (key) => open.get(key) ?? 0 }
  }

  /** A parent whose second line is a ref, followed by about `bytes` of file entries. */
  async function bigParent(name: string, bytes: number): Promise<{ parent: string; child: string; files: string[] }> {
    const parent = s3.key(`detach/${name}/parent.jsonl`)
    const child = s3.key(`detach/${name}/child.jsonl`)
    const files: string[] = []
    const lines = [JSON.stringify({ kind: 'file', key: 'first' }), JSON.stringify({ kind: 'manifest_ref', key: child })]
    for (let size = 0, i = 0; size < bytes; i++) {
      const line = JSON.stringify({ kind: 'file', key: `f-${String(i).padStart(6, '0')}`, meta: { pad: 'x'.repeat(60) } })
      files.push(`f-${String(i).padStart(6, '0')}`)
      lines.push(line)
      size += line.length + 1
    }
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: parent, Body: `${lines.join('\n')}\n` }))
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: child, Body: '{"kind":"file","key":"c1"}\n{"kind":"file","key":"c2"}\n' }),
    )
    return { parent, child, files }
  }

  /** The keys of every entry under `parent`, and how many of the parent's GETs were open when the child's first entry came. */
  async function walk(ctx: S3Context, parent: string, open: (key: string) => number): Promise<{ out: string[]; openDuringChild: number }> {
    const out: string[] = []
    let openDuringChild = -1
    for await (const entry of expandRefs(ctx)(readManifest(ctx, parent))) {
      if (entry.kind === 'file' && entry.key === 'c1') openDuringChild = open(parent)
      out.push((entry as { key: string }).key)
    }
    return { out, openDuringChild }
  }

  it('a small parent is read to its end before the child is opened: one GET, nothing open while the child is read', async () => {
    const { ctx, gets, open } = watched()
    const { parent, child, files } = await bigParent('small', 200 * 1024)
    const { out, openDuringChild } = await walk(ctx, parent, open)
    expect(out).toEqual(['first', 'c1', 'c2', ...files])
    // While the child was read, the parent's GET was not open.
    expect(openDuringChild).toBe(0)
    expect(gets.map((get) => get.key)).toEqual([parent, child])
  })

  it('a large parent lets go of its connection and goes on with a ranged GET pinned to its ETag', async () => {
    const { ctx, gets, open } = watched()
    const { parent, files } = await bigParent('large', 3 * 1024 * 1024)
    const { out, openDuringChild } = await walk(ctx, parent, open)
    expect(out).toEqual(['first', 'c1', 'c2', ...files])
    expect(openDuringChild).toBe(0)
    const parentGets = gets.filter((get) => get.key === parent)
    expect(parentGets).toHaveLength(2)
    expect(parentGets[0]?.range).toBeUndefined()
    expect(parentGets[1]?.range).toMatch(/^bytes=\d+-$/)
    expect(Number(parentGets[1]?.range?.match(/\d+/)?.[0])).toBeGreaterThan(1024 * 1024)
    expect(parentGets[1]?.ifMatch).toMatch(/[0-9a-f]{8}/)
  })

  it('a large parent replaced while its child is read: ObjectChangedError naming it, never a splice', async () => {
    const { ctx } = watched()
    const { parent } = await bigParent('replaced', 3 * 1024 * 1024)
    const out: string[] = []
    const error = await (async () => {
      for await (const entry of expandRefs(ctx)(readManifest(ctx, parent))) {
        const key = (entry as { key: string }).key
        out.push(key)
        if (key === 'c1') {
          await s3.client.send(
            new PutObjectCommand({ Bucket: s3.bucket, Key: parent, Body: '{"kind":"file","key":"new"}\n'.repeat(100_000) }),
          )
        }
      }
    })().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ObjectChangedError)
    expect((error as ObjectChangedError).key).toBe(parent)
    expect(out).not.toContain('new')
  })
})
