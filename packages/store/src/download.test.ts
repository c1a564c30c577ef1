/**
 * Downloading to local disk against a real (local) S3: downloadObject (temporary name, then
 * rename; parents created; virtual keys), downloadObjects (Python's naming, one read per archive,
 * collisions refused), downloadManifest (shards expanded, concurrency), hostile archives ('..',
 * absolute paths, symbolic and hard links: nothing outside the folder, no link created), links
 * planted in the folder, and downloads cut off midway (a test-local loopback proxy that stops or
 * pauses a response body after some bytes: fault injection at the HTTP layer only).
 */
import { randomBytes } from 'node:crypto'
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { buildTar, countRequests, internalManifestFor, rejection, type TarMemberSpec } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type ManifestEntry, ObjectNotFoundError, S3ExchangeError, ShardReadError, serializeEntry, UnsafePathError } from './index.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
let store: S3ExchangeStore
const clients: S3Client[] = []
const servers: { stop(): Promise<void> }[] = []
const temporary: string[] = []

afterAll(async () => {
  for (const client of clients) client.destroy()
  for (const server of servers) await server.stop()
  for (const dir of temporary) await rm(dir, { recursive: true, force: true })
})

/** A fresh parent temporary folder holding `target/` (where downloads go) and `elsewhere/` (outside it). */
let parent: string
let target: string
let elsewhere: string

beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), 's3x-download-'))
  temporary.push(parent)
  target = join(parent, 'target')
  elsewhere = join(parent, 'elsewhere')
  await mkdir(elsewhere)
})

/** Every path under `dir`, relative, sorted; links are listed, never followed. */
async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort()
}

