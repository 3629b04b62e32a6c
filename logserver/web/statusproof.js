// The status index's record and proof, checked in this browser (docs/status-proofs.md §2, §4, §5; the twin of
// tlogcore/statusrecord.py and tlogcore/statusindex.py, both run tests/vectors/statusindex/*.json). Pure: bytes in,
// a record or an error out; SHA-256 through WebCrypto. Written for this project; no third-party code.
"use strict";
(() => {
  const KEY_BITS = 256;
  const MAX_INDEX = (1n << 63n) - 1n;
  const PRESENT = 0, ABSENT_EMPTY = 1, ABSENT_OTHER_LEAF = 2;

  class StatusProofError extends Error {}
  const fail = (message) => { throw new StatusProofError(message); };

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const bit = (bytes, i) => (bytes[i >> 3] >> (7 - (i & 7))) & 1;

  // §2: 0x01, u16 I, I x u64 (issue entries), u16 R, R x u64 (revoke entries); strictly ascending, < 2^63,
  // disjoint, I + R >= 1, nothing after.
  function parseRecord(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    const need = (n) => { if (at + n > bytes.length) fail("status record is cut short"); };
    need(1);
    if (bytes[at++] !== 0x01) fail("status record: unknown format version");
    const lists = [];
    for (const what of ["issue", "revoke"]) {
      need(2);
      const count = view.getUint16(at);
      at += 2;
      need(8 * count);
      const list = [];
      for (let i = 0; i < count; i++, at += 8) {
        const index = view.getBigUint64(at);
        if (index > MAX_INDEX || (list.length && index <= list[list.length - 1])) {
          fail("status record: " + what + " entry indexes must be strictly ascending and below 2^63");
        }
        list.push(index);
      }
      lists.push(list);
    }
    if (at !== bytes.length) fail("status record has trailing bytes");
    const [issued, revoked] = lists;
    if (!issued.length && !revoked.length) fail("status record lists no entry");
    if (issued.some((i) => revoked.includes(i))) fail("status record: one entry cannot both issue and revoke");
    return { issued, revoked };
  }

  const EMPTY_INPUT = new Uint8Array([0x12]);
  const leafHashOf = (key, valueHash) => sha256(concat(new Uint8Array([0x10]), key, valueHash));
  const nodeHash = (left, right) => sha256(concat(new Uint8Array([0x11]), left, right));

  // §5: the root `proof` leads to for `key` holding `record` (its bytes), or none (record === null).
  async function rootFromProof(key, record, proof) {
    if (key.length !== 32) fail("a status key is 32 bytes");
    if (proof.length < 33 || proof.length > 33 + KEY_BITS * 32 + 64) fail("status proof has an impossible length");
    const kind = proof[0];
    const bitmap = proof.slice(1, 33);
    let count = 0, depth = 0;
    for (let i = 0; i < KEY_BITS; i++) if (bit(bitmap, i)) { count++; depth = i + 1; }
    if (kind > ABSENT_OTHER_LEAF) fail("status proof: unknown kind");
    if (proof.length !== 33 + 32 * count + (kind === ABSENT_OTHER_LEAF ? 64 : 0)) fail("status proof length");
    const siblings = [];
    for (let i = 0; i < count; i++) siblings.push(proof.slice(33 + 32 * i, 65 + 32 * i));
    let terminal;
    if (kind === PRESENT) {
      if (record === null) fail("a proof of presence needs the record");
      parseRecord(record);
      terminal = await leafHashOf(key, await sha256(record));
    } else if (record !== null) {
      fail("a proof of absence cannot carry a record");
    } else if (kind === ABSENT_EMPTY) {
      terminal = await sha256(EMPTY_INPUT);
    } else {
      const other = proof.slice(33 + 32 * count, 65 + 32 * count);
      if (equal(other, key)) fail("the other leaf is the key itself");
      for (let i = 0; i < depth; i++) if (bit(other, i) !== bit(key, i)) fail("the other leaf is off the key's path");
      terminal = await leafHashOf(other, proof.slice(65 + 32 * count));
    }
    const empty = await sha256(EMPTY_INPUT);
    let next = 0;
    for (let j = depth - 1; j >= 0; j--) {
      const sibling = bit(bitmap, j) ? siblings[next++] : empty;
      terminal = bit(key, j) ? await nodeHash(sibling, terminal) : await nodeHash(terminal, sibling);
    }
    return terminal;
  }

  async function verifyStatus(key, record, proof, root) {
    if (root.length !== 32) fail("an index root is 32 bytes");
    if (!equal(await rootFromProof(key, record, proof), root)) fail("the status proof does not lead to the index root");
    return record === null ? null : parseRecord(record);
  }

  // The key index (tlogcore/keystatus.py, docs/status-proofs.md §12): the same tree and proofs, at the key's slot
  // SHA-256("tlog-key-slot/v1\n" || vkey); the record's two lists are its issuer-add and issuer-retire entries.
  const utf8 = new TextEncoder();
  const keySlot = (vkey) => sha256(concat(utf8.encode("tlog-key-slot/v1\n"), utf8.encode(vkey)));
  async function verifyKeyStatus(vkey, record, proof, keysRoot) {
    const found = await verifyStatus(await keySlot(vkey), record, proof, keysRoot);
    return found === null ? null : { added: found.issued, retired: found.revoked };
  }

  // tlogcore/indexroot.py: the text of an index-root note, strictly (the signature is the caller's, as for notes).
  // Version 2 adds a `keys` line: the key index root (tlogcore/keystatus.py); keys is null for a v1 statement.
  const FIELDS = ["log", "signer", "time", "size", "root"];
  const FIELDS_V2 = [...FIELDS, "keys"];
  function hash32(value, what) {
    let bytes = new Uint8Array(0);
    try { bytes = Uint8Array.from(atob(value), (c) => c.charCodeAt(0)); } catch (e) { fail(what); }
    if (bytes.length !== 32 || btoa(String.fromCharCode(...bytes)) !== value) fail(what);
    return bytes;
  }
  function parseIndexRootText(text) {
    const lines = text.endsWith("\n") ? text.slice(0, -1).split("\n") : [];
    const fields = lines[0] === "tlog-index-root/v2" ? FIELDS_V2 : FIELDS;
    if (lines.length !== 1 + fields.length || (lines[0] !== "tlog-index-root/v1" && lines[0] !== "tlog-index-root/v2")) {
      fail("not an index-root statement");
    }
    const values = {};
    fields.forEach((name, i) => {
      const line = lines[i + 1];
      if (!line.startsWith(name + " ") || line.length === name.length + 1) fail("index-root line " + name);
      values[name] = line.slice(name.length + 1);
    });
    for (const name of ["time", "size"]) {
      if (!/^(0|[1-9][0-9]{0,18})$/.test(values[name]) || BigInt(values[name]) > MAX_INDEX) fail("index-root " + name);
    }
    const root = hash32(values.root, "index-root root");
    const keys = values.keys === undefined ? null : hash32(values.keys, "index-root keys");
    return { origin: values.log, signer: values.signer, time: BigInt(values.time), size: BigInt(values.size), root, keys };
  }

  // --- the log's entry tiles (c2sp.org/tlog-tiles; tlogcore/tiles.py), for the entries after an index root -------
  const TILE_WIDTH = 256n;
  // tile/entries/x001/x234/067[.p/W]: 3-digit groups, all but the last prefixed with "x".
  function entryTilePath(tile, width) {
    let text = String(tile % 1000n).padStart(3, "0");
    for (let n = tile / 1000n; n > 0n; n /= 1000n) text = "x" + String(n % 1000n).padStart(3, "0") + "/" + text;
    return "tile/entries/" + text + (width < TILE_WIDTH ? ".p/" + width : "");
  }
  // An entry bundle: each entry a big-endian u16 length, then its bytes; exactly `count` of them.
  function splitEntryBundle(bytes, count) {
    const entries = [];
    let at = 0;
    while (at < bytes.length && entries.length < count) {
      if (at + 2 > bytes.length) fail("entry bundle: truncated length");
      const end = at + 2 + ((bytes[at] << 8) | bytes[at + 1]);
      if (end > bytes.length) fail("entry bundle: truncated entry");
      entries.push(bytes.slice(at + 2, end));
      at = end;
    }
    if (at !== bytes.length || entries.length !== count) fail("entry bundle: not " + count + " entries");
    return entries;
  }
  // RFC 9162 §2.1.1: the Merkle tree hash of these leaf hashes (a log's nodes: 0x01, unlike the index's 0x11).
  async function logTreeHash(leaves) {
    if (leaves.length === 1) return leaves[0];
    let k = 1;
    while (k * 2 < leaves.length) k *= 2;
    return sha256(concat(new Uint8Array([1]), await logTreeHash(leaves.slice(0, k)), await logTreeHash(leaves.slice(k))));
  }
  // How many hashes an RFC 9162 inclusion proof of `index` in a tree of `size` has (BigInts): a tile's subtree is a
  // node of the log's tree, so the first this-many hashes of an entry's proof lead to the tile's own hash.
  function inclusionLength(index, size) {
    const inner = (index ^ (size - 1n)).toString(2).replace(/^0+/, "").length;
    return inner + (index >> BigInt(inner)).toString(2).split("").filter((c) => c === "1").length;
  }

  window.TLOG_STATUS_PROOF = Object.freeze({ parseRecord, rootFromProof, verifyStatus, parseIndexRootText,
                                             keySlot, verifyKeyStatus, entryTilePath, splitEntryBundle, logTreeHash,
                                             inclusionLength, TILE_WIDTH, StatusProofError });
})();
