/** The command-line parsing of `s3x`, in process: finding the command word, strict flags, sizes. */
import { describe, expect, it } from 'vitest'
import { parseFlags, parsePositiveInteger, parseSize, parseSizeFlag, splitCommand, UsageError } from './args.js'

const COMMANDS = ['ls', 'manifest ls', 'rm']

describe('splitCommand', () => {
  it('finds the command word among global flags, before or after it', () => {
    expect(splitCommand(['ls', 'p/'], COMMANDS)).toStrictEqual({ command: 'ls', unknown: undefined, rest: ['p/'] })
    expect(splitCommand(['--bucket', 'ls', 'ls', 'p/'], COMMANDS)).toStrictEqual({
      command: 'ls',
      unknown: undefined,
      rest: ['--bucket', 'ls', 'p/'],
    })
    expect(splitCommand(['--profile', 'ls', 'ls', 's3://b/p/'], COMMANDS)).toMatchObject({
      command: 'ls',
      rest: ['--profile', 'ls', 's3://b/p/'],
    })
    expect(splitCommand(['--endpoint', 'http://x', 'manifest', 'ls', 'm.jsonl', '--json'], COMMANDS)).toStrictEqual({
      command: 'manifest ls',
      unknown: undefined,
      rest: ['--endpoint', 'http://x', 'm.jsonl', '--json'],
    })
  })

  it('reports unknown commands and incomplete groups as given', () => {
    expect(splitCommand(['frob', 'x'], COMMANDS).unknown).toBe('frob')
    expect(splitCommand(['manifest'], COMMANDS).unknown).toBe('manifest')
    expect(splitCommand(['manifest', 'cat', 'x'], COMMANDS).unknown).toBe('manifest cat')
    expect(splitCommand(['--help'], COMMANDS)).toStrictEqual({ command: undefined, unknown: undefined, rest: ['--help'] })
    expect(splitCommand(['--', 'ls'], COMMANDS).command).toBeUndefined()
  })
})

describe('parseFlags', () => {
  it('parses global and command flags strictly', () => {
    const { values, positionals } = parseFlags(['a', '--json', '--bucket=b', 'c'], { json: { type: 'boolean' } })
    expect(values).toMatchObject({ json: true, bucket: 'b' })
    expect(positionals).toStrictEqual(['a', 'c'])
  })

  it('turns parse failures into usage errors', () => {
    expect(() => parseFlags(['--nope'], {}, 'ls')).toThrow(new UsageError("unknown option '--nope'", 'ls'))
    expect(() => parseFlags(['--bucket'], {}, 'ls')).toThrow(new UsageError("option '--bucket' needs a value", 'ls'))
    expect(() => parseFlags(['-y'], { yes: { type: 'string', short: 'y' } })).toThrow("option '--yes' needs a value")
    expect(() => parsePositiveInteger('0', '--max-entries')).toThrow(UsageError)
    expect(() => parsePositiveInteger('1.5', '--max-entries')).toThrow(UsageError)
    expect(parsePositiveInteger('300', '--max-entries')).toBe(300)
  })

  it("checks a flag against the library's rule for its option: the same ranges as the calls", () => {
    expect(() => parsePositiveInteger('5000', '--concurrency', 'get', 'concurrency')).toThrow(
      new UsageError("--concurrency needs an integer from 1 to 1024, not '5000'", 'get'),
    )
    expect(parsePositiveInteger('1024', '--concurrency', 'get', 'concurrency')).toBe(1024)
    expect(() => parseSizeFlag(`${2 ** 60}`, '--max-bytes', 'pack', 'maxBytes')).toThrow(UsageError)
    expect(parseSizeFlag('1G', '--max-bytes', 'pack', 'maxBytes')).toBe(1024 ** 3)
  })
})

describe('parseSize', () => {
  it('reads bytes with binary and decimal units', () => {
    expect(parseSize('512')).toBe(512)
    expect(parseSize('10k')).toBe(10 * 1024)
    expect(parseSize('10K')).toBe(10 * 1024)
    expect(parseSize('10kB')).toBe(10_000)
    expect(parseSize('64MiB')).toBe(64 * 1024 ** 2)
    expect(parseSize('64MB')).toBe(64_000_000)
    expect(parseSize('1G')).toBe(1024 ** 3)
    expect(parseSize('1.5g')).toBe(1.5 * 1024 ** 3)
    expect(parseSize('2TiB')).toBe(2 * 1024 ** 4)
    expect(parseSize('100 b')).toBe(100)
  })

  it('refuses anything else', () => {
    for (const text of ['', 'k', '-1', '10 kilobytes', '1e3', '0x10', '10 Q']) expect(parseSize(text), text).toBeUndefined()
  })
})