async function put(key: string, body: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

async function putManifest(key: string, entries: ManifestEntry[]): Promise<void> {
  await put(key, entries.map((entry) => `${serializeEntry(entry)}\n`).join(''))
}

/** Puts an archive whose first member is an internal manifest listing `listed` (default: its regular members). */
async function putArchive(
  key: string,
  members: TarMemberSpec[],
  options: { gzip?: boolean; listed?: TarMemberSpec[] } = {},
): Promise<void> {
  const listed = options.listed ?? members.filter((member) => (member.type ?? 'file') === 'file')
  const manifest = internalManifestFor(
    key,
    listed.map((member) => ({ name: member.name, data: member.data })),
  )
  await put(key, await buildTar([{ name: '__manifest__.jsonl', data: manifest }, ...members], { gzip: options.gzip }))
}

function newClient(config: { endpoint?: string } = {}): S3Client {
  const client = s3.s3.createClient(config.endpoint ? { endpoint: config.endpoint } : {})
  clients.push(client)
  return client
}

/** What the tap proxy does to the body of a GET of `key`: stop after `after` bytes, or pause there until `resume` settles. */
interface Tap {
  key: string
  after: number
  resume?: Promise<void>
}

/**
 * A loopback HTTP proxy in front of the S3 server that forwards everything, except that the body of
 * a GET of a tapped key is cut off (the connection closed) or paused after some bytes, and the
 * range GETs that try to resume a cut one are cut at once. Unlike
 * `startS3Proxy`, which answers whole responses, this one fails a response midway.
 */
async function startTapProxy(taps: Tap[]): Promise<string> {
  const upstream = new URL(s3.s3.endpoint)
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    const tap = req.method === 'GET' ? taps.find((t) => path === `/${s3.bucket}/${t.key}`) : undefined
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        if (tap && answer.statusCode === 206 && !tap.resume) {
          // A resumed read (a range GET after a cut) is cut too, before any byte: the download
          // runs out of resume attempts and fails, which is what these tests are about.
          answer.destroy()
          res.socket?.destroy()
          return
        }
        if (!tap || answer.statusCode !== 200) return void answer.pipe(res)
        relay(answer, res, tap).catch(() => res.destroy())
      },
    )
    forward.on('error', () => res.destroy())
    req.pipe(forward)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  servers.push({
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function relay(answer: IncomingMessage, res: ServerResponse, tap: Tap): Promise<void> {
  const write = (chunk: Buffer) => new Promise<void>((resolve, reject) => res.write(chunk, (error) => (error ? reject(error) : resolve())))
  let sent = 0
  for await (const chunk of answer as AsyncIterable<Buffer>) {
    if (sent < tap.after && sent + chunk.length >= tap.after) {
      const head = chunk.subarray(0, tap.after - sent)
      await write(head)
      sent += head.length
      if (!tap.resume) {
        // Cut: the client has the first bytes, then the connection closes short of Content-Length.
        answer.destroy()
        res.socket?.destroy()
        return
      }
      await tap.resume
      await write(chunk.subarray(head.length))
      sent += chunk.length - head.length
      continue
    }
    await write(chunk)
    sent += chunk.length
  }
  res.end()
}

/** A store whose requests go through a tap proxy. */
async function tappedStore(taps: Tap[]): Promise<S3ExchangeStore> {
  return new S3ExchangeStore({ client: newClient({ endpoint: await startTapProxy(taps) }), bucket: s3.bucket })
}

/** Waits until `dir` holds a temporary download file (or a while passes: a guard, not a measure). */
async function temporaryFileIn(dir: string): Promise<string | undefined> {
  for (let i = 0; i < 500; i++) {
    const found = (await readdir(dir).catch(() => [] as string[])).find((name) => name.startsWith('.s3x-') && name.endsWith('.part'))
    if (found) return found
    await sleep(10)
  }
  return undefined
}

const big = randomBytes(256 * 1024)
const looseKeys = {
  one: () => s3.key('dl/a/one.txt'),
  two: () => s3.key('dl/b/two.bin'),
  hash: () => s3.key('dl/c/notes#1.txt'),
  sameA: () => s3.key('dl/a/same.txt'),
  sameB: () => s3.key('dl/b/same.txt'),
  x: () => s3.key('dl/x.txt'),
}
const tarKey = () => s3.key('dl/shards/s.tar')
const tgzKey = () => s3.key('dl/shards/t.tar.gz')
const tarMembers: TarMemberSpec[] = [
  { name: 'x.txt', data: 'member x' },
  { name: 'dir/y.bin', data: big },
  { name: 'dir/sub/z.txt', data: 'member z' },
]
const tgzMembers: TarMemberSpec[] = [
  { name: 'g1.txt', data: 'gzip one' },
  { name: 'nested/g2.txt', data: 'gzip two' },
]

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  await put(looseKeys.one(), 'one')
  await put(looseKeys.two(), big)
  await put(looseKeys.hash(), 'a key with a hash')
  await put(looseKeys.sameA(), 'same a')
  await put(looseKeys.sameB(), 'same b')
  await put(looseKeys.x(), 'loose x')
  await putArchive(tarKey(), tarMembers)
  await putArchive(tgzKey(), tgzMembers, { gzip: true })
})

