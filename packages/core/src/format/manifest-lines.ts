/**
 * Manifest lines with their byte positions: `positionedLines` splits manifest bytes (read from
 * the start, or from a line's first byte on) into entries, each with its line's byte range and a
 * CRC-32 of the manifest's bytes up to it: what a cursor records (see `cursor.ts`). The same rules
 * as `splitLines` and `parseManifest`: `\n` line ends (a `\r` before it is JSON whitespace), a
 * leading BOM dropped, blank lines skipped (but counted), invalid UTF-8 and lines longer than
 * `maxLineBytes` are `InvalidManifestError`s naming the key and line. No I/O.
 *
 * @example
 * ```ts
 * import { positionedLines } from '@s3exchange/core/internals'
 *
 * for await (const line of positionedLines([Buffer.from('{"kind":"file","key":"a"}\n')], { key: 'm.jsonl' })) {
 *   console.log(line.entry.kind, line.start, line.end, line.crc) // file 0 26 …
 * }
 * ```
 */
import { isAscii } from 'node:buffer'
import { crc32 } from 'node:zlib'
import { type ManifestEntry, parseEntry } from './entries.js'
import { InvalidManifestError } from './errors.js'
import { DEFAULT_MAX_LINE_BYTES, isBlankLine, type SplitLinesOptions } from './jsonl.js'

/** One non-blank manifest line, parsed, with where it is. */
export interface PositionedLine {
  entry: ManifestEntry
  /** Byte offset of the line's first byte. */
  start: number
  /** Byte offset just after the line's newline (or its last byte, for a last line without one). */
  end: number
  /** CRC-32 of the manifest's bytes from 0 to `start`. */
  startCrc: number
  /** CRC-32 of the manifest's bytes from 0 to `end`. */
  crc: number
  /** 1-based line number, blank lines counted. */
  lineNumber: number
}

/** Where the bytes start, when not at the manifest's first byte. */
export interface LinesFrom {
  /** Byte offset of the first byte given: 0, or the first byte of a line. */
  offset: number
  /** CRC-32 of the bytes before `offset` (0 for offset 0). */
  crc: number
  /** Line number of the line that starts at `offset`. */
  lineNumber: number
}

/** Options for {@link positionedLines}. */
export interface PositionedLinesOptions extends SplitLinesOptions {
  /** Where the bytes start. Default: at the start of the manifest. */
  from?: LinesFrom
}

const NEWLINE = 0x0a
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Splits manifest bytes into parsed lines with their positions; see the module comment. */
export async function* positionedLines(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: PositionedLinesOptions = {},
): AsyncGenerator<PositionedLine, void, undefined> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES
  const key = options.key
  let offset = options.from?.offset ?? 0
  let crc = options.from?.crc ?? 0
  let lineNumber = (options.from?.lineNumber ?? 1) - 1
  let carry: Buffer[] = []
  let carryBytes = 0
  const line = (bytes: Buffer, ended: boolean): PositionedLine | undefined => {
    lineNumber++
    const start = offset
    const startCrc = crc
    const contentBytes = bytes.byteLength - (ended ? 1 : 0)
    if (contentBytes > maxLineBytes) {
      throw new InvalidManifestError(`line longer than ${maxLineBytes} bytes`, { key, lineNumber })
    }
    crc = crc32(bytes, crc)
    offset += bytes.byteLength
    const content = bytes.subarray(0, contentBytes)
    let text: string
    try {
      text = isAscii(content) ? content.toString('latin1') : utf8.decode(content)
    } catch (error) {
      throw new InvalidManifestError('invalid UTF-8', { key, lineNumber, cause: error })
    }
    if (start === 0 && text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    if (isBlankLine(text)) return undefined
    return { entry: parseEntry(text, { key, lineNumber }), start, end: offset, startCrc, crc, lineNumber }
  }
  for await (const chunk of source) {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    for (let at = buf.indexOf(NEWLINE); at !== -1; at = buf.indexOf(NEWLINE)) {
      const piece = buf.subarray(0, at + 1)
      const whole = carry.length === 0 ? piece : Buffer.concat([...carry, piece])
      carry = []
      carryBytes = 0
      buf = buf.subarray(at + 1)
      const parsed = line(whole, true)
      if (parsed) yield parsed
    }
    if (buf.byteLength > 0) {
      carry.push(buf)
      carryBytes += buf.byteLength
      if (carryBytes > maxLineBytes)
        throw new InvalidManifestError(`line longer than ${maxLineBytes} bytes`, { key, lineNumber: lineNumber + 1 })
    }
  }
  if (carryBytes > 0) {
    const parsed = line(Buffer.concat(carry), false)
    if (parsed) yield parsed
  }
}
