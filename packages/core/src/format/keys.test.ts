/** The key rules on strings, without S3: templates, ids, virtual keys, archive formats, fences, member paths, part and archive names. */
import { describe, expect, it } from 'vitest'
import { ConfigurationError, MissingPlaceholderError, S3ExchangeError } from './errors.js'
import {
  archiveCompressionFor,
  inferArchiveFormat,
  inferId,
  isArchiveKey,
  isManifestKey,
  isWithinFence,
  memberPathProblem,
  normalizeKey,
  partKeyFor,
  resolveTemplate,
  runId,
  shardArchiveName,
  splitVirtualKey,
  utcStamp,
  virtualKey,
} from './keys.js'

describe('normalizeKey', () => {
  it.each([
    ['a/b/c', 'a/b/c'],
    ['/a//b///c/', 'a/b/c'],
    ['//a', 'a'],
    ['a/', 'a'],
    ['', ''],
    ['/', ''],
    ['a#b//c', 'a#b/c'],
  ])('%j → %j', (key, want) => {
    expect(normalizeKey(key)).toBe(want)
  })
})

describe('resolveTemplate', () => {
  it('substitutes variables of every type and normalizes', () => {
    expect(resolveTemplate('{service}/jobs/{job_id}/', { service: 'asr', job_id: 7 })).toBe('asr/jobs/7')
    expect(resolveTemplate('/{a}//{b}/{c}', { a: true, b: 10n, c: 'x' })).toBe('true/10/x')
  })

  it('substitutes a variable used twice', () => {
    expect(resolveTemplate('{x}/{x}', { x: 'y' })).toBe('y/y')
  })

  it('treats {{ and }} as literal braces', () => {
    expect(resolveTemplate('{{literal}}/{name}', { name: 'n' })).toBe('{literal}/n')
    expect(resolveTemplate('a{{{x}}}b', { x: 1 })).toBe('a{1}b')
  })

  it('leaves a template without placeholders as it is (normalized)', () => {
    expect(resolveTemplate('plain/key.wav')).toBe('plain/key.wav')
  })

  it('throws MissingPlaceholderError naming the placeholder and the template', () => {
    let caught: unknown
    try {
      resolveTemplate('{service}/jobs/{job_id}', { service: 'asr' })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(MissingPlaceholderError)
    expect(caught).toBeInstanceOf(S3ExchangeError)
    const error = caught as MissingPlaceholderError
    expect(error.placeholder).toBe('job_id')
    expect(error.template).toBe('{service}/jobs/{job_id}')
    expect(error.message).toContain("'job_id'")
    expect(error.message).toContain('{service}/jobs/{job_id}')
  })

  it('does not read placeholders from the object prototype', () => {
    expect(() => resolveTemplate('{toString}', {})).toThrow(MissingPlaceholderError)
  })

  it('does not take an escaped {{name}} for a placeholder', () => {
    expect(resolveTemplate('{{name}}', {})).toBe('{name}')
  })
})

describe('inferId', () => {
  it.each([
    ['a/b/clip-001.wav', 'clip-001'],
    ['a/b.tar.gz', 'b.tar'],
    ['.hidden', ''],
    ['dir/.hidden', ''],
    ['noext', 'noext'],
    ['dir.with.dots/noext', 'noext'],
    ['dir/', ''],
  ])('%j → %j', (key, want) => {
    expect(inferId(key)).toBe(want)
  })
})

describe('virtual keys', () => {
  it('splits at the first #', () => {
    expect(splitVirtualKey('s/shard-0.tar#x/0001.wav')).toStrictEqual({ archiveKey: 's/shard-0.tar', memberPath: 'x/0001.wav' })
    expect(splitVirtualKey('a.tar#b#c')).toStrictEqual({ archiveKey: 'a.tar', memberPath: 'b#c' })
  })

  it("needs something before and after the '#': '#name', 'a.tar#' and '#' are ordinary keys", () => {
    for (const key of ['#name', '#present', 'a.tar#', '#', '##']) expect(splitVirtualKey(key), key).toBeUndefined()
    expect(splitVirtualKey('a#b')).toStrictEqual({ archiveKey: 'a', memberPath: 'b' })
    expect(splitVirtualKey('a##b')).toStrictEqual({ archiveKey: 'a', memberPath: '#b' })
  })

  it('gives undefined for a key without #', () => {
    expect(splitVirtualKey('a/b.wav')).toBeUndefined()
  })

  it('virtualKey joins with #', () => {
    expect(virtualKey('a.tar', 'b/c.wav')).toBe('a.tar#b/c.wav')
    expect(splitVirtualKey(virtualKey('a.tar', 'm#1'))).toStrictEqual({ archiveKey: 'a.tar', memberPath: 'm#1' })
  })
})

describe('archive keys', () => {
  it.each([
    ['s/0.tar.gz', 'gzip'],
    ['s/0.tgz', 'gzip'],
    ['s/0.tar.bz2', 'bzip2'],
    ['s/0.tar.xz', 'xz'],
    ['s/0.tar.zst', 'zstd'],
    ['s/0.tzst', 'zstd'],
    ['s/0.tar', null],
    ['s/0.zip', null],
    ['s/0', null],
  ])('inferArchiveFormat(%j) → compression %j', (key, compression) => {
    expect(inferArchiveFormat(key)).toStrictEqual({ format: 'tar', compression })
  })

  it.each([
    ['a.tar', true],
    ['a.tar.gz', true],
    ['a.tgz', true],
    ['a.tar.bz2', true],
    ['a.tar.xz', true],
    ['a.gz', false],
    ['a.tar.zst', true],
    ['a.tzst', true],
    ['a.tar/b.wav', false],
    ['atar', false],
  ])('isArchiveKey(%j) → %j', (key, want) => {
    expect(isArchiveKey(key)).toBe(want)
  })

  it('isManifestKey', () => {
    expect(isManifestKey('a/manifest.jsonl')).toBe(true)
    expect(isManifestKey('a/manifest.json')).toBe(false)
  })
})

describe('partKeyFor', () => {
  it('puts parts in manifests/ beside the root, named part-<YYYYMMDD-HHMMSS>-<8 hex>.jsonl', () => {
    const key = partKeyFor('dir/manifest.jsonl')
    expect(key).toMatch(/^dir\/manifests\/part-\d{8}-\d{6}-[0-9a-f]{8}\.jsonl$/)
    expect(partKeyFor('a/b/c/root.jsonl')).toMatch(/^a\/b\/c\/manifests\/part-\d{8}-\d{6}-[0-9a-f]{8}\.jsonl$/)
  })

  it('a root without a slash gets manifests/part-…', () => {
    expect(partKeyFor('manifest.jsonl')).toMatch(/^manifests\/part-\d{8}-\d{6}-[0-9a-f]{8}\.jsonl$/)
  })

  it('uses the UTC time given', () => {
    expect(partKeyFor('ds/m.jsonl', new Date('2026-11-24T23:40:44.999Z'))).toMatch(
      /^ds\/manifests\/part-20261124-234044-[0-9a-f]{8}\.jsonl$/,
    )
  })

  it('gives a new key each time', () => {
    const date = new Date()
    const keys = new Set(Array.from({ length: 100 }, () => partKeyFor('ds/m.jsonl', date)))
    expect(keys.size).toBe(100)
  })
})

describe('isWithinFence', () => {
  it.each([
    ['a/b', 'a', true],
    ['a/b/c', 'a/b', true],
    ['a', 'a', true],
    ['a/b', 'a/', true],
    ['a/b', 'a//', true],
    ['ab/c', 'a', false],
    ['a-other/x', 'a', false],
    ['b/a', 'a', false],
    ['a', 'a/b', false],
    ['', 'a', false],
    ['anything/at/all', '', true],
    ['x', '/', true],
  ])('%j inside %j: %s', (key, fence, inside) => {
    expect(isWithinFence(key, fence)).toBe(inside)
  })
})

describe('archiveCompressionFor: the key decides, a contradicting option is refused', () => {
  it.each([
    ['s/0.tar', undefined, null],
    ['s/0.tar', null, null],
    ['s/0.tar.gz', undefined, 'gzip'],
    ['s/0.tgz', 'gzip', 'gzip'],
    ['s/0.tar.zst', undefined, 'zstd'],
    ['s/0.tzst', 'zstd', 'zstd'],
    // No known extension: the option decides; gzip by default, as every shard the library names.
    ['s/0', undefined, 'gzip'],
    ['s/0.bin', null, null],
    ['s/0.data', 'zstd', 'zstd'],
  ] as const)('%j with compression %j → %j', (key, option, want) => {
    expect(archiveCompressionFor(key, option)).toBe(want)
  })

  it.each([
    ['s/0.tar', 'gzip', /compression "gzip" contradicts the archive key s\/0\.tar, whose extension means a plain tar \(null\)/],
    ['s/0.tar.gz', null, /compression null contradicts the archive key s\/0\.tar\.gz, whose extension means "gzip"/],
    ['s/0.tgz', 'zstd', /contradicts/],
    ['s/0.tar.zst', 'gzip', /whose extension means "zstd"/],
    ['s/0.tar.bz2', undefined, /cannot write bzip2 archives \(s\/0\.tar\.bz2\)/],
    ['s/0.tar.xz', null, /cannot write xz archives/],
    ['s/0', 'lz4', /compression must be 'gzip', 'zstd' or null/],
  ] as const)('%j with compression %j is a ConfigurationError naming the key and the option', (key, option, message) => {
    let error: unknown
    try {
      archiveCompressionFor(key, option as never)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigurationError)
    expect((error as ConfigurationError).key).toBe(key)
    expect((error as ConfigurationError).option).toBe('compression')
    expect((error as Error).message).toMatch(message)
  })
})

describe('runId, shardArchiveName, utcStamp', () => {
  it('runId is the UTC time and 6 hex digits', () => {
    expect(runId(new Date('2026-11-24T10:15:00.123Z'))).toMatch(/^20261124-101500-[0-9a-f]{6}$/)
  })

  it('utcStamp is YYYYMMDD-HHMMSS in UTC; shardArchiveName pads the index to 5 digits and names the compression', () => {
    expect(utcStamp(new Date('2026-01-02T03:04:05.678Z'))).toBe('20260102-030405')
    expect(shardArchiveName('20260102-030405-abcdef', 7, 'gzip')).toBe('shard-20260102-030405-abcdef-00007.tar.gz')
    expect(shardArchiveName('r', 0, null)).toBe('shard-r-00000.tar')
    expect(shardArchiveName('r', 3, 'zstd')).toBe('shard-r-00003.tar.zst')
    // Past 5 digits the index grows rather than wraps.
    expect(shardArchiveName('r', 123456, null)).toBe('shard-r-123456.tar')
  })
})

describe('memberPathProblem', () => {
  it.each([
    ['', /empty/],
    ['a\u0000b', /NUL/],
    ['/abs/path', /absolute/],
    ['C:\\win\\path', /absolute/],
    ['a/../b', /'\.\.'/],
    ['..\\up', /'\.\.'/],
    ['dir/', /directory/],
  ])('%j: %s', (path, reason) => {
    expect(memberPathProblem(path)).toMatch(reason)
  })

  it('relative paths, nested or not, with dots that are not a whole segment, are fine', () => {
    for (const path of ['a.wav', 'dir/sub/0001.wav', '..hidden', 'a..b/c', 'ü/ß.txt']) expect(memberPathProblem(path)).toBeUndefined()
  })
})