describe('downloadObject', () => {
  it('writes an object to the path, creating its folders, and resolves to the absolute path', async () => {
    const path = join(target, 'deep', 'er', 'two.bin')
    expect(await store.downloadObject(looseKeys.two(), path)).toBe(path)
    expect(Buffer.compare(await readFile(path), big)).toBe(0)
    expect(await listing(parent)).toEqual([
      'elsewhere',
      'target',
      join('target', 'deep'),
      join('target', 'deep', 'er'),
      join('target', 'deep', 'er', 'two.bin'),
    ])
  })

  it('a virtual key writes one archive member (plain tar and tar.gz)', async () => {
    await store.downloadObject(`${tarKey()}#dir/y.bin`, join(target, 'y.bin'))
    await store.downloadObject(`${tgzKey()}#nested/g2.txt`, join(target, 'g2.txt'))
    expect(Buffer.compare(await readFile(join(target, 'y.bin')), big)).toBe(0)
    expect(await readFile(join(target, 'g2.txt'), 'utf8')).toBe('gzip two')
    expect(await listing(target)).toEqual(['g2.txt', 'y.bin'])
  })

  it('a missing key is ObjectNotFoundError, and nothing is created', async () => {
    const before = await listing(parent)
    const error = await rejection(store.downloadObject(s3.key('dl/missing.txt'), join(target, 'sub', 'missing.txt')))
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect(await listing(parent)).toEqual(before)
  })

  it('writes to a temporary name and renames it when complete', async () => {
    let resume = () => {}
    const paused = new Promise<void>((resolve) => {
      resume = resolve
    })
    const tapped = await tappedStore([{ key: looseKeys.two(), after: 100_000, resume: paused }])
    const path = join(target, 'two.bin')
    await mkdir(target)
    const download = tapped.downloadObject(looseKeys.two(), path)
    try {
      const partial = await temporaryFileIn(target)
      expect(partial).toMatch(/^\.s3x-[0-9a-f]{12}\.part$/)
      expect(await listing(target)).toEqual([partial])
    } finally {
      resume()
    }
    await download
    expect(await listing(target)).toEqual(['two.bin'])
    expect(Buffer.compare(await readFile(path), big)).toBe(0)
  })

  it('cut off midway: rejects, nothing under the final name, no temporary file left', async () => {
    const tapped = await tappedStore([{ key: looseKeys.two(), after: 100_000 }])
    const path = join(target, 'two.bin')
    const error = await rejection(tapped.downloadObject(looseKeys.two(), path))
    expect(error).toBeInstanceOf(S3ExchangeError)
    await expect(lstat(path)).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await listing(target)).toEqual([])
  })

  it('an existing file under the final name is replaced only when the download succeeds', async () => {
    const path = join(target, 'two.bin')
    await mkdir(target)
    await writeFile(path, 'old contents')
    const tapped = await tappedStore([{ key: looseKeys.two(), after: 100_000 }])
    await rejection(tapped.downloadObject(looseKeys.two(), path))
    expect(await readFile(path, 'utf8')).toBe('old contents')
    expect(await listing(target)).toEqual(['two.bin'])

    await store.downloadObject(looseKeys.two(), path)
    expect(Buffer.compare(await readFile(path), big)).toBe(0)
    expect(await listing(target)).toEqual(['two.bin'])
  })

  it('an archive member cut off midway: rejects, no file, no temporary file', async () => {
    const tapped = await tappedStore([{ key: tarKey(), after: 100_000 }])
    const error = await rejection(tapped.downloadObject(`${tarKey()}#dir/y.bin`, join(target, 'y.bin')))
    expect(error).toBeInstanceOf(ShardReadError)
    // Nothing at all: the read failed before the folder was even made.
    expect(await listing(target).catch(() => [])).toEqual([])
  })
})

describe('downloadObjects', () => {
  it('names files as Python does: loose keys by basename, members by their path in the archive; resolves to key → absolute path', async () => {
    const keys = [
      looseKeys.one(),
      `${tarKey()}#x.txt`,
      looseKeys.two(),
      `${tarKey()}#dir/sub/z.txt`,
      `${tgzKey()}#nested/g2.txt`,
      looseKeys.hash(),
    ]
    const paths = await store.downloadObjects(keys, target)
    expect(Object.fromEntries(paths)).toEqual({
      [looseKeys.one()]: join(target, 'one.txt'),
      [looseKeys.two()]: join(target, 'two.bin'),
      [looseKeys.hash()]: join(target, 'notes#1.txt'),
      [`${tarKey()}#x.txt`]: join(target, 'x.txt'),
      [`${tarKey()}#dir/sub/z.txt`]: join(target, 'dir', 'sub', 'z.txt'),
      [`${tgzKey()}#nested/g2.txt`]: join(target, 'nested', 'g2.txt'),
    })
    expect(await readFile(join(target, 'one.txt'), 'utf8')).toBe('one')
    expect(Buffer.compare(await readFile(join(target, 'two.bin')), big)).toBe(0)
    expect(await readFile(join(target, 'notes#1.txt'), 'utf8')).toBe('a key with a hash')
    expect(await readFile(join(target, 'x.txt'), 'utf8')).toBe('member x')
    expect(await readFile(join(target, 'dir', 'sub', 'z.txt'), 'utf8')).toBe('member z')
    expect(await readFile(join(target, 'nested', 'g2.txt'), 'utf8')).toBe('gzip two')
    expect(await listing(target)).toEqual(
      [
        'dir',
        join('dir', 'sub'),
        join('dir', 'sub', 'z.txt'),
        'nested',
        join('nested', 'g2.txt'),
        'notes#1.txt',
        'one.txt',
        'two.bin',
        'x.txt',
      ].sort(),
    )
  })

  it('reads each archive once for all the members asked of it', async () => {
    const client = newClient()
    const counts = countRequests(client)
    const counted = new S3ExchangeStore({ client, bucket: s3.bucket })
    const keys = [`${tarKey()}#dir/sub/z.txt`, `${tarKey()}#x.txt`, `${tarKey()}#dir/y.bin`, looseKeys.one()]
    const paths = await counted.downloadObjects(keys, target)
    expect([...paths.keys()].sort()).toEqual([...keys].sort())
    expect(counts.GetObjectCommand).toBe(2)
    expect(Buffer.compare(await readFile(join(target, 'dir', 'y.bin')), big)).toBe(0)
  })

  it('two keys that map to the same file: UnsafePathError naming the second, before anything is written', async () => {
    const before = await listing(parent)
    const error = await rejection(store.downloadObjects([looseKeys.sameA(), looseKeys.sameB()], target))
    expect(error).toBeInstanceOf(UnsafePathError)
    expect((error as UnsafePathError).key).toBe(looseKeys.sameB())
    expect((error as UnsafePathError).path).toBe('same.txt')

    // A loose key and an archive member can collide too.
    const member = await rejection(store.downloadObjects([`${tarKey()}#x.txt`, looseKeys.x()], join(parent, 'second')))
    expect(member).toBeInstanceOf(UnsafePathError)
    expect((member as UnsafePathError).key).toBe(looseKeys.x())
    expect((member as UnsafePathError).path).toBe('x.txt')
    expect(await listing(parent)).toEqual(before)
  })

  it('cut off midway: rejects; what was complete stays, nothing partial, no temporary file', async () => {
    const tapped = await tappedStore([{ key: tarKey(), after: 100_000 }])
    const error = await rejection(tapped.downloadObjects([looseKeys.one(), `${tarKey()}#x.txt`, `${tarKey()}#dir/y.bin`], target))
    expect(error).toBeInstanceOf(ShardReadError)
    // The folder of the member that was cut was created, and stays empty.
    expect(await listing(target)).toEqual(['dir', 'one.txt', 'x.txt'])
  })
})

