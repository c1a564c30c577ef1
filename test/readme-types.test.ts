/**
 * Every ```ts block of README.md and of the package READMEs type-checks, as a user's code would:
 * with the TypeScript compiler, under `strict`, `exactOptionalPropertyTypes` and
 * `noUncheckedIndexedAccess`, against the built packages (dist/: `npx pnpm@10 test` builds them
 * first), each block its own ES module. So the README cannot drift from the API.
 *
 * The convention for blocks that are fragments (see docs/TESTING.md):
 * - `<!-- ts-prelude ... -->` right before a block: the TypeScript inside the comment is put
 *   before that block, to declare what the prose around it assumes (`declare const store: …`).
 * - `<!-- ts-skip -->` right before a block: that block is not checked (say why beside it).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')
const READMES = ['README.md', 'packages/core/README.md', 'packages/store/README.md', 'packages/testing/README.md', 'packages/cli/README.md']

/** The options a careful user turns on: the README must compile under the strictest of them. */
const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2023,
  lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts', 'lib.esnext.array.d.ts'],
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  types: ['node'],
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  skipLibCheck: true,
  noEmit: true,
}

/** One ```ts block: where it is, and the module checked for it (prelude, then the block). */
interface ReadmeBlock {
  readme: string
  /** 1-based line of the block's first code line in the README. */
  line: number
  prelude: string
  code: string
}

/** The ```ts blocks of a Markdown text, each with the prelude declared before it, skipped ones left out. */
function extractBlocks(readme: string, text: string): ReadmeBlock[] {
  const lines = text.split('\n')
  const blocks: ReadmeBlock[] = []
  let prelude = ''
  let skipNext = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ''
    if (line.startsWith('<!-- ts-prelude')) {
      const body: string[] = [line.slice('<!-- ts-prelude'.length)]
      while (!(body.at(-1) ?? '').includes('-->') && i + 1 < lines.length) body.push(lines[++i] ?? '')
      prelude = `${body.join('\n').replace(/-->\s*$/, '')}\n`
      continue
    }
    if (line.trim() === '<!-- ts-skip -->') {
      skipNext = true
      continue
    }
    if (line.trim() === '```ts') {
      const start = i + 1
      const code: string[] = []
      while (i + 1 < lines.length && (lines[i + 1] ?? '').trim() !== '```') code.push(lines[++i] ?? '')
      i++
      if (!skipNext) blocks.push({ readme, line: start + 1, prelude, code: code.join('\n') })
      skipNext = false
      prelude = ''
      continue
    }
    if (line.trim() !== '') {
      skipNext = false
      prelude = ''
    }
  }
  return blocks
}

/** Type-checks the blocks in one program; returns one message per error, naming README and line. */
function typeCheck(blocks: ReadmeBlock[]): string[] {
  const files = new Map<string, { block: ReadmeBlock; text: string; preludeLines: number }>()
  blocks.forEach((block, n) => {
    // .mts: an ES module whatever the package.json says, so top-level await and `await using` work.
    const path = join(root, 'test', `readme-block-${n}.mts`)
    const text = `${block.prelude}${block.code}\nexport {}\n`
    files.set(path, { block, text, preludeLines: block.prelude.split('\n').length - 1 })
  })
  const host = ts.createCompilerHost(COMPILER_OPTIONS)
  const { getSourceFile, fileExists, readFile } = host
  host.fileExists = (name) => files.has(name) || fileExists.call(host, name)
  host.readFile = (name) => files.get(name)?.text ?? readFile.call(host, name)
  host.getSourceFile = (name, language, ...rest) => {
    const file = files.get(name)
    return file ? ts.createSourceFile(name, file.text, language) : getSourceFile.call(host, name, language, ...rest)
  }
  const program = ts.createProgram([...files.keys()], COMPILER_OPTIONS, host)
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')
    const source = diagnostic.file
    const file = source && files.get(source.fileName)
    if (!source || !file || diagnostic.start === undefined) return `TS${diagnostic.code}: ${message}`
    const { line } = source.getLineAndCharacterOfPosition(diagnostic.start)
    const where =
      line < file.preludeLines ? `prelude of the block at line ${file.block.line}` : `line ${file.block.line + line - file.preludeLines}`
    return `${file.block.readme}, ${where}: TS${diagnostic.code}: ${message}`
  })
}

const allBlocks = READMES.flatMap((readme) => extractBlocks(readme, readFileSync(join(root, readme), 'utf8')))

