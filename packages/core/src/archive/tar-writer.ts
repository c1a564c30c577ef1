/**
 * Encodes tar member headers as Python's `tarfile` (PAX format) writes them: a ustar header, preceded
 * by a pax extended header when the name is longer than 100 bytes or not ASCII, or the size does
 * not fit in 11 octal digits. The byte size of every header is known before it is written, which
 * is what lets a shard record each member's `offset`. (tar-stream, used for reading, does not expose
 * its encoder; this one is small and its output is checked against tar-stream, GNU tar and Python.)
 *
 * @example
 * ```ts
 * import { tarHeader, tarPadding, TAR_END } from '@s3exchange/core'
 *
 * const data = Buffer.from('hello')
 * const tar = Buffer.concat([tarHeader({ name: 'a.txt', size: data.byteLength }), data, tarPadding(data.byteLength), TAR_END])
 * ```
 */

/** What a regular-file header needs. */
export interface TarHeaderSpec {
  /** Path inside the archive (UTF-8). */
  name: string
  /** Data size in bytes. */
  size: number
  /** Permission bits. Default 0o644. */
  mode?: number
  /** Modification time in seconds since the epoch. Default 0, as Python's `TarInfo`. */
  mtime?: number
}

const BLOCK = 512
/** Two zero blocks: the end of a tar archive. */
export const TAR_END: Uint8Array = new Uint8Array(2 * BLOCK)
const MAX_OCTAL_SIZE = 0o77777777777

/** The zero bytes that pad `size` bytes of data to a 512-byte boundary. */
export function tarPadding(size: number): Uint8Array {
  const rest = size % BLOCK
  return rest === 0 ? new Uint8Array(0) : new Uint8Array(BLOCK - rest)
}

/** The size of `size` bytes of data padded to a 512-byte boundary. */
export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK
}

/** The header (pax extended header included, when needed) of a regular file member. */
export function tarHeader(spec: TarHeaderSpec): Buffer {
  const nameBytes = Buffer.from(spec.name, 'utf8')
  const pax: [string, string][] = []
  const asciiName = nameBytes.byteLength === spec.name.length
  if (!asciiName || nameBytes.byteLength > 100) pax.push(['path', spec.name])
  if (spec.size > MAX_OCTAL_SIZE) pax.push(['size', String(spec.size)])
  const main = ustarHeader({
    name: pax.some(([k]) => k === 'path') ? truncateAscii(spec.name, 100) : spec.name,
    size: spec.size > MAX_OCTAL_SIZE ? 0 : spec.size,
    mode: spec.mode ?? 0o644,
    mtime: spec.mtime ?? 0,
    type: '0',
  })
  if (pax.length === 0) return main
  const records = Buffer.from(pax.map(([key, value]) => paxRecord(key, value)).join(''), 'utf8')
  const paxHeader = ustarHeader({ name: '././@PaxHeader', size: records.byteLength, mode: 0o644, mtime: 0, type: 'x' })
  return Buffer.concat([paxHeader, records, tarPadding(records.byteLength), main])
}

/** The byte size of {@link tarHeader}'s output, without encoding it. */
export function tarHeaderSize(spec: TarHeaderSpec): number {
  const nameBytes = Buffer.byteLength(spec.name, 'utf8')
  const records: string[] = []
  if (nameBytes !== spec.name.length || nameBytes > 100) records.push(paxRecord('path', spec.name))
  if (spec.size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(spec.size)))
  if (records.length === 0) return BLOCK
  return BLOCK + paddedSize(Buffer.byteLength(records.join(''), 'utf8')) + BLOCK
}

function paxRecord(key: string, value: string): string {
  // "<length> <key>=<value>\n", where <length> counts the whole record, its own digits included.
  const body = ` ${key}=${value}\n`
  const bodyBytes = Buffer.byteLength(body, 'utf8')
  let length = bodyBytes + String(bodyBytes).length
  if (String(length).length !== String(bodyBytes).length) length = bodyBytes + String(length).length
  return `${length}${body}`
}

function truncateAscii(name: string, max: number): string {
  // The ustar name field of a member whose real name is in a pax record: a readable ASCII stand-in.
  const ascii = name.replace(/[^\x20-\x7e]/g, '_')
  return ascii.length > max ? ascii.slice(0, max) : ascii
}

interface UstarFields {
  name: string
  size: number
  mode: number
  mtime: number
  type: string
}

function ustarHeader(fields: UstarFields): Buffer {
  const header = Buffer.alloc(BLOCK)
  header.write(fields.name, 0, 100, 'utf8')
  writeOctal(header, fields.mode, 100, 8)
  writeOctal(header, 0, 108, 8) // uid
  writeOctal(header, 0, 116, 8) // gid
  writeOctal(header, fields.size, 124, 12)
  writeOctal(header, fields.mtime, 136, 12)
  header.write(fields.type, 156, 1, 'ascii')
  header.write('ustar\u000000', 257, 8, 'ascii')
  writeOctal(header, 0, 329, 8) // devmajor
  writeOctal(header, 0, 337, 8) // devminor
  // Checksum: the sum of all header bytes with the checksum field taken as spaces.
  header.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += header[i] as number
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii')
  return header
}

function writeOctal(header: Buffer, value: number, offset: number, length: number): void {
  header.write(
    `${Math.trunc(value)
      .toString(8)
      .padStart(length - 1, '0')}\u0000`,
    offset,
    length,
    'ascii',
  )
}