describe('downloadManifest', () => {
  it('downloads everything a manifest names: refs resolved, shards expanded', async () => {
    const part = s3.key('dl/manifests/part.jsonl')
    const root = s3.key('dl/manifests/root.jsonl')
    await putManifest(part, [{ kind: 'file', key: looseKeys.hash() }])
    await putManifest(root, [
      { kind: 'file', key: looseKeys.one() },
      { kind: 'shard', archive_key: tarKey(), compression: null },
      { kind: 'manifest_ref', key: part },
      { kind: 'shard', archive_key: tgzKey() },
      { kind: 'file', key: looseKeys.two() },
    ])
    const paths = await store.downloadManifest(root, target, { concurrency: 2 })
    expect(Object.fromEntries(paths)).toEqual({
      [looseKeys.one()]: join(target, 'one.txt'),
      [`${tarKey()}#x.txt`]: join(target, 'x.txt'),
      [`${tarKey()}#dir/y.bin`]: join(target, 'dir', 'y.bin'),
      [`${tarKey()}#dir/sub/z.txt`]: join(target, 'dir', 'sub', 'z.txt'),
      [looseKeys.hash()]: join(target, 'notes#1.txt'),
      [`${tgzKey()}#g1.txt`]: join(target, 'g1.txt'),
      [`${tgzKey()}#nested/g2.txt`]: join(target, 'nested', 'g2.txt'),
      [looseKeys.two()]: join(target, 'two.bin'),
    })
    for (const [key, path] of paths) {
      const want = await (await store.getObject(key)).bytes()
      expect(Buffer.compare(await readFile(path), want), key).toBe(0)
    }
    expect((await listing(target)).filter((name) => name.startsWith('.s3x-'))).toEqual([])
  })

  it('entries in memory work too; a compacted entry (archive_key + member_path) is written under its member path', async () => {
    const paths = await store.downloadManifest(
      [
        { kind: 'file', key: `${tarKey()}#dir/sub/z.txt`, archive_key: tarKey(), member_path: 'dir/sub/z.txt' },
        { kind: 'file', key: looseKeys.one() },
      ],
      target,
    )
    expect(Object.fromEntries(paths)).toEqual({
      [`${tarKey()}#dir/sub/z.txt`]: join(target, 'dir', 'sub', 'z.txt'),
      [looseKeys.one()]: join(target, 'one.txt'),
    })
    expect(await readFile(join(target, 'dir', 'sub', 'z.txt'), 'utf8')).toBe('member z')
  })

  it('fetches `concurrency` objects at once', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => s3.key(`dl/many/${i}.txt`))
    await Promise.all(keys.map((key, i) => put(key, `object ${i}`)))
    const entries = keys.map((key): ManifestEntry => ({ kind: 'file', key }))

    for (const concurrency of [1, 3]) {
      // The first `concurrency` requests wait until that many are in flight: with fewer at once
      // they would wait for the guard (a moment; only a guard against a deadlock, not a measure).
      const client = newClient()
      let inFlight = 0
      let most = 0
      let arrived = 0
      let open = () => {}
      const gate = new Promise<void>((resolve) => {
        open = resolve
      })
      const guard = setTimeout(open, 2_000)
      client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName !== 'GetObjectCommand') return next(args)
          inFlight++
          most = Math.max(most, inFlight)
          if (++arrived === concurrency) open()
          if (arrived <= concurrency) await gate
          try {
            return await next(args)
          } finally {
            inFlight--
          }
        },
        { step: 'initialize', name: 'test-gate-gets' },
      )
      const dir = join(parent, `c${concurrency}`)
      try {
        const paths = await new S3ExchangeStore({ client, bucket: s3.bucket }).downloadManifest(entries, dir, { concurrency })
        expect(paths.size).toBe(12)
      } finally {
        clearTimeout(guard)
      }
      expect(most).toBe(concurrency)
      expect(await listing(dir)).toEqual(keys.map((_, i) => `${i}.txt`).sort())
    }
  })

  it('cut off midway: the objects before are complete, the one cut is not there, no temporary file', async () => {
    const root = s3.key('dl/manifests/cut.jsonl')
    await putManifest(root, [
      { kind: 'file', key: looseKeys.one() },
      { kind: 'file', key: looseKeys.two() },
    ])
    const tapped = await tappedStore([{ key: looseKeys.two(), after: 50_000 }])
    const error = await rejection(tapped.downloadManifest(root, target, { concurrency: 1 }))
    expect(error).toBeInstanceOf(S3ExchangeError)
    expect(await listing(target)).toEqual(['one.txt'])
  })
})

