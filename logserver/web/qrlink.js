// QR links, read in the browser: `<verifier URL>#TL1:<base43 payload>`, the format specified in tlogcore/qrlink.py
// (base43 digits, payload flags, paper fields of tlogcore/paperfields.py). Pure decoding, no checking of
// signatures: verify.js rebuilds the proof bundle from these parts and verifies it. Driven by the same vector
// file as the Python decoder (tests/vectors/qrlink/qrlink.json). Written for this project; no third-party code.
"use strict";
(() => {
  const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ$*+-./:";
  const PREFIX = "TL1:";
  const OFFLINE = 1, PAPER = 2, ORIGIN = 4;
  const MAX_INT64 = (1n << 63n) - 1n;
  const utf8 = new TextEncoder();
  const utf8Strict = new TextDecoder("utf-8", { fatal: true });
  const plainError = (message) => new Error(message);

  // A bounds-checked cursor over bytes; `fail(message)` makes the error each caller wants thrown.
  class Reader {
    constructor(bytes, fail) { this.bytes = bytes; this.at = 0; this.fail = fail || plainError; }
    take(n, what) {
      if (this.at + n > this.bytes.length) throw this.fail(what + " is cut short");
      const out = this.bytes.slice(this.at, this.at + n);
      this.at += n;
      return out;
    }
    byte(what) { return this.take(1, what)[0]; }
    uint32(what) { const b = this.take(4, what); return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0; }
    uvarint(what) {
      let value = 0n;
      for (let shift = 0n; shift < 70n; shift += 7n) {
        const b = this.byte(what);
        if (b === 0 && shift > 0n) throw this.fail(what + " is not a minimal varint");
        value |= BigInt(b & 0x7f) << shift;
        if (!(b & 0x80)) {
          if (value > MAX_INT64) throw this.fail(what + " is out of range");
          return value;
        }
      }
      throw this.fail(what + " is too long");
    }
    str(what) {
      const raw = this.take(this.byte(what), what);
      try { return utf8Strict.decode(raw); } catch (e) { throw this.fail(what + " is not UTF-8"); }
    }
    done(what) { if (this.at !== this.bytes.length) throw this.fail(what + ": trailing bytes"); }
  }

  function base43Decode(text, fail) {
    fail = fail || plainError;
    if (text.length % 3 === 1) throw fail("the code has a stray last character");
    const out = [];
    for (let at = 0; at < text.length; at += 3) {
      const chunk = text.slice(at, at + 3);
      let n = 0;
      for (let k = chunk.length - 1; k >= 0; k--) {
        const digit = ALPHABET.indexOf(chunk[k]);
        if (digit < 0) throw fail("the code has a character outside its alphabet");
        n = n * 43 + digit;
      }
      if (chunk.length === 3) {
        if (n > 0xffff) throw fail("the code has a group out of range");
        out.push(n >> 8, n & 0xff);
      } else {
        if (n > 0xff) throw fail("the code has a group out of range");
        out.push(n);
      }
    }
    return new Uint8Array(out);
  }

  // The rule of statement text values (tlogcore/statement.py check_text_value).
  function checkText(value, what, fail) {
    const size = utf8.encode(value).length;
    if (size < 1 || size > 255) throw fail(what + " must be 1..255 bytes");
    if (value !== value.trim() || value.normalize("NFC") !== value) throw fail(what + " is not in canonical form");
    if (/[\p{Cc}\p{Cs}\p{Zl}\p{Zp}]/u.test(value)) throw fail(what + " contains a control character");
  }

  // Paper fields body: salt(16) count(1) (str8 name, str8 value)...; canonical bytes = header || body.
  function readPaper(r, fail) {
    const start = r.at;
    const salt = r.take(16, "paper salt");
    const count = r.byte("paper field count");
    if (count < 1 || count > 32) throw fail("paper documents carry 1..32 fields");
    const fields = [];
    for (let n = 0; n < count; n++) {
      const name = r.str("paper field name");
      const value = r.str("paper field value");
      checkText(name, "paper field name", fail);
      checkText(value, "paper field " + name, fail);
      if (fields.some(([other]) => other === name)) throw fail("paper field names must be unique");
      fields.push([name, value]);
    }
    const header = utf8.encode("tlog-paper/v1\n");
    const body = r.bytes.slice(start, r.at);
    const canonical = new Uint8Array(header.length + body.length);
    canonical.set(header);
    canonical.set(body, header.length);
    return { salt, fields, canonical };
  }

  function readOffline(r, flags) {
    const parts = { origin: flags & ORIGIN ? r.str("origin") : null, time: r.uvarint("statement time") };
    parts.signerName = r.str("signer name");
    parts.signerKey = r.take(32, "signer key");
    parts.document = flags & PAPER ? null : r.take(32, "document");
    parts.ref = r.str("ref");
    parts.statementSig = r.take(64, "statement signature");
    parts.index = r.uvarint("index");
    parts.proof = [];
    for (let n = r.byte("proof count"); n > 0; n--) parts.proof.push(r.take(32, "proof hash"));
    parts.size = r.uvarint("tree size");
    parts.logSig = r.take(64, "log signature");
    parts.cosigs = [];
    for (let n = r.byte("cosignature count"); n > 0; n--) {
      const keyId = r.uint32("cosignature key ID");
      const time = r.uvarint("cosignature time");
      parts.cosigs.push({ keyId, time, sig: r.take(64, "cosignature") });
    }
    return parts;
  }

  // {paper, document, index, offline}: document is null with paper fields (the caller hashes paper.canonical).
  function decodePayload(bytes, fail) {
    fail = fail || plainError;
    if (!bytes.length || bytes.length > 4096) throw fail("the code is empty or too large");
    const r = new Reader(bytes, fail);
    const flags = r.byte("flags");
    if (flags & ~(OFFLINE | PAPER | ORIGIN) || (flags & ORIGIN && !(flags & OFFLINE))) {
      throw fail("the code has unknown flags (made by a newer version?)");
    }
    const paper = flags & PAPER ? readPaper(r, fail) : null;
    let result;
    if (flags & OFFLINE) {
      const offline = readOffline(r, flags);
      result = { paper, document: offline.document, index: offline.index, offline };
    } else {
      const document = paper ? null : r.take(32, "document");
      result = { paper, document, index: r.uvarint("index"), offline: null };
    }
    r.done("the code");
    return result;
  }

  window.TLOG_QRLINK = { PREFIX, Reader, base43Decode, decodePayload };
})();
