/**
 * Writing downloads safely: safeLocalPath refuses every path that would leave the target folder,
 * and writeFileAtomically writes through a temporary file renamed when complete, leaves nothing
 * behind on failure, keeps an existing file until the new one is whole, and never writes through
 * a link that leads outside the folder.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import { rejection } from '@s3exchange/testing'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { UnsafePathError } from '../format/errors.js'
import { DownloadPlan, safeLocalPath, writeFileAtomically } from './download.js'

const temporary: string[] = []

afterAll(async () => {
  for (const dir of temporary) await rm(dir, { recursive: true, force: true })
})

/** A parent temporary folder holding `target/` (where downloads go) and `elsewhere/` (outside it). */
let parent: string
let root: string
let elsewhere: string

beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), 's3x-core-download-'))
  temporary.push(parent)
  root = join(parent, 'target')
  elsewhere = join(parent, 'elsewhere')
  await mkdir(root)
  await mkdir(elsewhere)
})

/** Every path under `dir`, relative, sorted (links listed, not followed). */
async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort()
}

async function* chunks(...parts: (string | Error)[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) {
    if (part instanceof Error) throw part
    yield Buffer.from(part)
  }
}

describe('safeLocalPath', () => {
  it.each([
    ['a.txt', ['a.txt']],
    ['dir/sub/a.txt', ['dir', 'sub', 'a.txt']],
    ['./a.txt', ['a.txt']],
    ['a//b/./c.txt', ['a', 'b', 'c.txt']],
    ['a\\b.txt', ['a', 'b.txt']],
    ['..a/b..', ['..a', 'b..']],
    ['ünï/çödé.wav', ['ünï', 'çödé.wav']],
  ])('%j resolves inside the folder', (path, segments) => {
    expect(safeLocalPath('/data/out', path, 'k')).toBe(resolve('/data/out', ...segments))
  })

  it('resolves a relative root against the working directory', () => {
    expect(safeLocalPath('out', 'a.txt', 'k')).toBe(resolve('out', 'a.txt'))
  })

  it.each([
    ['', 'empty'],
    ['/abs.txt', 'absolute'],
    ['//server/share.txt', 'absolute'],
    ['\\abs.txt', 'absolute'],
    ['C:\\win.txt', 'absolute'],
    ['c:rel.txt', 'absolute'],
    ['..', "'..'"],
    ['../escape.txt', "'..'"],
    ['a/../../escape.txt', "'..'"],
    ['a/../b.txt', "'..'"],
    ['a\\..\\..\\b.txt', "'..'"],
    ['a/..', "'..'"],
    ['.', 'names no file'],
    ['./', 'names no file'],
    ['a\u0000b', 'NUL'],
  ])('%j is refused (%s) with UnsafePathError naming the key and the path', (path, why) => {
    const error = (() => {
      try {
        safeLocalPath('/data/out', path, 'ds/shard.tar#member')
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(error).toBeInstanceOf(UnsafePathError)
    expect((error as UnsafePathError).key).toBe('ds/shard.tar#member')
    expect((error as UnsafePathError).path).toBe(path)
    expect((error as Error).message).toContain(why)
  })
})

describe('writeFileAtomically', () => {
  it('writes the data, creating the parent folders, and leaves only the final file', async () => {
    const target = join(root, 'a', 'b', 'c.bin')
    await writeFileAtomically(chunks('hello ', 'world'), target, { root, key: 'k' })
    expect(await readFile(target, 'utf8')).toBe('hello world')
    expect(await listing(root)).toEqual(['a', join('a', 'b'), join('a', 'b', 'c.bin')])
  })

  it("a folder whose name starts with '..' is an ordinary folder", async () => {
    const target = safeLocalPath(root, '..a/b../c.txt', 'k')
    await writeFileAtomically(chunks('dots'), target, { root, key: 'k' })
    expect(await readFile(join(root, '..a', 'b..', 'c.txt'), 'utf8')).toBe('dots')
    expect(await listing(parent)).toEqual([
      'elsewhere',
      'target',
      join('target', '..a'),
      join('target', '..a', 'b..'),
      join('target', '..a', 'b..', 'c.txt'),
    ])
  })

  it('a target outside the root is refused before anything is created', async () => {
    const error = await rejection(writeFileAtomically(chunks('x'), join(elsewhere, 'new', 'x.txt'), { root, key: 'k' }))
    expect(error).toBeInstanceOf(UnsafePathError)
    expect(await listing(elsewhere)).toEqual([])
  })

  it('takes a Node Readable', async () => {
    const target = join(root, 'r.bin')
    const data = Buffer.alloc(300_000, 7)
    await writeFileAtomically(Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), target, { root, key: 'k' })
    expect(Buffer.compare(await readFile(target), data)).toBe(0)
  })

  it('a source that fails midway: rejects with its error, no file under the final name, no temporary file', async () => {
    const target = join(root, 'sub', 'cut.bin')
    const failure = new Error('connection reset')
    const error = await rejection(
      writeFileAtomically(chunks('x'.repeat(100_000), 'y'.repeat(100_000), failure), target, { root, key: 'k' }),
    )
    expect(error).toBe(failure)
    expect(await listing(root)).toEqual(['sub'])
  })

  it('a source that fails before its first byte leaves nothing either', async () => {
    const target = join(root, 'early.bin')
    const failure = new Error('refused')
    expect(await rejection(writeFileAtomically(chunks(failure), target, { root, key: 'k' }))).toBe(failure)
    expect(await listing(root)).toEqual([])
  })

  it('an existing file is kept when the write fails, and replaced when it succeeds', async () => {
    const target = join(root, 'kept.txt')
    await writeFile(target, 'old contents')
    await rejection(writeFileAtomically(chunks('new ', new Error('cut')), target, { root, key: 'k' }))
    expect(await readFile(target, 'utf8')).toBe('old contents')
    expect(await listing(root)).toEqual(['kept.txt'])

    await writeFileAtomically(chunks('new ', 'contents'), target, { root, key: 'k' })
    expect(await readFile(target, 'utf8')).toBe('new contents')
    expect(await listing(root)).toEqual(['kept.txt'])
  })

  it('a folder that is a link leading outside the root is refused; nothing is written there', async () => {
    await symlink(elsewhere, join(root, 'sub'))
    const error = await rejection(writeFileAtomically(chunks('data'), join(root, 'sub', 'x.txt'), { root, key: 'ds/x' }))
    expect(error).toBeInstanceOf(UnsafePathError)
    expect((error as UnsafePathError).key).toBe('ds/x')
    expect(await listing(elsewhere)).toEqual([])
  })

  it('no folder is created through a link leading outside the root', async () => {
    await symlink(elsewhere, join(root, 'sub'))
    const before = await listing(parent)
    const error = await rejection(writeFileAtomically(chunks('data'), join(root, 'sub', 'deeper', 'x.txt'), { root, key: 'ds/x' }))
    expect(error).toBeInstanceOf(UnsafePathError)
    expect(await listing(elsewhere)).toEqual([])
    expect(await listing(parent)).toEqual(before)
  })

  it('a link under the final name is replaced by the file, never written through', async () => {
    const victim = join(elsewhere, 'victim.txt')
    await writeFile(victim, 'precious')
    const target = join(root, 'x.txt')
    await symlink(victim, target)
    await writeFileAtomically(chunks('downloaded'), target, { root, key: 'k' })
    expect((await lstat(target)).isFile()).toBe(true)
    expect(await readFile(target, 'utf8')).toBe('downloaded')
    expect(await readFile(victim, 'utf8')).toBe('precious')
  })

  it('a root that is itself a link is followed (the caller chose it), and links inside it that stay inside are fine', async () => {
    const linkedRoot = join(parent, 'linked-root')
    await symlink(root, linkedRoot)
    await mkdir(join(root, 'real'))
    await symlink(join(root, 'real'), join(root, 'alias'))
    await writeFileAtomically(chunks('one'), join(linkedRoot, 'n', 'one.txt'), { root: linkedRoot, key: 'k1' })
    await writeFileAtomically(chunks('two'), join(linkedRoot, 'alias', 'two.txt'), { root: linkedRoot, key: 'k2' })
    expect(await readFile(join(root, 'n', 'one.txt'), 'utf8')).toBe('one')
    expect(await readFile(join(root, 'real', 'two.txt'), 'utf8')).toBe('two')
    expect(await readlink(join(root, 'alias'))).toBe(join(root, 'real'))
  })
})

describe('DownloadPlan (issue 12, case 9)', () => {
  const refused = (run: () => unknown): UnsafePathError => {
    try {
      run()
    } catch (error) {
      expect(error).toBeInstanceOf(UnsafePathError)
      return error as UnsafePathError
    }
    throw new Error('expected UnsafePathError')
  }

  it('a file and a folder of the same name clash, whichever comes first', () => {
    const plan = new DownloadPlan('/root')
    expect(plan.add('s#a', 'a')).toBe(resolve('/root', 'a'))
    expect(refused(() => plan.add('s#a/b', 'a/b'))).toMatchObject({ key: 's#a/b', path: 'a/b' })
    const other = new DownloadPlan('/root')
    other.add('s#a/b/c', 'a/b/c')
    expect(refused(() => other.add('s#a', 'a')).message).toMatch(/needs a folder/)
    expect(refused(() => other.add('s#a/b', 'a/b')).message).toMatch(/needs a folder/)
    expect(other.add('s#a/d', 'a/d')).toBe(resolve('/root', 'a/d'))
  })

  it('two keys for one file clash; the same key twice does not; separators and dots are normalized', () => {
    const plan = new DownloadPlan('/root')
    plan.add('k1', 'x/y.txt')
    expect(refused(() => plan.add('k2', 'x//./y.txt')).message).toMatch(/k1 is written to the same file/)
    expect(plan.add('k1', 'x/y.txt')).toBe(resolve('/root', 'x/y.txt'))
  })

  it('names of 255 bytes are fine, 256 are refused (bytes, not characters)', () => {
    const plan = new DownloadPlan('/root')
    expect(plan.add('a', 'é'.repeat(127))).toBeDefined() // 254 bytes
    expect(refused(() => plan.add('b', `dir/${'é'.repeat(128)}`)).message).toMatch(/longer than 255 bytes/)
    expect(refused(() => safeLocalPath('/root', 'n'.repeat(256), 'c')).message).toMatch(/longer than 255 bytes/)
  })

  it('what safeLocalPath refuses, the plan refuses too', () => {
    const plan = new DownloadPlan('/root')
    for (const path of ['', '/abs', '../up', 'a/../../up', 'C:/x']) expect(refused(() => plan.add('k', path)).path).toBe(path)
  })
})