describe('hostile archives', () => {
  const hostileKey = () => s3.key('dl/hostile/evil.tar')
  const linksKey = () => s3.key('dl/hostile/links.tar.gz')

  beforeAll(async () => {
    await putArchive(hostileKey(), [
      { name: 'ok.txt', data: 'fine' },
      { name: 'link', type: 'symlink', linkname: '../../elsewhere/planted.txt' },
      { name: 'abs-link', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'hard', type: 'link', linkname: '../escape.txt' },
      { name: '../escape.txt', data: 'escaped' },
      { name: '/abs.txt', data: 'absolute' },
      { name: 'a/../../up.txt', data: 'up' },
    ])
    await putArchive(
      linksKey(),
      [
        { name: 'dir', type: 'directory' },
        { name: 'dir/real.txt', data: 'real' },
        { name: 'dir/sym', type: 'symlink', linkname: '../../elsewhere' },
        { name: 'dir/hard', type: 'link', linkname: 'dir/real.txt' },
        { name: 'top.txt', data: 'top' },
      ],
      { gzip: true },
    )
  })

  it('downloadManifest refuses the first unsafe member with UnsafePathError naming it, before anything is written', async () => {
    const before = await listing(parent)
    const error = await rejection(store.downloadManifest([{ kind: 'shard', archive_key: hostileKey(), compression: null }], target))
    expect(error).toBeInstanceOf(UnsafePathError)
    expect((error as UnsafePathError).key).toBe(`${hostileKey()}#../escape.txt`)
    expect((error as UnsafePathError).path).toBe('../escape.txt')
    expect(await listing(parent)).toEqual(before)
  })

  it.each(['../escape.txt', '/abs.txt', 'a/../../up.txt'])(
    'downloadObjects of %j: UnsafePathError naming the member, nothing written',
    async (member) => {
      const before = await listing(parent)
      const error = await rejection(store.downloadObjects([`${hostileKey()}#${member}`], target))
      expect(error).toBeInstanceOf(UnsafePathError)
      expect((error as UnsafePathError).key).toBe(`${hostileKey()}#${member}`)
      expect((error as UnsafePathError).path).toBe(member)
      expect(await listing(parent)).toEqual(before)
    },
  )

  it('a compacted entry with an unsafe member_path is refused the same way', async () => {
    const before = await listing(parent)
    const entry: ManifestEntry = { kind: 'file', key: `${hostileKey()}#/abs.txt`, archive_key: hostileKey(), member_path: '/abs.txt' }
    const error = await rejection(store.downloadManifest([entry], target))
    expect(error).toBeInstanceOf(UnsafePathError)
    expect((error as UnsafePathError).path).toBe('/abs.txt')
    expect(await listing(parent)).toEqual(before)
  })

  it('links in an archive are never created nor followed; the regular members are written', async () => {
    const before = await listing(parent)
    const paths = await store.downloadManifest([{ kind: 'shard', archive_key: linksKey() }], target)
    expect(Object.fromEntries(paths)).toEqual({
      [`${linksKey()}#dir/real.txt`]: join(target, 'dir', 'real.txt'),
      [`${linksKey()}#top.txt`]: join(target, 'top.txt'),
    })
    expect(await listing(parent)).toEqual(
      [...before, 'target', join('target', 'dir'), join('target', 'dir', 'real.txt'), join('target', 'top.txt')].sort(),
    )
    for (const path of await listing(parent)) expect((await lstat(join(parent, path))).isSymbolicLink(), path).toBe(false)
  })

  it('asking for a link member by key: not a regular file, nothing written', async () => {
    const before = await listing(parent)
    expect(await rejection(store.downloadObjects([`${hostileKey()}#link`], target))).toBeInstanceOf(ShardReadError)
    expect(await rejection(store.downloadObjects([`${hostileKey()}#hard`], target))).toBeInstanceOf(ShardReadError)
    expect(await rejection(store.downloadObject(`${hostileKey()}#link`, join(target, 'link')))).toBeInstanceOf(ShardReadError)
    expect(await rejection(store.downloadObject(`${hostileKey()}#abs-link`, join(target, 'abs-link')))).toBeInstanceOf(ShardReadError)
    expect(await listing(parent)).toEqual(before)
  })
})

