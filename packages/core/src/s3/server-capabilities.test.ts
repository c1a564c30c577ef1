/**
 * What the library says it does on a server, from capabilities alone (no server): the verdict and
 * the sentence of each topic for the servers measured here (fauxqs, Ceph RGW 16) and for one that
 * honours everything (as AWS S3 documents), and for the limits that change a statement.
 */
import { MEASURED_CAPABILITIES } from '@s3exchange/testing'
import { describe, expect, it } from 'vitest'
import { BEHAVIOUR_TOPICS, formatSize, libraryBehaviour, type ServerCapabilities } from './server-capabilities.js'

const MiB = 1024 * 1024

/** As AWS S3 documents it: Ceph's answers, but conditions honoured everywhere and an ETag in every answer. */
const honoursAll: ServerCapabilities = {
  ...MEASURED_CAPABILITIES['ceph-rgw'],
  conditionalPut: 'quoted',
  putIfMatchMissing: 404,
  completeIfNoneMatch: 'honoured',
  completeIfMatch: 'honoured',
  conditionalComplete: true,
  completeEtag: true,
  maxSinglePut: 64 * MiB,
}

/** Ceph RGW 16.2.15 and fauxqs 2.4 as `probeServer` measured them here, with single PUTs tried up to 64 MiB. */
const cephRgw16: ServerCapabilities = { ...MEASURED_CAPABILITIES['ceph-rgw'], maxSinglePut: 64 * MiB }
const fauxqs: ServerCapabilities = MEASURED_CAPABILITIES.fauxqs

const about = (capabilities: ServerCapabilities, topic: string) => {
  const found = libraryBehaviour(capabilities).find((each) => each.topic === topic)
  if (!found) throw new Error(`no statement about ${topic}`)
  return found
}

describe('libraryBehaviour', () => {
  it('states every topic once, in order', () => {
    for (const capabilities of [honoursAll, cephRgw16, fauxqs]) {
      expect(libraryBehaviour(capabilities).map((each) => each.topic)).toEqual([...BEHAVIOUR_TOPICS])
    }
  })

  it('a server that honours every condition: append_parts is safe at any size, everything ok', () => {
    expect(libraryBehaviour(honoursAll).map((each) => each.verdict)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok'])
    expect(about(honoursAll, 'append_parts').text).toMatch(
      /^safe under concurrent writers: .*quoted ETag.*up to the largest single PUT this server takes \(at least 64 MiB, the most the probe tried\), larger ones with a conditional multipart completion, which this server honours/,
    )
  })

  it('Ceph RGW 16: safe for roots up to the largest single PUT, larger appends refused; the bare ETag; a HEAD after completions', () => {
    const append = about(cephRgw16, 'append_parts')
    expect(append.verdict).toBe('limited')
    expect(append.text).toContain(
      'safe under concurrent writers for roots up to the largest single PUT this server takes (at least 64 MiB, the most the probe tried)',
    )
    expect(append.text).toContain('the bare ETag, the only form this server honours')
    expect(append.text).toContain('ignores conditions on multipart completion')
    expect(append.text).toContain('refused with a typed error')
    const multipart = about(cephRgw16, 'multipart writes')
    expect(multipart.verdict).toBe('limited')
    expect(multipart.text).toContain('reads it with a HEAD')
  })

  it('a server that refuses single PUTs past a size names it', () => {
    const append = about({ ...cephRgw16, maxSinglePut: 20 * MiB, maxSinglePutRefused: 21 * MiB }, 'append_parts')
    expect(append.text).toContain('for roots up to 20 MiB:')
    expect(about({ ...cephRgw16, maxSinglePut: 20 * MiB, maxSinglePutRefused: 21 * MiB }, 'single PUTs').text).toContain(
      'up to 20 MiB (21 MiB refused)',
    )
  })

  it('fauxqs: append_parts is unsafe under concurrent writers (conditions on PUT ignored), the rest ok', () => {
    const append = about(fauxqs, 'append_parts')
    expect(append.verdict).toBe('unsafe')
    expect(append.text).toMatch(/^unsafe under concurrent writers: this server does not enforce If-Match on PutObject/)
    expect(append.text).toContain(
      'A root larger than 11 MiB would need a conditional multipart completion, which this server ignores: such an append is refused with a typed error',
    )
    expect(about(fauxqs, 'single PUTs')).toMatchObject({ verdict: 'ok', text: expect.stringContaining('up to 11 MiB (12 MiB refused)') })
  })

  it('If-None-Match ignored while If-Match holds: creating a root concurrently is the risk named', () => {
    const append = about({ ...honoursAll, putIfNoneMatch: 'ignored' }, 'append_parts')
    expect(append.verdict).toBe('limited')
    expect(append.text).toContain('two writers creating the same root at the same moment can lose one’s parts')
    expect(append.text).not.toContain('If-None-Match: * to create')
  })

  it('both ETag forms honoured: the quoted one is sent', () => {
    expect(about({ ...honoursAll, conditionalPut: 'both' }, 'append_parts').text).toContain(
      'the quoted ETag (this server honours both forms)',
    )
  })

  it('limits that break a path are unsafe, with what to do', () => {
    expect(about({ ...honoursAll, minPartSize: null }, 'multipart writes')).toMatchObject({
      verdict: 'unsafe',
      text: expect.stringContaining('partSize'),
    })
    expect(about({ ...honoursAll, maxSinglePut: 4 * MiB, maxSinglePutRefused: 5 * MiB }, 'single PUTs')).toMatchObject({
      verdict: 'unsafe',
      text: expect.stringContaining('set partSize to 4 MiB or less'),
    })
    expect(about({ ...honoursAll, rangedGet: false }, 'reads').verdict).toBe('unsafe')
    expect(about({ ...honoursAll, getIfMatch: false }, 'reads').verdict).toBe('limited')
    expect(about({ ...honoursAll, deleteObjects: false }, 'deletes').verdict).toBe('unsafe')
    expect(about({ ...honoursAll, deleteObjectsMaxKeys: 500 }, 'deletes')).toMatchObject({
      verdict: 'limited',
      text: expect.stringContaining('batchSize: 500'),
    })
    expect(about({ ...honoursAll, listPaging: false }, 'listing').verdict).toBe('unsafe')
    expect(about({ ...honoursAll, minPartSize: 1 }, 'multipart writes').text).toContain('enforces no minimum part size')
  })
})

describe('formatSize', () => {
  it('whole units without decimals, others with one', () => {
    expect([1, 1023, 1024, 5 * MiB, 64 * MiB, 1.5 * MiB, 5 * 1024 * MiB].map(formatSize)).toEqual([
      '1 B',
      '1023 B',
      '1 KiB',
      '5 MiB',
      '64 MiB',
      '1.5 MiB',
      '5 GiB',
    ])
  })
})
