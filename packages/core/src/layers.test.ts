/**
 * The layers of core point one way: operators → archive and manifest → s3 → format. A module may
 * import from its own folder and from the layers below it, never from a layer above or beside it
 * (archive and manifest do not know each other). Import cycles are checked by `npx pnpm@10 cycles`
 * (dpdm); this test checks the direction, on the source files themselves.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const SRC = dirname(fileURLToPath(import.meta.url))
const RANK: Record<string, number> = { format: 0, s3: 1, archive: 2, manifest: 2, operators: 3 }

/** Every module of core (tests left out), as paths relative to src. */
function modules(): string[] {
  return readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((path) => path.endsWith('.ts') && !path.endsWith('.test.ts'))
    .map((path) => path.split('\\').join('/'))
}

/** The relative modules a source file imports or re-exports, relative to src. */
function importsOf(path: string): string[] {
  const text = readFileSync(join(SRC, path), 'utf8')
  return [...text.matchAll(/from '(\.{1,2}\/[^']+)'/g)].map((match) =>
    relative(SRC, normalize(join(SRC, dirname(path), match[1] as string)))
      .split('\\')
      .join('/'),
  )
}

/** The imports that break the direction: `importer → imported`. */
function violations(files: string[], read: (path: string) => string[] = importsOf): string[] {
  const found: string[] = []
  for (const file of files) {
    const layer = file.split('/')[0] as string
    if (!(layer in RANK)) continue // index.ts and internals.ts sit above every layer
    for (const target of read(file)) {
      const targetLayer = target.split('/')[0] as string
      if (targetLayer === layer) continue
      const rank = RANK[layer] as number
      const targetRank = RANK[targetLayer]
      if (targetRank === undefined || targetRank >= rank) found.push(`${file} → ${target}`)
    }
  }
  return found
}

describe('the layers of core', () => {
  it('every module is in one of the five folders, or is an entry point', () => {
    const stray = modules().filter((path) => !((path.split('/')[0] as string) in RANK) && !['index.ts', 'internals.ts'].includes(path))
    expect(stray).toEqual([])
  })

  it('imports point one way: operators → archive, manifest → s3 → format', () => {
    expect(violations(modules())).toEqual([])
  })

  it('the check sees imports that point up or sideways (so it can fail)', () => {
    const fake: Record<string, string[]> = {
      'format/keys.ts': ['s3/context.js'],
      'archive/x.ts': ['manifest/commit.js', 'format/entries.js', 'archive/tar-reader.js'],
      'operators/y.ts': ['archive/x.js', 'manifest/commit.js'],
      's3/z.ts': ['operators/take.js'],
    }
    expect(violations(Object.keys(fake), (path) => fake[path] ?? [])).toEqual([
      'format/keys.ts → s3/context.js',
      'archive/x.ts → manifest/commit.js',
      's3/z.ts → operators/take.js',
    ])
  })
})
