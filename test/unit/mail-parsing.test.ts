import { describe, expect, it } from 'vitest'
import { StackEmulatorError } from '../../src/errors.js'
import { decodeEntities, extractLinks, isAddressedTo, isFromProject, mailboxName, senderName } from '../../src/stack/mail-parsing.js'

describe('mailboxName: Inbucket\'s default "local" naming', () => {
  it('is the local part, lower-cased', () => {
    expect(mailboxName('ada@example.com')).toBe('ada')
    expect(mailboxName('Ada.Lovelace@Example.COM')).toBe('ada.lovelace')
  })

  it('drops a +tag, as Inbucket files such mail', () => {
    expect(mailboxName('ada+signup-1@example.com')).toBe('ada')
  })

  it('reads the address out of a display form, and takes a bare mailbox name as it is', () => {
    expect(mailboxName('Ada Lovelace <ada@example.com>')).toBe('ada')
    expect(mailboxName('ada')).toBe('ada')
  })

  it('refuses an address with no local part', () => {
    expect(() => mailboxName('@example.com')).toThrow(StackEmulatorError)
    expect(() => mailboxName('+tag@example.com')).toThrow(/no local part/)
  })
})

describe('isAddressedTo', () => {
  it('tells apart addresses that share a mailbox', () => {
    expect(isAddressedTo(['<ada@example.com>'], 'ada@example.com')).toBe(true)
    expect(isAddressedTo(['<ada@example.org>'], 'ada@example.com')).toBe(false)
    expect(isAddressedTo(['<ada+2@example.com>'], 'ada+1@example.com')).toBe(false)
  })

  it('ignores case and display names, and finds one recipient among several', () => {
    expect(isAddressedTo(['"Ada" <ADA@Example.com>'], 'ada@example.com')).toBe(true)
    expect(isAddressedTo(['bob@example.com, Ada <ada@example.com>'], 'ada@example.com')).toBe(true)
    expect(isAddressedTo(['<bob@example.com>', '<ada@example.com>'], 'Ada <ada@example.com>')).toBe(true)
  })

  it('takes everything for a bare mailbox name, and a message without recipients', () => {
    expect(isAddressedTo(['<ada@example.org>'], 'ada')).toBe(true)
    expect(isAddressedTo([], 'ada@example.com')).toBe(true)
  })
})

describe('decodeEntities', () => {
  it('decodes named, decimal and hex entities, and leaves unknown ones', () => {
    expect(decodeEntities('a&amp;b&lt;&gt;&quot;&#39;&#x2F;&#47;&apos;')).toBe("a&b<>\"'//'")
    expect(decodeEntities('&copy; &bogus; &#0; & alone')).toBe('&copy; &bogus; &#0; & alone')
  })
})

describe('extractLinks', () => {
  const verify = 'http://localhost:3107/verify?code=abc123&after=%2F'

  it('takes every href of the HTML with its entities decoded, in order', () => {
    const html = `<p><a href="http://localhost:3107/verify?code=abc123&amp;after=%2F">Verify</a>
      <a href='https://example.com/help'>Help</a> <a href=https://example.com/bare>x</a></p>`
    expect(extractLinks(html, '')).toEqual([verify, 'https://example.com/help', 'https://example.com/bare'])
  })

  it('takes URLs written out in the text, without the punctuation that ends a sentence', () => {
    const text = `Verify: ${verify}.\nOr see (https://example.com/help), <https://example.com/angle>; https://example.com/a_(b)`
    expect(extractLinks('', text)).toEqual([verify, 'https://example.com/help', 'https://example.com/angle', 'https://example.com/a_(b)'])
  })

  it("lists a link found in both parts once, the HTML's first", () => {
    const html = '<a href="https://example.com/two">2</a><a href="https://example.com/one">1</a>'
    expect(extractLinks(html, 'https://example.com/one https://example.com/three')).toEqual([
      'https://example.com/two',
      'https://example.com/one',
      'https://example.com/three',
    ])
  })

  it('leaves out what is not an http(s) link: mailto, anchors, relative paths, image sources', () => {
    const html =
      '<a href="mailto:help@example.com">m</a><a href="#top">t</a><a href="/relative">r</a><img src="https://example.com/logo.png"><a HREF = "HTTPS://EXAMPLE.COM/UP">u</a>'
    expect(extractLinks(html, 'ftp://example.com/file')).toEqual(['HTTPS://EXAMPLE.COM/UP'])
  })
})

describe('senderName and isFromProject: whose mail it is, by the From name Stack Auth gives it', () => {
  it('reads the display name, quoted or not, with escapes', () => {
    expect(senderName('"Local Emulator: a.ts" <noreply@example.com>')).toBe('Local Emulator: a.ts')
    expect(senderName('Stack <noreply@example.com>')).toBe('Stack')
    expect(senderName('"Say \\"hi\\"" <n@x>')).toBe('Say "hi"')
    expect(senderName('<noreply@example.com>')).toBe('')
    expect(senderName('noreply@example.com')).toBe('')
  })

  it('matches the project by its whole display name only', () => {
    expect(isFromProject('"Local Emulator: a.ts" <n@x>', 'Local Emulator: a.ts')).toBe(true)
    expect(isFromProject('"Local Emulator: a.ts.bak" <n@x>', 'Local Emulator: a.ts')).toBe(false)
    expect(isFromProject(undefined, 'Local Emulator: a.ts')).toBe(false)
  })
})