describe('README code blocks', () => {
  it('finds the blocks of every README', () => {
    expect(allBlocks.filter((b) => b.readme === 'README.md').length).toBeGreaterThanOrEqual(5)
    for (const readme of READMES.filter((r) => r !== 'packages/cli/README.md')) {
      expect(
        allBlocks.some((b) => b.readme === readme),
        readme,
      ).toBe(true)
    }
  })

  it('every ```ts block compiles under strict, exactOptionalPropertyTypes and noUncheckedIndexedAccess', () => {
    expect(typeCheck(allBlocks)).toStrictEqual([])
  })

  it('types what iteration yields: string keys with shards expanded, shards only when asked for', () => {
    // Each @ts-expect-error must meet an error, or TS2578 ("unused") is reported: both ways are checked.
    const code = [
      "import type { FileEntry, ManifestEntry, ShardEntry } from 's3exchange'",
      "declare const store: import('s3exchange').S3ExchangeStore",
      "declare const m: import('s3exchange').Manifest",
      "for await (const { entry } of store.iterObjects('m.jsonl', { concurrency: 4 })) { const k: string = entry.key; const f: FileEntry = entry; void k; void f }",
      "for await (const { entry } of store.getObjects('m.jsonl')) { const k: string = entry.key; void k }",
      "for await (const { entry } of store.iterObjects('m.jsonl', { expandShards: true })) { const k: string = entry.key; void k }",
      "for await (const { entry } of store.iterObjects('m.jsonl', { expandShards: false })) {",
      '  // @ts-expect-error a shard has no key',
      '  const k: string = entry.key; void k',
      '  const u: FileEntry | ShardEntry = entry; void u',
      "  if (entry.kind === 'shard') { const a: string = entry.archive_key; void a } else { const k2: string = entry.key; void k2 }",
      '}',
      'declare const expand: boolean',
      "for await (const { entry } of store.iterObjects('m.jsonl', { expandShards: expand })) {",
      '  // @ts-expect-error maybe a shard',
      '  const f: FileEntry = entry; void f',
      '}',
      "for await (const entry of store.listManifestFiles('m.jsonl')) { const k: string = entry.key; void k }",
      "for await (const entry of store.listManifestFiles('m.jsonl', { includeShards: false })) {",
      '  // @ts-expect-error maybe a shard',
      '  const f: FileEntry = entry; void f',
      '}',
      "for await (const entry of store.listByManifestPrefix('m.jsonl', 'a/')) { const k: string = entry.key; void k }",
      "for await (const entry of store.iterManifestEntries('m.jsonl')) {",
      '  const u: FileEntry | ShardEntry = entry; void u',
      '  const k: string | undefined = entry.key; void k',
      '}',
      "for await (const entry of store.iterManifestEntries('m.jsonl', { resolveRefs: false })) {",
      '  const any: ManifestEntry = entry; void any',
      '  // @ts-expect-error maybe a manifest_ref',
      '  const u: FileEntry | ShardEntry = entry; void u',
      '}',
      'for await (const { entry } of m.iterObjects()) { const k: string = entry.key; void k }',
      'for await (const entry of m.listFiles()) { const k: string = entry.key; void k }',
      "for await (const { entry } of store.iterObjectsFromKeys(['a'])) { const k: string = entry.key; void k }",
    ].join('\n')
    expect(typeCheck([{ readme: 'types', line: 1, prelude: '', code }])).toStrictEqual([])
  })

  it('reports a block that does not compile, naming the README and line', () => {
    const blocks = extractBlocks('X.md', '# x\n\n```ts\nconst n: number = "one"\n```\n')
    expect(blocks).toHaveLength(1)
    expect(typeCheck(blocks)).toStrictEqual([expect.stringMatching(/^X\.md, line 4: TS2322: /)])
  })

  it('puts a prelude before the next block only, and leaves skipped blocks out', () => {
    const text =
      '<!-- ts-skip -->\n```ts\nnot code\n```\n<!-- ts-prelude\ndeclare const n: number\n-->\n\n```ts\nconst m: number = n\n```\n```ts\nconst k: number = n\n```\n'
    const blocks = extractBlocks('Y.md', text)
    expect(blocks).toMatchObject([
      { line: 10, code: 'const m: number = n' },
      { line: 13, code: 'const k: number = n', prelude: '' },
    ])
    expect(typeCheck(blocks)).toStrictEqual([expect.stringMatching(/^Y\.md, line 13: TS2304: Cannot find name 'n'/)])
  })
})
