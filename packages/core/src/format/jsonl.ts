/**
 * A streaming JSONL line splitter: bytes in, batches of lines out, never more than one line plus
 * one chunk in memory. Lines are split at `\n` (a trailing `\r` is left for `JSON.parse`, which
 * treats it as whitespace), a leading UTF-8 BOM is dropped, invalid UTF-8 and lines longer than
 * `maxLineBytes` throw `InvalidManifestError` with the line number.
 *
 * @example
 * ```ts
 * import { splitLines } from '@s3exchange/core'
 *
 * let lineNumber = 0
 * for await (const lines of splitLines(fs.createReadStream('m.jsonl'), { key: 'm.jsonl' })) {
 *   for (const line of lines) console.log(++lineNumber, line)
 * }
 * ```
 */
import { isAscii } from 'node:buffer'
import { InvalidManifestError } from './errors.js'

/** Default longest line, in bytes: 16 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024

/** Options for {@link splitLines}. */
export interface SplitLinesOptions {
  /** Name of what is being read (a manifest key), for error messages. */
  key?: string
  /**
   * Longest manifest line accepted (top-level or internal), in bytes, without its newline. Default
   * 16 MiB; past it, `InvalidManifestError` naming the key and line. One of the `ReadLimits`.
   */
  maxLineBytes?: number
}

const NEWLINE = 0x0a
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Splits a byte stream into lines. Each yielded batch holds every line completed by one chunk,
 * in order, blank lines included (so that callers can count line numbers); the last line needs
 * no final newline.
 */
export async function* splitLines(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: SplitLinesOptions = {},
): AsyncGenerator<string[], void, undefined> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES
  let carry: Buffer[] = []
  let carryBytes = 0
  let linesDone = 0
  for await (const chunk of source) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const lastNewline = buf.lastIndexOf(NEWLINE)
    if (lastNewline === -1) {
      carry.push(buf)
      carryBytes += buf.byteLength
      if (carryBytes > maxLineBytes) throw tooLong(options.key, linesDone + 1, maxLineBytes)
      continue
    }
    const head = carry.length === 0 ? buf.subarray(0, lastNewline) : Buffer.concat([...carry, buf.subarray(0, lastNewline)])
    const lines = decodeLines(head, linesDone, options.key)
    checkLengths(lines, linesDone, maxLineBytes, options.key)
    linesDone += lines.length
    yield lines
    carry = lastNewline + 1 < buf.byteLength ? [buf.subarray(lastNewline + 1)] : []
    carryBytes = buf.byteLength - lastNewline - 1
  }
  if (carryBytes > 0) {
    const lines = decodeLines(Buffer.concat(carry), linesDone, options.key)
    checkLengths(lines, linesDone, maxLineBytes, options.key)
    yield lines
  }
}

function decodeLines(bytes: Buffer, linesBefore: number, key: string | undefined): string[] {
  let text: string
  try {
    // Manifests are almost always ASCII (Python escapes everything else): decode those fastest.
    text = isAscii(bytes) ? bytes.toString('ascii') : utf8.decode(bytes)
  } catch (error) {
    throw new InvalidManifestError('invalid UTF-8', {
      key,
      lineNumber: linesBefore + firstBadLine(bytes),
      cause: error,
    })
  }
  if (linesBefore === 0 && text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  return text.split('\n')
}

function firstBadLine(bytes: Buffer): number {
  let start = 0
  for (let line = 1; ; line++) {
    const end = bytes.indexOf(NEWLINE, start)
    try {
      utf8.decode(bytes.subarray(start, end === -1 ? bytes.byteLength : end))
    } catch {
      return line
    }
    if (end === -1) return line
    start = end + 1
  }
}

function checkLengths(lines: string[], linesBefore: number, maxLineBytes: number, key: string | undefined): void {
  // A line's UTF-16 length is at most its UTF-8 length, which is at most three times as long.
  const suspicious = maxLineBytes / 3
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (line.length > suspicious && Buffer.byteLength(line) > maxLineBytes) {
      throw tooLong(key, linesBefore + i + 1, maxLineBytes)
    }
  }
}

function tooLong(key: string | undefined, lineNumber: number, maxLineBytes: number): InvalidManifestError {
  return new InvalidManifestError(`line longer than ${maxLineBytes} bytes`, { key, lineNumber })
}

/** True for a line that holds only whitespace (skipped by readers, as in Python). */
export function isBlankLine(line: string): boolean {
  return line.length === 0 || (line.charCodeAt(0) <= 32 && line.trim().length === 0)
}