describe('links planted in the target folder', () => {
  const archiveKey = () => s3.key('dl/planted/p.tar')

  beforeAll(async () => {
    await putArchive(archiveKey(), [
      { name: 'sub/x.txt', data: 'x' },
      { name: 'sub/deeper/y.txt', data: 'y' },
      { name: 'victim.txt', data: 'downloaded' },
    ])
  })

  it('a folder link leading outside (target/sub -> elsewhere) is not written through: UnsafePathError', async () => {
    await mkdir(target)
    await symlink(elsewhere, join(target, 'sub'))
    const before = await listing(parent)
    for (const member of ['sub/x.txt', 'sub/deeper/y.txt']) {
      const error = await rejection(store.downloadObjects([`${archiveKey()}#${member}`], target))
      expect(error).toBeInstanceOf(UnsafePathError)
      expect((error as UnsafePathError).key).toBe(`${archiveKey()}#${member}`)
    }
    const whole = await rejection(store.downloadManifest([{ kind: 'shard', archive_key: archiveKey(), compression: null }], target))
    expect(whole).toBeInstanceOf(UnsafePathError)
    expect(await listing(elsewhere)).toEqual([])
    expect(await listing(parent)).toEqual(before)
  })

  it('a file link under the final name is replaced by the download; its target is untouched', async () => {
    await mkdir(target)
    await writeFile(join(elsewhere, 'victim.txt'), 'precious')
    await symlink(join(elsewhere, 'victim.txt'), join(target, 'victim.txt'))
    await store.downloadObjects([`${archiveKey()}#victim.txt`], target)
    expect((await lstat(join(target, 'victim.txt'))).isSymbolicLink()).toBe(false)
    expect(await readFile(join(target, 'victim.txt'), 'utf8')).toBe('downloaded')
    expect(await readFile(join(elsewhere, 'victim.txt'), 'utf8')).toBe('precious')
  })
})
