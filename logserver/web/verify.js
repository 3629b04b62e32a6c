// The document verifier, run entirely in this browser: parses the proof bundle (tlog-proof text, or the binary
// form from an offline QR code), and checks with WebCrypto (SHA-256, Ed25519) the statement's issuer signature,
// the leaf hash, the RFC 9162 inclusion proof, the log's checkpoint signature and the witness cosignatures
// (cosignature/v1) against the trust policy (C2SP tlog-policy). Written for this project; the one third-party
// piece, ML-DSA-44 for browsers whose WebCrypto lacks it, is a vendored bundle loaded only then (vendor/README.md).
"use strict";
(() => {
  const utf8 = new TextEncoder();
  const utf8Strict = new TextDecoder("utf-8", { fatal: true });
  const KINDS = ["issue", "revoke", "issuer-add", "issuer-retire"];
  const MAX_FUTURE_SKEW = 600n;
  // Online, a status is called proven only on a checkpoint its witnesses vouched for this recently (seconds), as
  // tlogcore/freshness.py MAX_AGE_SECONDS: an idle log asks its witnesses again every 5 minutes.
  const MAX_AGE_SECONDS = 3600;
  const MAX_INT64 = (1n << 63n) - 1n;

  class VerifyError extends Error {
    // verdict: "tampered" | "cannot_verify" | "not_logged"; check: the i18n key of the failing check
    constructor(verdict, check, message) {
      super(message);
      this.verdict = verdict;
      this.check = check;
    }
  }
  const tampered = (check, message) => new VerifyError("tampered", check, message);
  // An entry the log's own index, or the gap read here, lists that its answer lacks: tampered, unless a busy log
  // logged it between its answer and the checkpoint fetched after it (askedTwice then asks once more).
  const leftOut = (check, message) => Object.assign(tampered(check, message), { leftOut: true });
  const malformed = (message) => new VerifyError("tampered", "c_leaf", "damaged bundle: " + message);

  // --- bytes ------------------------------------------------------------------------------------------------
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  function b64encode(bytes) {
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }
  function b64decode(text, what) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw malformed(what + " is not base64");
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    if (b64encode(bytes) !== text) throw malformed(what + " is not canonical base64");
    return bytes;
  }
  function b64urlDecode(text) {
    if (!/^[A-Za-z0-9_-]*$/.test(text)) throw malformed("the QR data is not base64url");
    const std = text.replace(/-/g, "+").replace(/_/g, "/");
    return b64decode(std + "=".repeat((4 - (std.length % 4)) % 4), "the QR data");
  }
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const bitLength = (n) => (n === 0n ? 0 : n.toString(2).length);
  const popCount = (n) => n.toString(2).split("").filter((c) => c === "1").length;
  function decimal(text, what) {
    if (!/^(0|[1-9][0-9]{0,18})$/.test(text)) throw malformed(what + " is not a decimal number");
    const n = BigInt(text);
    if (n > MAX_INT64) throw malformed(what + " is out of range");
    return n;
  }

  // --- Ed25519 through WebCrypto ----------------------------------------------------------------------------
  async function ed25519Supported() {
    try {
      if (!window.crypto || !crypto.subtle) return false;
      await crypto.subtle.importKey("raw", new Uint8Array(32).fill(1), { name: "Ed25519" }, false, ["verify"]);
      return true;
    } catch (e) {
      return false;
    }
  }
  async function ed25519Verify(publicKey, signature, message) {
    if (signature.length !== 64) return false;
    try {
      const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
    } catch (e) {
      return false;
    }
  }

  // --- cosignatures (c2sp.org/tlog-cosignature@v1.1.0) -------------------------------------------------------
  // One function per signature type; verifyCosignature picks by the key's type. Each answers {ok, time}, where
  // time is the signed timestamp (BigInt); {unsupported: true} when this browser cannot check that type.
  function signedTime(sig) {
    let time = 0n;
    for (const b of sig.slice(0, 8)) time = (time << 8n) | BigInt(b);
    return time;
  }
  async function verifyCosignature(key, sig, textBytes, checkpoint) {
    if (key.type === 0x06) return mldsa44Cosignature(key, sig, checkpoint);
    return ed25519Cosignature(key, sig, textBytes);
  }
  // Type 0x04: Ed25519 over "cosignature/v1\ntime <t>\n" || the checkpoint text.
  async function ed25519Cosignature(key, sig, textBytes) {
    if (sig.length !== 72) return { ok: false, time: 0n };
    const time = signedTime(sig);
    if (time > MAX_INT64) return { ok: false, time };
    const message = concat(utf8.encode("cosignature/v1\ntime " + time.toString() + "\n"), textBytes);
    return { ok: await ed25519Verify(key.material, sig.slice(8), message), time };
  }
  // Type 0x06: ML-DSA-44 (FIPS 204, empty context) over the binary subtree/v1 message for [0, size):
  //   "subtree/v1\n\0" || u8 len || cosigner name || u64 time || u8 len || origin || u64 0 || u64 size || root
  // (tlogcore/cosignature.py `subtree_message` builds the same bytes). Extension lines are not covered.
  function subtreeMessage(name, timeBytes, checkpoint) {
    const nameBytes = utf8.encode(name);
    const originBytes = utf8.encode(checkpoint.origin);
    if (nameBytes.length > 255 || originBytes.length > 255) return null;
    const size = new Uint8Array(8);
    new DataView(size.buffer).setBigUint64(0, BigInt(checkpoint.size));
    return concat(utf8.encode("subtree/v1\n"), new Uint8Array([0, nameBytes.length]), nameBytes, timeBytes,
      new Uint8Array([originBytes.length]), originBytes, new Uint8Array(8), size, checkpoint.root);
  }
  // ML-DSA-44 from WebCrypto where the browser has it; otherwise from the vendored @noble/post-quantum bundle
  // (vendor/README.md), fetched only then, as a script pinned by its SHA-384 like the page's own (the page names
  // its place and pin in data-mldsa44*, logserver/verifierpage.py). Answers verify(publicKey, signature, message),
  // or null when this browser has neither (then the cosignature is reported as uncheckable, never as valid).
  let mldsa44Verifier = null;
  function mldsa44() {
    if (mldsa44Verifier === null) {
      mldsa44Verifier = webCryptoMldsa44().then((found) => found || vendoredMldsa44());
      mldsa44Verifier.then((found) => { if (!found) mldsa44Verifier = null; }); // offline now: try again later
    }
    return mldsa44Verifier;
  }
  async function webCryptoMldsa44() {
    try {
      if (!window.crypto || !crypto.subtle) return null;
      await crypto.subtle.importKey("raw-public", new Uint8Array(1312), { name: "ML-DSA-44" }, false, ["verify"]);
    } catch (e) {
      return null;
    }
    return async (publicKey, signature, message) => {
      const key = await crypto.subtle.importKey("raw-public", publicKey, { name: "ML-DSA-44" }, false, ["verify"]);
      return crypto.subtle.verify({ name: "ML-DSA-44" }, key, signature, message);
    };
  }
  function vendoredMldsa44() {
    const { mldsa44: src, mldsa44Integrity: integrity } = document.documentElement.dataset;
    if (!src || !integrity) return Promise.resolve(null);
    return new Promise((resolve) => {
      const script = document.createElement("script");
      script.src = src;
      script.integrity = integrity;
      script.onload = () => {
        const bundle = window.tlogMlDsa44;
        resolve(bundle ? async (publicKey, signature, message) => bundle.verify(signature, message, publicKey) : null);
      };
      script.onerror = () => { script.remove(); resolve(null); };
      document.head.appendChild(script);
    });
  }
  async function mldsa44Cosignature(key, sig, checkpoint) {
    if (sig.length !== 8 + 2420) return { ok: false, time: 0n };
    const time = signedTime(sig);
    const message = subtreeMessage(key.name, sig.slice(0, 8), checkpoint);
    if (message === null) return { ok: false, time };
    const verify = await mldsa44();
    if (!verify) return { unsupported: true, time };
    try {
      return { ok: (await verify(key.material, sig.slice(8), message)) === true, time };
    } catch (e) {
      return { ok: false, time };
    }
  }

  // --- verifier keys (c2sp.org/signed-note) -----------------------------------------------------------------
  async function keyId(name, type, material) {
    const digest = await sha256(concat(utf8.encode(name + "\n"), new Uint8Array([type]), material));
    return ((digest[0] << 24) | (digest[1] << 16) | (digest[2] << 8) | digest[3]) >>> 0;
  }
  async function parseVkey(vkey, what) {
    const first = vkey.indexOf("+");
    const parts = [vkey.slice(0, first), vkey.slice(first + 1, first + 9), vkey.slice(first + 10)];
    if (first <= 0 || vkey[first + 9] !== "+" || !/^[0-9a-f]{8}$/.test(parts[1])) throw malformed(what + " is not a vkey");
    const raw = b64decode(parts[2], what);
    const type = raw[0];
    const material = raw.slice(1);
    const ed25519 = (type === 0x01 || type === 0x04) && material.length === 32;
    if (!ed25519 && !(type === 0x06 && material.length === 1312)) {
      throw new VerifyError("cannot_verify", "c_policy",
        what + ": only Ed25519 (0x01, 0x04) and ML-DSA-44 cosignature (0x06) keys are checked here");
    }
    const id = await keyId(parts[0], type, material);
    if (id !== parseInt(parts[1], 16)) throw malformed(what + ": key ID does not match the key");
    return { name: parts[0], id, type, material, vkey };
  }
  async function vkeyString(name, type, material) {
    const id = await keyId(name, type, material);
    return name + "+" + id.toString(16).padStart(8, "0") + "+" + b64encode(concat(new Uint8Array([type]), material));
  }

  // --- signed notes -----------------------------------------------------------------------------------------
  function parseNote(bytes, maxSize) {
    if (bytes.length > maxSize) throw malformed("note is too large");
    let whole;
    try { whole = utf8Strict.decode(bytes); } catch (e) { throw malformed("note is not UTF-8"); }
    if (/[\x00-\x09\x0b-\x1f]/.test(whole)) throw malformed("note contains a control character");
    const split = whole.lastIndexOf("\n\n");
    if (split < 0) throw malformed("note has no signature block");
    const text = whole.slice(0, split + 1);
    const block = whole.slice(split + 2);
    if (!block.endsWith("\n")) throw malformed("note signature block must end with a newline");
    const lines = block.slice(0, -1).split("\n");
    if (lines.length > 100) throw malformed("too many signatures");
    const signatures = lines.map((line) => {
      if (!line.startsWith("\u2014 ")) throw malformed("bad signature line");
      const rest = line.slice(2);
      const space = rest.indexOf(" ");
      if (space <= 0) throw malformed("bad signature line");
      const name = rest.slice(0, space);
      let blob = null;
      try { blob = b64decode(rest.slice(space + 1), "signature"); } catch (e) { blob = null; }
      if (blob !== null && blob.length < 5) throw malformed("signature is too short");
      const id = blob === null ? -1 : ((blob[0] << 24) | (blob[1] << 16) | (blob[2] << 8) | blob[3]) >>> 0;
      return { line, name, id, sig: blob === null ? new Uint8Array(0) : blob.slice(4) };
    });
    return { text, textBytes: utf8.encode(text), signatures };
  }

  // --- checkpoints and the trust policy ---------------------------------------------------------------------
  function parseCheckpoint(text) {
    if (!text.endsWith("\n") || text.includes("\r")) throw malformed("checkpoint lines");
    const lines = text.slice(0, -1).split("\n");
    if (lines.length < 3 || !lines[0] || lines.slice(3).some((l) => !l)) throw malformed("checkpoint lines");
    const root = b64decode(lines[2], "checkpoint root");
    if (root.length !== 32) throw malformed("checkpoint root");
    return { origin: lines[0], size: decimal(lines[1], "checkpoint size"), root, extensions: lines.slice(3) };
  }

  async function parsePolicy(text) {
    const policy = { logs: [], witnesses: new Map(), groups: new Map(), quorum: undefined, keyRanges: [] };
    for (const raw of text.split("\n")) {
      const words = raw.split("#", 1)[0].trim().split(/\s+/).filter(Boolean);
      if (!words.length) continue;
      const [kind, ...args] = words;
      if (kind === "log" && (args.length === 1 || args.length === 2)) {
        const key = await parseVkey(args[0], "policy log key");
        if (key.type !== 0x01) throw new VerifyError("cannot_verify", "c_policy", "policy log key is not Ed25519");
        policy.logs.push(key);
      } else if (kind === "witness" && (args.length === 2 || args.length === 3)) {
        if (policy.witnesses.has(args[0]) || policy.groups.has(args[0])) throw policyError("name defined twice");
        const key = await parseVkey(args[1], "policy witness key");
        if (key.type !== 0x04 && key.type !== 0x06) {
          throw new VerifyError("cannot_verify", "c_policy", "witness key is not a cosignature key (0x04, 0x06)");
        }
        policy.witnesses.set(args[0], key);
      } else if (kind === "group" && args.length >= 3) {
        const [name, k, ...members] = args;
        if (policy.witnesses.has(name) || policy.groups.has(name) || name === "none") throw policyError("name twice");
        if (new Set(members).size !== members.length) throw policyError("member twice");
        for (const m of members) if (!policy.witnesses.has(m) && !policy.groups.has(m)) throw policyError("undefined");
        const threshold = k === "any" ? 1 : k === "all" ? members.length : /^[1-9][0-9]*$/.test(k) ? Number(k) : 0;
        if (threshold < 1 || threshold > members.length) throw policyError("bad threshold");
        policy.groups.set(name, { threshold, members });
      } else if (kind === "quorum" && args.length === 1) {
        if (policy.quorum !== undefined) throw policyError("quorum twice");
        if (args[0] !== "none" && !policy.witnesses.has(args[0]) && !policy.groups.has(args[0])) {
          throw policyError("quorum names an undefined witness or group");
        }
        policy.quorum = args[0] === "none" ? null : args[0];
      } else {
        throw policyError("cannot parse a line");
      }
    }
    if (policy.quorum === undefined || !policy.logs.length) throw policyError("no log or no quorum");
    return policy;
  }
  const policyError = (m) => new VerifyError("cannot_verify", "c_policy", "trust policy: " + m);

  // One pass over the groups in definition order, each naming only earlier names (the parse enforces it), as
  // Policy.is_satisfied: a recursive walk takes exponential time on groups sharing members (g2 = g1 + g0, ...).
  function satisfied(policy, name, cosigned) {
    const met = new Map([...policy.witnesses.keys()].map((w) => [w, cosigned.has(w)]));
    for (const [group, { threshold, members }] of policy.groups) {
      met.set(group, members.filter((m) => met.get(m)).length >= threshold);
    }
    return met.get(name) === true;
  }
  // The twin of vouched_at in tlogcore/freshness.py: the latest time T at which the policy's quorum is met by the
  // counted cosignatures dated T or later. `cosigned`: witness name -> the time its cosignature signs (types 0x04
  // and 0x06 alike: "as of this time, this is the largest consistent tree I have seen"). A time of 0 claims no time
  // (c2sp.org/tlog-cosignature: an ML-DSA-44 subtree cosignature's "no latest claim"): it counts for the quorum's
  // trust, never as a time. Null with `quorum none`, or when the quorum's cosignatures carry no time.
  function vouchedAt(policy, cosigned) {
    if (policy.quorum === null) return null;
    const dated = [...cosigned].filter(([, at]) => at > 0);
    for (const time of [...new Set(dated.map(([, at]) => at))].sort((a, b) => b - a)) {
      const since = new Set(dated.filter(([, at]) => at >= time).map(([name]) => name));
      if (satisfied(policy, policy.quorum, since)) return time;
    }
    return null;
  }
  // The newest time a counted cosignature claims, for the facts' "checkpoint age"; null when none claims one.
  function newestTime(cosigned) {
    const times = [...cosigned.values()].filter((at) => at > 0);
    return times.length ? Math.max(...times) : null;
  }
  // The twin of is_stale: nothing to measure (no maximum age, `quorum none`) is never stale; never vouched is.
  function isStale(policy, cosigned, now, maxAge) {
    if (maxAge <= 0 || policy.quorum === null) return false;
    const at = vouchedAt(policy, cosigned);
    return at === null || now - at > maxAge;
  }

  // A witness may cosign with several keys (Ed25519 and ML-DSA-44, one `witness` line each, grouped as one member of
  // the quorum): people count witnesses, so the facts name each by its keys' name, once (docs/thirty-years.md).
  function witnessNames(policy, names) {
    return [...new Set(names.map((n) => policy.witnesses.get(n).name))].sort();
  }

  function quorumNeeds(policy) {
    if (policy.quorum === null) return 0;
    if (policy.witnesses.has(policy.quorum)) return 1;
    return policy.groups.get(policy.quorum).threshold;
  }

  async function verifyCheckpoint(noteBytes, policy, now, checks) {
    const note = parseNote(noteBytes, 64 * 1024);
    const checkpoint = parseCheckpoint(note.text);
    // A log whose key was rotated is listed once per key (docs/thirty-years.md): any listed key of it will do.
    const logs = policy.logs.filter((k) => k.name === checkpoint.origin);
    if (!logs.length) {
      checks.fail("c_log_sig", "log " + checkpoint.origin + " is not in the trust policy");
      throw new VerifyError("cannot_verify", "c_log_sig", "log " + checkpoint.origin + " is not in the trust policy");
    }
    const logSigned = new Set(); // the vkeys of the listed log keys that signed it
    const cosigned = new Map(); // witness name -> cosignature time (seconds)
    const uncheckable = []; // post-quantum cosignatures this browser cannot check (no ML-DSA-44 in WebCrypto)
    const seen = new Set();
    for (const sig of note.signatures) {
      if (seen.has(sig.line)) continue;
      seen.add(sig.line);
      const log = logs.find((k) => sig.name === k.name && sig.id === k.id);
      if (log) {
        if (!(await ed25519Verify(log.material, sig.sig, note.textBytes))) {
          checks.fail("c_log_sig", "the log's signature does not verify");
          throw tampered("c_log_sig", "the log's signature on the checkpoint does not verify");
        }
        logSigned.add(log.vkey);
        continue;
      }
      for (const [wname, key] of policy.witnesses) {
        if (sig.name !== key.name || sig.id !== key.id) continue;
        const found = await verifyCosignature(key, sig.sig, note.textBytes, checkpoint);
        if (found.unsupported) {  // not counted, never a failure: another browser may check it
          uncheckable.push(wname);
          continue;
        }
        if (!found.ok) {
          checks.fail("c_cosig", "cosignature by " + wname + " does not verify");
          throw tampered("c_cosig", "the cosignature by witness " + wname + " does not verify");
        }
        if (found.time <= BigInt(Math.floor(now)) + MAX_FUTURE_SKEW) cosigned.set(wname, Number(found.time));
      }
    }
    if (!logSigned.size) {
      checks.fail("c_log_sig", "no signature by the log's key");
      throw new VerifyError("cannot_verify", "c_log_sig", "the checkpoint is not signed by the log's key");
    }
    checks.pass("c_log_sig", checkpoint.origin);
    checkLogKeyRule(policy, checkpoint, logSigned, checks);
    const names = new Set(cosigned.keys());
    const detail = ([...names].sort().join(", ") || "none") + (uncheckable.length
      ? "; this browser cannot check the post-quantum (ML-DSA-44) cosignatures of " + uncheckable.sort().join(", ")
      : "");
    if (policy.quorum !== null && !satisfied(policy, policy.quorum, names)) {
      checks.fail("c_cosig", "cosigned by " + detail + "; quorum needs " + quorumNeeds(policy));
      throw new VerifyError("cannot_verify", "c_cosig",
        "witness quorum not met: cosigned by " + detail + " of " + policy.witnesses.size);
    }
    checks.pass("c_cosig", detail);
    return { checkpoint, cosigned };
  }

  // --- log key rotation (docs/thirty-years.md, "Log key rotation") ------------------------------------------
  // The twin of key_rule in tlogcore/logkey.py over the ranges the page's trust carries (verifierpage.py):
  // {required: vkey, allowed: [vkey]} for a checkpoint of `size`, or null when no rotation of this log is known.
  function logKeyRule(ranges, origin, size) {
    const chain = ranges.filter((r) => r.origin === origin);
    if (!chain.length) return null;
    let rule = { required: chain[0].old, allowed: [chain[0].old] };
    for (const r of chain) {
      if (size < r.from) break;
      rule = { required: r.new, allowed: size < r.until ? [r.new, r.old] : [r.new] };
    }
    return rule;
  }

  // A checkpoint must carry the key its size calls for and no key the log replaced before that size: one signed
  // by a retired key is loud (the log misbehaved or its old key is misused), never genuine.
  function checkLogKeyRule(policy, checkpoint, signedBy, checks) {
    const rule = logKeyRule(policy.keyRanges, checkpoint.origin, checkpoint.size);
    if (!rule) return;
    const retired = [...signedBy].filter((k) => !rule.allowed.includes(k));
    if (signedBy.has(rule.required) && !retired.length) {
      checks.pass("c_log_key", "size " + checkpoint.size);
      return;
    }
    const used = retired.length ? retired[0] : [...signedBy][0];
    const detail = "the checkpoint of size " + checkpoint.size + " is signed by the log key " + used +
      ", which the log replaced before that size; its key rotation calls for " + rule.required;
    checks.fail("c_log_key", detail);
    const error = new VerifyError("log_misbehaved", "c_log_key", detail);
    error.size = checkpoint.size.toString();  // shown beside the facts when it is the log's newest checkpoint
    throw error;
  }

  // The ranges the page's trust carries, checked for shape; sizes as BigInt like checkpoint sizes.
  function keyRangesOf(trust) {
    const ranges = Array.isArray(trust.log_keys) ? trust.log_keys : [];
    return ranges.map((r) => {
      const fields = ["origin", "old", "new", "from", "until"];
      if (!r || fields.some((f) => typeof r[f] !== "string")) throw policyError("a log key rotation is damaged");
      return { origin: r.origin, old: r.old, new: r.new, from: decimal(r.from, "from"), until: decimal(r.until, "until") };
    });
  }

  // --- statements -------------------------------------------------------------------------------------------
  function statementText(s) {
    const lines = ["tlog-statement/v1", "log " + s.origin, "kind " + s.kind, "signer " + s.signer, "time " + s.time];
    if (s.document !== undefined) lines.push("document " + s.document);
    if (s.issuer !== undefined) lines.push("issuer " + s.issuer);
    if (s.continues !== undefined) lines.push("continues " + s.continues);
    if (s.unsafeFrom !== undefined) lines.push("unsafe-from " + s.unsafeFrom);
    if (s.ref !== undefined) lines.push("ref " + s.ref);
    if (s.reason !== undefined) lines.push("reason " + s.reason);
    return lines.map((l) => l + "\n").join("");
  }

  // A statement's fields, strictly, its signature not checked (parseStatement checks it; the gap after an index
  // root needs only the kind and document of entries proven in the log).
  function statementFields(bytes) {
    const note = parseNote(bytes, 8 * 1024);
    const lines = note.text.slice(0, -1).split("\n");
    if (lines[0] !== "tlog-statement/v1") throw malformed("not a statement");
    const s = {};
    const order = ["log", "kind", "signer", "time", "document", "issuer", "continues", "unsafe-from", "ref", "reason"];
    const field = { log: "origin", "unsafe-from": "unsafeFrom" };
    let at = 0;
    for (const line of lines.slice(1)) {
      const space = line.indexOf(" ");
      const key = line.slice(0, space);
      const pos = order.indexOf(key, at);
      if (space <= 0 || pos < 0) throw malformed("statement field order");
      at = pos + 1;
      s[field[key] || key] = line.slice(space + 1);
    }
    if (!KINDS.includes(s.kind) || !s.origin || !s.signer || !s.time) throw malformed("statement fields");
    s.time = decimal(s.time, "statement time").toString();
    if ((s.document !== undefined) !== (s.kind === "issue" || s.kind === "revoke")) throw malformed("document");
    if (s.document !== undefined && !/^[0-9a-f]{64}$/.test(s.document)) throw malformed("document hash");
    if (s.continues !== undefined && s.kind !== "issuer-add") throw malformed("only an issuer-add continues a key");
    if (s.unsafeFrom !== undefined) {  // the stolen-key marker: issuer-retire only, canonical decimal
      if (s.kind !== "issuer-retire") throw malformed("only an issuer-retire carries unsafe-from");
      s.unsafeFrom = decimal(s.unsafeFrom, "unsafe-from").toString();
    }
    if (statementText(s) !== note.text || note.signatures.length !== 1) throw malformed("statement is not canonical");
    return { s, note };
  }

  async function parseStatement(bytes, checks) {
    const { s, note } = statementFields(bytes);
    const signer = await parseVkey(s.signer, "statement signer");
    const sig = note.signatures[0];
    if (signer.type !== 0x01 || sig.name !== signer.name || sig.id !== signer.id ||
        !(await ed25519Verify(signer.material, sig.sig, note.textBytes))) {
      checks.fail("c_statement", "signature by " + signer.name + " does not verify");
      throw tampered("c_statement", "the issuer's signature on the statement does not verify");
    }
    checks.pass("c_statement", signer.name);
    s.issuerName = signer.name;
    return s;
  }

  // --- RFC 9162 inclusion proof -----------------------------------------------------------------------------
  const nodeHash = (left, right) => sha256(concat(new Uint8Array([1]), left, right));
  async function rootFromInclusion(leaf, index, size, proof) {
    if (!(size > 0n && index >= 0n && index < size)) throw tampered("c_inclusion", "index is not in the tree");
    const inner = BigInt(bitLength(index ^ (size - 1n)));
    if (proof.length !== Number(inner) + popCount(index >> inner)) {
      throw tampered("c_inclusion", "the inclusion proof has the wrong length");
    }
    let fn = index;
    let sn = size - 1n;
    let acc = leaf;
    for (const sibling of proof) {
      if (sn === 0n) throw tampered("c_inclusion", "the inclusion proof is too long");
      if ((fn & 1n) === 1n || fn === sn) {
        acc = await nodeHash(sibling, acc);
        while (fn !== 0n && (fn & 1n) === 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        acc = await nodeHash(acc, sibling);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) throw tampered("c_inclusion", "the inclusion proof does not reach the root");
    return acc;
  }

  // --- bundles ----------------------------------------------------------------------------------------------
  function parseTextBundle(bytes) {
    let split = -1;
    for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 10 && bytes[i + 1] === 10) { split = i; break; }
    if (split < 0 || split + 2 >= bytes.length) throw malformed("no blank line before the checkpoint");
    let head;
    try { head = utf8Strict.decode(bytes.slice(0, split)); } catch (e) { throw malformed("bundle is not UTF-8"); }
    const lines = head.split("\n");
    if (lines.shift() !== "c2sp.org/tlog-proof@v1") throw malformed("not a tlog-proof bundle");
    if (!lines.length || !lines[0].startsWith("extra ")) throw malformed("bundle carries no statement");
    const extra = b64decode(lines.shift().slice(6), "statement");
    if (!lines.length || !lines[0].startsWith("index ")) throw malformed("no index line");
    const index = decimal(lines.shift().slice(6), "index");
    if (lines.length > 63) throw malformed("too many proof hashes");
    const proof = lines.map((l) => {
      const h = b64decode(l, "proof hash");
      if (h.length !== 32) throw malformed("proof hash");
      return h;
    });
    return { extra, index, proof, checkpoint: bytes.slice(split + 2) };
  }

  const QR = window.TLOG_QRLINK;

  // The binary form (layout at the top of tlogcore/bundle.py), rebuilt into the very same text bundle.
  async function fromBinary(bytes) {
    const r = new QR.Reader(bytes, malformed);
    if (!equal(r.take(3, "magic"), new Uint8Array([0x54, 0x4c, 0x01]))) throw malformed("not a binary bundle");
    const kindIndex = r.byte("kind");
    if (kindIndex >= KINDS.length) throw malformed("unknown statement kind");
    const s = { kind: KINDS[kindIndex], time: r.uvarint("time").toString(), origin: r.str("origin") };
    const signerName = r.str("signer");
    const signerKey = r.take(32, "signer key");
    s.signer = await vkeyString(signerName, 0x01, signerKey);
    if (s.kind === "issue" || s.kind === "revoke") {
      s.document = hex(r.take(32, "document"));
    } else {
      const issuerName = r.str("issuer");
      s.issuer = await vkeyString(issuerName, 0x01, r.take(32, "issuer key"));
    }
    const ref = r.str("ref");
    const reason = r.str("reason");
    if (ref) s.ref = ref;
    if (reason) s.reason = reason;
    const statement = await signedStatement(s, signerName, signerKey, r.take(64, "statement signature"));
    const index = r.uvarint("index");
    const proof = [];
    for (let n = r.byte("proof count"); n > 0; n--) proof.push(r.take(32, "proof hash"));
    const size = r.uvarint("tree size");
    const root = r.take(32, "root");
    const extensions = [];
    for (let n = r.byte("extension count"); n > 0; n--) extensions.push(r.str("extension"));
    const sigLines = [];
    for (let n = r.byte("signature count"); n > 0; n--) {
      const name = r.str("signature name") || s.origin;
      const blob = r.take(Number(r.uvarint("signature length")), "signature");
      if (blob.length < 5) throw malformed("signature is too short");
      sigLines.push("\u2014 " + name + " " + b64encode(blob) + "\n");
    }
    if (r.at !== bytes.length) throw malformed("trailing bytes");
    const checkpointText = [s.origin, size.toString(), b64encode(root), ...extensions].map((l) => l + "\n").join("");
    return textBundle(statement, index, proof, checkpointText, sigLines);
  }

  const idBytes = (id) => new Uint8Array([id >>> 24, (id >>> 16) & 255, (id >>> 8) & 255, id & 255]);
  async function signedStatement(s, signerName, signerKey, signature) {
    const signerId = await keyId(signerName, 0x01, signerKey);
    return statementText(s) + "\n\u2014 " + signerName + " " + b64encode(concat(idBytes(signerId), signature)) + "\n";
  }
  function textBundle(statement, index, proof, checkpointText, sigLines) {
    const text = "c2sp.org/tlog-proof@v1\nextra " + b64encode(utf8.encode(statement)) + "\nindex " + index + "\n" +
      proof.map((h) => b64encode(h) + "\n").join("") + "\n" + checkpointText + "\n" + sigLines.join("");
    return utf8.encode(text);
  }

  // A QR link's offline parts (tlogcore/qrlink.py) rebuilt into the tlog-proof bundle they stand for: the origin
  // and key names from the trust policy, the checkpoint's root from the inclusion proof (a wrong one fails the
  // log's signature). Cosignatures by keys the policy does not hold are left out: they could not count.
  async function bundleFromLink(parts, documentHex, policy) {
    const origins = new Set(policy.logs.map((k) => k.name));  // a rotated log: one origin, several keys
    if (parts.origin === null && origins.size !== 1) throw malformed("the code names no log");
    const origin = parts.origin === null ? policy.logs[0].name : parts.origin;
    const keys = policy.logs.filter((k) => k.name === origin);
    if (!keys.length) {
      throw new VerifyError("cannot_verify", "c_log_sig", "log " + origin + " is not in the trust policy");
    }
    const s = { kind: "issue", time: parts.time.toString(), origin, document: documentHex };
    s.signer = await vkeyString(parts.signerName, 0x01, parts.signerKey);
    if (parts.ref) s.ref = parts.ref;
    const statement = await signedStatement(s, parts.signerName, parts.signerKey, parts.statementSig);
    const leaf = await sha256(concat(new Uint8Array([0]), utf8.encode(statement)));
    const root = await rootFromInclusion(leaf, parts.index, parts.size, parts.proof);
    const checkpointText = origin + "\n" + parts.size + "\n" + b64encode(root) + "\n";
    // The code leaves out the log key's ID: the key whose signature verifies (the first, if none does: tampered).
    let log = keys[0];
    for (const k of keys) {
      if (await ed25519Verify(k.material, parts.logSig, utf8.encode(checkpointText))) log = k;
    }
    const sigLines = ["\u2014 " + origin + " " + b64encode(concat(idBytes(log.id), parts.logSig)) + "\n"];
    for (const c of parts.cosigs) {
      const witness = [...policy.witnesses.values()].find((w) => w.id === c.keyId);
      if (!witness) continue;
      const time = new Uint8Array(8);
      new DataView(time.buffer).setBigUint64(0, c.time);
      sigLines.push("\u2014 " + witness.name + " " + b64encode(concat(idBytes(c.keyId), time, c.sig)) + "\n");
    }
    return textBundle(statement, parts.index, parts.proof, checkpointText, sigLines);
  }

  async function verifyBundle(bundleBytes, policy, now, documentHex, checks) {
    const bundle = parseTextBundle(bundleBytes);
    const statement = await parseStatement(bundle.extra, checks);
    const trusted = await verifyCheckpoint(bundle.checkpoint, policy, now, checks);
    if (statement.origin !== trusted.checkpoint.origin) {
      throw tampered("c_inclusion", "the statement is for another log");
    }
    const leaf = await sha256(concat(new Uint8Array([0]), bundle.extra));
    checks.pass("c_leaf", hex(leaf).slice(0, 16) + "…");
    const root = await rootFromInclusion(leaf, bundle.index, trusted.checkpoint.size, bundle.proof);
    if (!equal(root, trusted.checkpoint.root)) {
      checks.fail("c_inclusion", "does not lead to the checkpoint's root");
      throw tampered("c_inclusion", "the inclusion proof does not lead to the checkpoint's root");
    }
    checks.pass("c_inclusion", "#" + bundle.index + " / " + trusted.checkpoint.size);
    if (documentHex !== undefined) {
      if (statement.document !== documentHex) {
        checks.fail("c_document", "the statement is about another document");
        throw tampered("c_document", "the log entry is about another document");
      }
      checks.pass("c_document", "");
    }
    return { statement, index: bundle.index, leaf, ...trusted };
  }

  // --- refresh (docs/thirty-years.md, "Refresh") -----------------------------------------------------------
  // RFC 9162 §2.1.4.2, the twin of verify_consistency in tlogcore/merkle.py: true when the old tree is a prefix
  // of the new one. Sizes are BigInt; a bundle's tree is never empty.
  async function consistent(oldSize, newSize, oldRoot, newRoot, proof) {
    if (!(0n < oldSize && oldSize <= newSize)) return false;
    if (oldSize === newSize) return proof.length === 0 && equal(oldRoot, newRoot);
    const path = (oldSize & (oldSize - 1n)) === 0n ? [oldRoot, ...proof] : proof.slice();
    if (!path.length || path.some((h) => h.length !== 32)) return false;
    let fn = oldSize - 1n;
    let sn = newSize - 1n;
    while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
    let oldAcc = path[0];
    let newAcc = path[0];
    for (const sibling of path.slice(1)) {
      if (sn === 0n) return false;
      if ((fn & 1n) === 1n || fn === sn) {
        oldAcc = await nodeHash(sibling, oldAcc);
        newAcc = await nodeHash(sibling, newAcc);
        while (fn !== 0n && (fn & 1n) === 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        newAcc = await nodeHash(newAcc, sibling);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    return sn === 0n && equal(oldAcc, oldRoot) && equal(newAcc, newRoot);
  }

  window.TLOG_MERKLE = Object.freeze({ consistent });  // for tests/test_web_consistency.py (the shared vectors)

  const misbehaved = (message) => new VerifyError("log_misbehaved", "c_refresh", message);

  async function proofHashes(path) {
    const r = await fetchOk(path);
    if (!r.ok) throw new VerifyError("cannot_verify", null, path + ": the log answered " + r.status);
    const body = await r.json();
    if (!body || !Array.isArray(body.proof)) throw new VerifyError("cannot_verify", null, path + ": no proof");
    return body.proof.map((h) => b64decode(String(h), "proof hash"));
  }

  // Move a verified bundle onto the log's newest checkpoint: verified under the policy, proven an extension of the
  // bundle's own (else the log misbehaved: loud, never genuine), and the entry proven in it. Returns the newest
  // (the verdict then stands on it), or null when the log cannot be asked (the bundle's own checkpoint stands).
  async function refreshOnPage(v, policy, now, checks) {
    let newest;
    try {
      const r = await fetch(logUrl("/checkpoint"), { cache: "no-cache" });
      if (!r.ok) return null;
      newest = await verifyCheckpoint(new Uint8Array(await r.arrayBuffer()), policy, now, new Checks(true));
    } catch (e) {
      if (e instanceof VerifyError && e.check === "c_log_key") {  // signed by a replaced key: loud, never skipped
        checks.fail("c_log_key", e.message);
        state.facts.newestRefused = e.size;
        throw e;
      }
      return null; /* unreachable, or not vouched for by the policy */
    }
    const from = v.checkpoint;
    const to = newest.checkpoint;
    state.facts.newestSize = to.size.toString();
    if (to.size < from.size) {
      throw misbehaved("the log's newest checkpoint (size " + to.size + ") is smaller than this proof's (" + from.size + ")");
    }
    const proof = to.size > from.size ? await proofHashes("/api/v1/proof/consistency?old=" + from.size + "&new=" + to.size) : [];
    if (!(await consistent(from.size, to.size, from.root, to.root, proof))) {
      throw misbehaved("this proof's checkpoint (size " + from.size + ") is not a prefix of the log's newest (size " +
        to.size + "): the log forked its history");
    }
    const inclusion = to.size > from.size ? await proofHashes("/api/v1/proof/inclusion?index=" + v.index + "&size=" + to.size) : null;
    if (inclusion && !equal(await rootFromInclusion(v.leaf, v.index, to.size, inclusion), to.root)) {
      throw misbehaved("the log's proof of entry #" + v.index + " in its newest checkpoint does not hold");
    }
    // Name the witnesses the verdict now stands on: after a refresh they are the newest checkpoint's (its
    // post-quantum cosignatures among them), not the ones the old proof carried (docs/thirty-years.md, "Refresh").
    const by = [...newest.cosigned.keys()].sort().join(", ") || "none";
    checks.pass("c_refresh", "size " + from.size + " → " + to.size + ", cosigned by " + by);
    return newest;
  }

  // The facts now stand on the newest checkpoint: its size, its cosigners and their time; the old size is kept.
  function reliedOn(newest, from, policy) {
    if (!newest) return;
    const f = state.facts;
    Object.assign(f, {
      size: newest.checkpoint.size.toString(), witnesses: witnessNames(policy, [...newest.cosigned.keys()]),
      newest: newestTime(newest.cosigned), newestSize: newest.checkpoint.size.toString(),
      refreshedFrom: newest.checkpoint.size === from.size ? null : from.size.toString(),
      witnessCount: witnessNames(policy, [...policy.witnesses.keys()]).length,
    });
  }

  // --- page -------------------------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const I18N = window.TLOG_I18N;
  const state = { lang: "en", verdict: null, reasonKey: null, detail: "", facts: null, checks: [], fileKey: null,
                  expected: null, paper: null, base: null, trust: null, trustChanged: false, trustRotated: false, revokeReason: "" };

  function t(key, vars) {
    let s = (I18N[state.lang] && I18N[state.lang][key]) || I18N.en[key] || key;
    // A value may be a function, called now: words that depend on the language shown (an age) or on the time
    for (const [k, v] of Object.entries(vars || {})) {
      s = s.replace("{" + k + "}", String(typeof v === "function" ? v() : v));
    }
    return s;
  }

  // A technical detail line in the chosen language: Khmer through window.TLOG_DETAIL_KM (i18n.js), identifiers
  // kept as they are; a line it does not know stays English. Returns [text, lang].
  function detailText(text) {
    if (state.lang !== "km" || !text) return [text, "en"];
    for (const [pattern, template] of window.TLOG_DETAIL_KM || []) {
      const m = pattern.exec(text);
      if (!m) continue;
      const nested = template.startsWith("…");
      const inner = nested ? detailText(m[1])[0] : null;
      const out = (nested ? template.slice(1) : template).replace(/\$(\d)/g, (_, i) => (nested ? inner : m[+i] ?? ""));
      return [out, "km"];
    }
    return [text, "en"];
  }

  class Checks {
    // quiet: a side check (a revocation's proof, the newest checkpoint) that must not replace the list shown
    constructor(quiet) { this.items = []; this.quiet = Boolean(quiet); }
    pass(key, detail, vars) { this.set(key, true, detail, vars); }  // vars: the values the label names ({n})
    note(key, detail, vars) { this.set(key, null, detail, vars); }  // neither passed nor failed: not proven
    fail(key, detail) { this.set(key, false, detail); }
    set(key, ok, detail, vars) {
      const old = this.items.find((c) => c.key === key);
      if (old && old.ok === false) return;
      if (old) Object.assign(old, { ok, detail, vars }); else this.items.push({ key, ok, detail, vars });
      if (this.quiet) return;
      state.checks = this.items;
      renderChecks();
    }
  }

  function renderChecks() {
    const list = $("check-list");
    list.replaceChildren(...state.checks.map((c) => {
      const li = document.createElement("li");
      li.className = c.ok ? "ok" : c.ok === null ? "note" : "fail";
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.setAttribute("aria-hidden", "true");
      mark.textContent = c.ok ? "✓" : c.ok === null ? "!" : "✗";
      const label = document.createElement("span");
      label.textContent = t(c.key, c.vars) + (c.ok === false ? " — ✗" : "");
      li.append(mark, label);
      if (c.detail) {
        const d = document.createElement("span");
        d.className = "detail";
        [d.textContent, d.lang] = detailText(c.detail);
        li.append(" ", d);
      }
      return li;
    }));
  }

  function ageText(seconds) {
    if (seconds < 60) return t("age_now");
    if (seconds < 3600) return t("age_min", { n: Math.floor(seconds / 60) });
    if (seconds < 86400) return t("age_hour", { n: Math.floor(seconds / 3600) });
    return t("age_day", { n: Math.floor(seconds / 86400) });
  }

  function render() {
    document.documentElement.lang = state.lang;
    document.title = t("title");
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    $("lang-km").setAttribute("aria-pressed", String(state.lang === "km"));
    $("lang-en").setAttribute("aria-pressed", String(state.lang === "en"));
    const box = $("verdict");
    box.className = "verdict " + (state.verdict || "pending");
    box.dataset.verdict = state.verdict || "";
    $("verdict-label").textContent = state.verdict ? t("v_" + state.verdict) : t("checking");
    $("verdict-reason").textContent = state.reasonKey ? t(state.reasonKey) : "";
    $("verdict-why").hidden = !state.revokeReason || state.verdict !== "revoked";
    $("verdict-why").textContent = t("reason_given", { reason: state.revokeReason });
    // Technical detail one click away, never in place of the plain reason; in Khmer too, identifiers as they are.
    $("verdict-more").hidden = !state.detail;
    [$("verdict-detail").textContent, $("verdict-detail").lang] = detailText(state.detail);
    renderSite();
    const f = state.facts;
    $("details").hidden = !f;
    if (f) {
      $("f-issuer").textContent = issuerText(f);
      $("f-ref").textContent = f.ref || "—";
      $("f-kind").textContent = t("kind_" + f.kind) === "kind_" + f.kind ? f.kind : t("kind_" + f.kind);
      $("f-time").textContent = new Date(Number(f.time) * 1000).toISOString().slice(0, 10);
      $("f-hash").textContent = f.document;
      $("f-entry").textContent = "#" + f.index + " · " + f.origin + " · " + f.size +
        (f.refreshedFrom ? " — " + t("refreshed_from", { n: f.refreshedFrom }) : "");
      // With no witnesses configured nothing is "vouched for": say that the log alone stands behind its record.
      $("f-witnesses").textContent = f.witnessCount === 0 ? t("witnesses_none") : (f.witnesses.join(", ") || t("none")) +
        " — " + t("quorum_of", { n: f.witnesses.length, m: f.witnessCount, k: f.quorumNeeds });
      $("f-age").textContent = f.newest ? ageText(Math.max(0, Date.now() / 1000 - f.newest)) : "—";
      $("f-mode").textContent = t(!f.offline ? "mode_online" : f.checked ? "mode_offline_checked" : "mode_offline");
      $("f-newest").textContent = f.newestRefused ? t("newest_refused", { n: f.newestRefused })
        : f.newestSize ? t("newest_size", { n: f.newestSize }) : t("newest_unknown");
    }
    const unchecked = Boolean(f && f.offline && !f.checked && state.verdict &&
      !["tampered", "log_misbehaved"].includes(state.verdict));
    $("verdict-note").hidden = !unchecked;
    renderPaper();
    $("file-result").textContent = state.fileKey ? t(state.fileKey) : "";
    $("file-result").className = "file-result " + (state.fileKey === "file_match" ? "ok" : state.fileKey ? "fail" : "");
    renderChecks();
  }

  // The issuer as the registry names it (its label), with its key; or what is not known of it.
  function issuerText(f) {
    const r = f.registration;
    if (r === "unchecked") return f.issuer + " — " + t("issuer_unchecked") + " (" + f.key + ")";
    if (r === null) return f.issuer + " — " + t("issuer_not_reached") + " (" + f.key + ")";  // stopped before it
    if (r === "none") return t("issuer_unregistered") + " (" + f.key + ")";
    return (r.label || f.issuer) + " — " + t("registered_at", { n: r.index }) + " (" + f.key + ")";
  }

  // Which site runs this check and for which log: an impostor page has to show another host or another log.
  function renderSite() {
    const trust = state.trust;
    $("site-host").textContent = location.host || location.protocol;
    $("site-log").textContent = trust ? trust.origin : "—";
    $("trust-warning").hidden = !state.trustChanged;
    $("trust-notice").hidden = !state.trustRotated || state.trustChanged;
  }

  // The paper's fields as the issuer logged them (their hash is the logged document), large, to compare by eye.
  function renderPaper() {
    // Shown only once verified: fields that do not hash to a logged document are not to be compared with anything.
    $("paper").hidden = !state.paper || !["genuine", "revoked"].includes(state.verdict);
    $("file").hidden = Boolean(state.paper);
    if (!state.paper) return;
    $("paper-fields").replaceChildren(...state.paper.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }));
  }

  function setVerdict(verdict, reasonKey, detail) {
    state.verdict = verdict;
    state.reasonKey = reasonKey;
    state.detail = detail || "";
    render();
    document.body.dataset.done = "1";
  }

  function setLang(lang) {
    state.lang = lang;
    try { localStorage.setItem("tlog-lang", lang); } catch (e) { /* private mode */ }
    render();
  }

  // The trust this page was built with (logserver/webpage.py, or `tlog verifier-site`): a JSON data block in the
  // HTML, never fetched at verification time. {origin, log_vkey, registry: [vkey], policy: tlog-policy text,
  // log_url: where the log answers, "" for this host}. Remembered per site on first use; a change is shown loudly.
  function builtInTrust() {
    const el = document.getElementById("tlog-trust");
    try {
      const trust = el ? JSON.parse(el.textContent) : null;
      if (trust && typeof trust.policy === "string" && Array.isArray(trust.registry) &&
          typeof trust.origin === "string" && typeof trust.log_url === "string") return trust;
    } catch (e) { /* treated as missing */ }
    return null;
  }

  function pinnedKey(trust) { return JSON.stringify({ policy: trust.policy, registry: trust.registry }); }

  async function rememberTrust(trust) {
    let pinned = null;
    try { pinned = localStorage.getItem("tlog-trust"); } catch (e) { return; /* private mode: nothing remembered */ }
    if (pinned === null || pinned === pinnedKey(trust)) {
      if (pinned === null) try { localStorage.setItem("tlog-trust", pinnedKey(trust)); } catch (e) { /* full */ }
      return;
    }
    let old = null;
    try { old = JSON.parse(pinned); } catch (e) { old = null; }
    if (old && typeof old.policy === "string" && Array.isArray(old.registry) && await authorisedChange(old, trust)) {
      try { localStorage.setItem("tlog-trust", pinnedKey(trust)); } catch (e) { /* full */ }
      state.trustRotated = true; // quietly accepted, with a notice
      return;
    }
    state.trustChanged = true;
  }

  // A change of trust the remembered trust authorised (tlogcore/trustrotation.py, its twin): a chain of rotations
  // from the remembered trust to this page's, each a signed note "tlog-trust-rotation/v1 / from <old> / to <new>"
  // (SHA-256 of each trust text) signed by a registry key of the trust it leaves. Anything else warns loudly.
  const trustText = (t) => t.policy + t.registry.map((k) => "# registry " + k + "\n").join("");
  const trustDigest = async (t) => hex(await sha256(utf8.encode(trustText(t))));

  async function authorisedChange(old, trust) {
    const target = await trustDigest(trust);
    const rotations = Array.isArray(trust.rotations) ? trust.rotations : [];
    let current = old;
    for (let step = 0; step <= rotations.length; step++) {
      const from = await trustDigest(current);
      if (from === target) return step > 0;
      let next = null;
      for (const r of rotations) if (await rotationSigned(r, current, from)) { next = r; break; }
      if (!next) return false;
      current = { policy: next.policy, registry: next.registry };
    }
    return false;
  }

  async function rotationSigned(r, current, from) {
    try {
      if (typeof r.policy !== "string" || !Array.isArray(r.registry) || typeof r.note !== "string") return false;
      const note = parseNote(utf8.encode(r.note), 4096);
      const to = await trustDigest(r);
      if (note.text !== "tlog-trust-rotation/v1\nfrom " + from + "\nto " + to + "\n") return false;
      for (const vkey of current.registry) {
        const key = await parseVkey(vkey, "registry key");
        for (const s of note.signatures) {
          if (key.type === 0x01 && s.name === key.name && s.id === key.id &&
              await ed25519Verify(key.material, s.sig, note.textBytes)) return true;
        }
      }
    } catch (e) { /* a rotation that does not parse authorises nothing */ }
    return false;
  }

  function acceptNewTrust() {
    try { localStorage.setItem("tlog-trust", pinnedKey(state.trust)); } catch (e) { /* private mode */ }
    state.trustChanged = false;
    run();
  }

  async function loadPolicy(checks) {
    const trust = state.trust;
    if (!trust) {
      checks.fail("c_policy", "this copy of the page carries no trust policy");
      throw new VerifyError("cannot_verify", "c_policy", "");
    }
    $("policy-text").textContent = trust.policy + trust.registry.map((k) => "# registry " + k + "\n").join("");
    let policy;
    try {
      policy = await parsePolicy(trust.policy);
      policy.keyRanges = keyRangesOf(trust);
    } catch (e) {
      throw new VerifyError("cannot_verify", "c_policy", "trust policy: " + e.message);
    }
    checks.pass("c_policy", [...new Set(policy.logs.map((l) => l.name))].join(", ")); // a rotated log named once
    return policy;
  }

  const logUrl = (path) => (state.trust ? state.trust.log_url : "") + path;

  function factsFrom(v, policy, offline) {
    return {
      issuer: v.statement.issuerName, key: v.statement.signer, registration: offline ? "unchecked" : null, ref: v.statement.ref, kind: v.statement.kind, time: v.statement.time,
      document: v.statement.document, index: v.index.toString(), origin: v.checkpoint.origin,
      size: v.checkpoint.size.toString(), witnesses: witnessNames(policy, [...v.cosigned.keys()]),
      witnessCount: witnessNames(policy, [...policy.witnesses.keys()]).length,
      quorumNeeds: quorumNeeds(policy), newest: newestTime(v.cosigned), offline,
      checked: !offline, newestSize: null,
    };
  }

  async function fetchOk(url) {
    let r;
    try { r = await fetch(logUrl(url), { cache: "no-cache" }); } catch (e) { throw new VerifyError("cannot_verify", null, "network"); }
    return r;
  }

  // A document's status from the statements about it that this page verified: [{kind, key}] with the signer's
  // verifier key, and the registry's verified continuations {new key: the key it continues}. The one rule of
  // tlogcore/status.py (a revocation counts only by the issuing key or a key that continues it; key names are not
  // identity); both run tests/vectors/status/status.json.
  function continuedKeys(key, continues) {
    const keys = new Set([key]);
    for (let k = continues.get(key); k !== undefined && !keys.has(k); k = continues.get(k)) keys.add(k);
    return keys;
  }
  const countsAgainst = (issuing, rotations) => (s) => s.kind === "revoke" &&
    [...continuedKeys(s.key, rotations)].some((k) => issuing.has(k));
  function documentStatus(statements, continues) {
    const rotations = new Map(Object.entries(continues || {}));
    const issuing = new Set(statements.filter((s) => s.kind === "issue").map((s) => s.key));
    if (!issuing.size) return "unknown";
    return statements.some(countsAgainst(issuing, rotations)) ? "revoked" : "valid";
  }
  // Stolen keys (tlogcore/status.py `signed_while_unsafe`, same vectors): what a key retired with unsafe-from N
  // signed at log index N or later is flagged; before N it stays valid. unsafe: Map vkey -> N (BigInt).
  function signedWhileUnsafe(signer, index, unsafe) {
    const marker = unsafe.get(signer);
    return marker !== undefined && BigInt(index) >= marker;
  }
  window.TLOG_STATUS = Object.freeze({ documentStatus, signedWhileUnsafe });

  // The registry's word on each key the listing names: the issuer-add entries the log returned, each verified here
  // (its proof under a checkpoint the policy accepts, signed by a registry key this page pins). Map vkey -> {index,
  // label, continues}. A key with no such entry was never added by the registry, as far as this log answered.
  async function registrationsOf(listing, policy, now, trust) {
    const found = new Map();
    for (const r of Array.isArray(listing.registrations) ? listing.registrations : []) {
      let v;
      try {
        v = await verifyBundle(utf8.encode(r.bundle), policy, now, undefined, new Checks(true));
      } catch (e) { continue; /* a registration whose proof fails proves nothing */ }
      const s = v.statement;
      if (s.kind !== "issuer-add" || s.issuer !== r.key || !trust.registry.includes(s.signer)) continue;
      found.set(s.issuer, { index: v.index, label: s.ref, continues: s.continues });
    }
    return found;
  }

  // The issuer-retire entries the listing returned, each verified here like a registration (its proof under a
  // checkpoint the policy accepts): [{key, index, unsafeFrom, counts}], counts when signed by a registry key this
  // page pins. A proof that fails is kept aside (failed), as in statementsOf: it fails the check that needs it.
  async function retirementsOf(listing, policy, now, trust) {
    const items = [];
    const failed = [];
    for (const r of Array.isArray(listing.retirements) ? listing.retirements : []) {
      let v;
      try {
        v = await verifyBundle(utf8.encode(String(r.bundle)), policy, now, undefined, new Checks(true));
      } catch (e) {
        failed.push({ index: String(r.index), error: e });
        continue;
      }
      const s = v.statement;
      if (s.kind !== "issuer-retire" || s.issuer !== r.key) continue;
      const counts = trust.registry.includes(s.signer);
      items.push({ key: s.issuer, index: v.index, unsafeFrom: s.unsafeFrom, counts });
    }
    return { items, failed };
  }
  // The keys reported stolen among them: vkey -> N (what it signed from entry N on is flagged).
  function stolenKeysOf(retired) {
    const found = new Map();
    for (const r of retired.items) if (r.counts && r.unsafeFrom !== undefined) found.set(r.key, BigInt(r.unsafeFrom));
    return found;
  }
  // The line on the signing key: proven not reported stolen when the key index proved it (`proven`: the detail of
  // the range checked, docs/status-proofs.md §12), else the log's word; or the stolen verdict.
  function stolenKeyVerdict(v, stolen, checks, proven) {
    const signer = v.statement.signer;
    if (signedWhileUnsafe(signer, v.index, stolen)) {
      checks.fail("c_key_safe", "signed in #" + v.index + "; key reported stolen, unsafe from #" + stolen.get(signer));
      return ["stolen", "r_stolen", ""];
    }
    const before = stolen.has(signer) ? "signed in #" + v.index + ", before the key was reported stolen (#" +
      stolen.get(signer) + ")" : null;
    if (proven) checks.pass("c_key_safe_proven", before || proven);
    else checks.pass("c_key_safe_unproven", before || t("none"));
    return null;
  }

  function continuationsOf(registered) {
    const out = {};
    for (const [key, r] of registered) if (r.continues !== undefined) out[key] = r.continues;
    return out;
  }

  // The statements the log returned about h, each proven here by its own bundle: [{index, statement}], the index
  // and kind those of the signed, proven entry, never the answer's JSON. A proof that does not verify is kept
  // aside (failed): it counts for nothing, and fails any verdict that needs that entry.
  async function statementsOf(listing, policy, now, h) {
    const items = [];
    const failed = [];
    for (const s of Array.isArray(listing.statements) ? listing.statements : []) {
      let v;
      try {
        v = await verifyBundle(utf8.encode(String(s.bundle)), policy, now, h, new Checks(true));
      } catch (e) {
        failed.push({ index: String(s.index), error: e });
        continue;
      }
      if (String(v.index) !== String(s.index)) {
        throw tampered("c_status_list", "the log's answer names entry " + s.index + ", but its proof is for entry " + v.index);
      }
      items.push({ index: v.index, statement: v.statement });
    }
    return { items, failed };
  }

  const issuingKeys = (all) => new Set(all.filter((r) => r.statement.kind === "issue").map((r) => r.statement.signer));

  // The revocation that makes the document revoked under the one status rule (documentStatus: by an issuing key or
  // a key that continues one), among the verified statements; null when the document stands.
  function revocationOf(items, issue, registered) {
    const counts = countsAgainst(issuingKeys([issue, ...items]), new Map(Object.entries(continuationsOf(registered))));
    return items.find((r) => counts({ kind: r.statement.kind, key: r.statement.signer })) || null;
  }

  // Every registration that decides whether a revocation counts must be in the answer (the twin of
  // tlogcore/status.py unshown_registration): a revocation's signer that is not an issuing key, and each key on its
  // chain of continuations. The log returns them all; one left out would make a rotated key's revocation not count.
  function checkRegistrationsShown(items, issue, registered) {
    const rotations = new Map(Object.entries(continuationsOf(registered)));
    const issuing = issuingKeys([issue, ...items]);
    for (const r of items.filter((x) => x.statement.kind === "revoke")) {
      const seen = new Set();
      for (let key = r.statement.signer; key !== undefined && !issuing.has(key) && !seen.has(key); key = rotations.get(key)) {
        if (!registered.has(key)) {
          throw tampered("c_status_list", "the revocation in entry " + r.index + " relies on key " + key +
            ", but the log's answer leaves out that key's registration");
        }
        seen.add(key);
      }
    }
  }

  // The issuing key must have been added by the registry before the document's entry (tlog verify does the same).
  // A registration the log offered but whose proof does not verify here (e.g. under a checkpoint the witnesses have
  // not cosigned yet) proves nothing either way: "cannot verify", never "not from a registered issuer".
  function registrationVerdict(v, registered, checks, listing) {
    const r = registered.get(v.statement.signer);
    const offered = (Array.isArray(listing.registrations) ? listing.registrations : [])
      .some((x) => x.key === v.statement.signer);
    if (!r && offered) {
      throw new VerifyError("cannot_verify", "c_registered", "the log's proof of this key's registration does not verify here");
    }
    if (!r || !(r.index < v.index)) {
      state.facts.registration = "none";
      checks.fail("c_registered", "key " + v.statement.signer + " has no issuer-add entry before #" + v.index);
      return ["unregistered", "r_unregistered", ""];
    }
    state.facts.registration = { label: r.label, index: r.index.toString() };
    checks.pass("c_registered", (r.label || "") + " #" + r.index);
    return null;
  }

  // --- provable status (docs/status-proofs.md §9): the log's complete list of entries about the document ------
  // Everything here is proven in `anchor`, the checkpoint the verdict stands on (never one the log picks for it).
  const SP = window.TLOG_STATUS_PROOF;
  // Entries after the index root this page reads itself, as tools/statusproof.py MAX_GAP: at most five entry
  // tiles, each bound to the anchor by one inclusion proof. A longer gap is not read, and then nothing is proven.
  const MAX_PAGE_GAP = 1024n;
  const INDEX_ROOT_HEADERS = [utf8.encode("tlog-index-root/v1\n"), utf8.encode("tlog-index-root/v2\n")];
  const LOG_KEY_HEADER = utf8.encode("tlog-log-key/v1\n"); // tlogcore/logkey.py: a log key rotation, no document
  const startsWith = (bytes, prefix) => bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
  const hexBytes = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
  const leafHash = (data) => sha256(concat(new Uint8Array([0]), data));

  // Whether `leaf` is entry `index` of the anchor's tree, by the log's inclusion proof for that size.
  async function inAnchor(leaf, index, anchor) {
    const proof = await proofHashes("/api/v1/proof/inclusion?index=" + index + "&size=" + anchor.size);
    return { proof, ok: equal(await rootFromInclusion(leaf, index, anchor.size, proof), anchor.root) };
  }

  // The logged index-root the proof is for: entry p of the anchor, signed by a registry key this page pins, for
  // this log, covering only entries before itself, and stating the root and size the proof names. Null when p is
  // not inside the anchor (an offline proof's old checkpoint): then nothing is proven against it.
  async function indexRootOf(served, anchor) {
    const at = BigInt(served.index_root.index);
    if (at >= anchor.size) return null;
    const data = b64decode(String(served.index_root.statement), "index root");
    if (!(await inAnchor(await leafHash(data), at, anchor)).ok) throw tampered("c_status_list", "entry " + at + " is not proven in the log");
    const note = parseNote(data, 1024);
    let root;
    try { root = SP.parseIndexRootText(note.text); } catch (e) { throw tampered("c_status_list", String(e.message)); }
    const signer = await parseVkey(root.signer, "index-root signer");
    const sig = note.signatures[0];
    if (!state.trust.registry.includes(root.signer) || note.signatures.length !== 1 || sig.name !== signer.name ||
        sig.id !== signer.id || !(await ed25519Verify(signer.material, sig.sig, note.textBytes))) {
      throw tampered("c_status_list", "the index root is not signed by the log's registry key");
    }
    if (root.origin !== anchor.origin || root.size > at) throw tampered("c_status_list", "the index root is for another log");
    if (root.size !== BigInt(served.size) || b64encode(root.root) !== served.root) {
      throw tampered("c_status_list", "the status proof is not for the logged index root");
    }
    return { ...root, entry: at };
  }

  // Entry tile `tile` of the anchor's tree, its entries bound to the anchor's root: their tree hash must be the node
  // that the inclusion proof of one of them (`at`, inside the tile) passes through.
  async function provenTile(tile, at, anchor) {
    const first = tile * SP.TILE_WIDTH;
    const width = anchor.size - first < SP.TILE_WIDTH ? anchor.size - first : SP.TILE_WIDTH;
    const r = await fetchOk("/" + SP.entryTilePath(tile, width));
    if (!r.ok) throw new VerifyError("cannot_verify", "c_status_list", "entries " + first + "+: the log answered " + r.status);
    let entries;
    try { entries = SP.splitEntryBundle(new Uint8Array(await r.arrayBuffer()), Number(width)); } catch (e) {
      throw tampered("c_status_list", String(e.message));
    }
    const leaves = [];
    for (const data of entries) leaves.push(await leafHash(data));
    const { proof, ok } = await inAnchor(leaves[Number(at)], first + at, anchor);
    const own = proof.slice(0, SP.inclusionLength(at, width));
    if (!ok || !equal(await rootFromInclusion(leaves[Number(at)], at, width, own), await SP.logTreeHash(leaves))) {
      throw tampered("c_status_list", "the log's entries " + first + "–" + (first + width - 1n) + " do not match its checkpoint");
    }
    return entries;
  }

  // Among entries [from, anchor size), read here from the log's entry tiles: the issue and revoke entries about h
  // (`about`), and the issuer-add and issuer-retire entries with the key each names (`registry`, §12).
  async function gapEntries(h, from, anchor) {
    const found = [];
    const registry = [];
    for (let tile = from / SP.TILE_WIDTH; tile * SP.TILE_WIDTH < anchor.size; tile++) {
      const first = tile * SP.TILE_WIDTH;
      const entries = await provenTile(tile, from > first ? from - first : 0n, anchor);
      for (const [k, data] of entries.entries()) {
        const index = first + BigInt(k);
        if (index < from || INDEX_ROOT_HEADERS.some((h) => startsWith(data, h)) || startsWith(data, LOG_KEY_HEADER)) continue;
        let s;
        try { s = statementFields(data).s; } catch (e) { throw tampered("c_status_list", "entry " + index + " of the log does not parse"); }
        if (s.document === h) found.push({ index, kind: s.kind });  // its signature: checked on the answer's copy
        if (s.issuer !== undefined) registry.push({ index, kind: s.kind, key: s.issuer });
      }
    }
    return { about: found, registry };
  }

  async function statusRecord(served, h, root) {
    try {
      const recordBytes = served.record === null ? null : b64decode(served.record, "status record");
      return await SP.verifyStatus(hexBytes(h), recordBytes, b64decode(served.proof, "status proof"), root.root);
    } catch (e) {
      if (e instanceof SP.StatusProofError) throw tampered("c_status_list", e.message);
      throw e;
    }
  }

  // Every entry the index (and the gap) lists is among the verified statements, of the listed kind; and no other
  // verified statement lies below the point checked.
  function checkListed(listed, found, checkedTo) {
    for (const [i, kind] of listed) {
      if (found.items.some((x) => x.index === i && x.statement.kind === kind)) continue;
      const failure = found.failed.find((x) => x.index === String(i));
      if (failure) throw failure.error;
      throw leftOut("c_status_list", "the log's own index lists entry " + i + " (" + kind + "), but the log did not return it");
    }
    const extra = found.items.find((x) => x.index < checkedTo && !listed.has(x.index));
    if (extra) throw tampered("c_status_list", "entry " + extra.index + " is not in the log's own index");
  }

  // The index's record, and the gap after it when short enough to read, against the verified statements. Null: no
  // index proof to check (the page then never says the list is complete). `complete` false: the gap was too long,
  // or the anchor is not vouched current (`stale`, said by `freshness`), and the page says that the status is the
  // log's word (as `tlog verify`: ProvenStatus.complete, and its stale_words).
  async function provenStatus(listing, found, h, anchor, checks, stale) {
    const served = listing.index;
    if (!served) return null; // said in the revocation check's detail: "none — not proven"
    const root = await indexRootOf(served, anchor);
    if (!root) return null;
    const record = await statusRecord(served, h, root);
    const listed = new Map();
    for (const i of record ? record.issued : []) listed.set(i, "issue");
    for (const i of record ? record.revoked : []) listed.set(i, "revoke");
    const complete = anchor.size - root.size <= MAX_PAGE_GAP;
    const checkedTo = complete ? anchor.size : root.size;
    const gap = complete ? await gapEntries(h, root.size, anchor) : { about: [], registry: [] };
    for (const e of gap.about) listed.set(e.index, e.kind);
    checkListed(listed, found, checkedTo);
    const where = " (index root #" + root.entry + ")";
    const read = checkedTo > root.size ? ", " + root.size + "–" + (checkedTo - 1n) : "";
    const detail = "#0–" + (root.size - 1n) + read + where;
    if (!complete) {
      checks.note("c_status_partial", "#0–" + (root.size - 1n) + where, { n: root.size, m: anchor.size - root.size });
    } else if (!stale) {
      checks.pass("c_status", detail);
    }
    // keys: the key index root (null under a v1 root); registry: the gap's registry entries, for keyStatusProven
    return { size: root.size, checkedTo, complete: complete && !stale, detail,
             keys: root.keys, registry: gap.registry };
  }

  // --- the signing key's status (docs/status-proofs.md §12): the key index, whose root a v2 index root states ----
  // The key's record (its issuer-add and issuer-retire entries in [0, N)), proven as a document's status is. Under a
  // v2 root the log must give it: none, or a proof that does not lead to the root, is tampered.
  async function keyRecord(served, key, keysRoot) {
    const items = (Array.isArray(served.keys) ? served.keys : []).filter((x) => x && x.key === key);
    if (!items.length) throw tampered("c_key_status", "the log's answer gives no key index proof for key " + key);
    let record = null;
    for (const item of items) {
      try {
        const bytes = item.record === null ? null : b64decode(String(item.record), "key record");
        record = await SP.verifyKeyStatus(key, bytes, b64decode(String(item.proof), "key proof"), keysRoot);
      } catch (e) {
        if (!(e instanceof SP.StatusProofError)) throw e;
        throw tampered("c_key_status", "the key index proof for key " + key + " does not hold: " + e.message);
      }
    }
    return record;
  }

  // The entries that add and retire `key`: its record's (below the index root; null: none), then the gap's.
  function keyListed(key, record, registry) {
    const listed = new Map();
    for (const i of record ? record.added : []) listed.set(i, "issuer-add");
    for (const i of record ? record.retired : []) listed.set(i, "issuer-retire");
    for (const e of registry) if (e.key === key) listed.set(e.index, e.kind);
    return listed;
  }

  // Every retirement of the key that `listed` names was returned and verified here.
  function checkRetirementsShown(key, listed, retired) {
    for (const [i, kind] of listed) {
      if (kind !== "issuer-retire" || retired.items.some((r) => r.key === key && r.index === i)) continue;
      const failure = retired.failed.find((x) => x.index === String(i));
      if (failure) throw failure.error;
      throw leftOut("c_key_status", "the log left out entry " + i + ", which retires key " + key);
    }
  }

  // Every retirement of the key that its record or the gap lists was returned and verified here, and every one
  // returned below the point checked is listed; so is its registration, and none is listed that was not returned.
  function checkKeyListed(key, listed, registration, retired, checkedTo, offered) {
    checkRetirementsShown(key, listed, retired);
    const unlisted = (i, kind) => i < checkedTo && listed.get(i) !== kind;
    const notIndexed = (i, what) => tampered("c_key_status", "entry " + i + ", which " + what + " key " + key +
      ", is not in the log's own key index");
    const extra = retired.items.find((r) => r.key === key && unlisted(r.index, "issuer-retire"));
    if (extra) throw notIndexed(extra.index, "retires");
    if (registration && unlisted(registration.index, "issuer-add")) throw notIndexed(registration.index, "adds");
    const added = [...listed].find(([, kind]) => kind === "issuer-add");
    if (!registration && added && offered) {  // shown, but its proof fails here: as registrationVerdict
      throw new VerifyError("cannot_verify", "c_registered",
        "the log's proof of this key's registration does not verify here");
    }
    if (!registration && added) {
      throw leftOut("c_key_status", "the log left out entry " + added[0] + ", which adds key " + key);
    }
  }

  // Whether "not reported stolen" is proven for the key that signed the issue `v`: under a v2 root the record of
  // each key that signed a statement about the document is checked against the registration and retirements shown
  // (tampered if they disagree), as `tlog verify` does; proven where the document's status is (the gap read, the
  // anchor vouched current). A v1 root states no key index: the log's word, but a retirement of such a key that
  // this page read in the gap itself must still be among those shown (tampered otherwise). No index: the log's word.
  async function keyStatusProven(proven, listing, v, found, registered, retired) {
    if (!proven) return false;
    for (const key of new Set([v.statement.signer, ...found.items.map((x) => x.statement.signer)])) {
      if (!proven.keys) {
        checkRetirementsShown(key, keyListed(key, null, proven.registry), retired);
        continue;
      }
      const listed = keyListed(key, await keyRecord(listing.index, key, proven.keys), proven.registry);
      const offered = (Array.isArray(listing.registrations) ? listing.registrations : []).some((x) => x.key === key);
      checkKeyListed(key, listed, registered.get(key), retired, proven.checkedTo, offered);
    }
    if (!proven.keys) return false;
    // A stolen-key report signed by a registry key this page does not pin does not count here: then nothing is proven
    const unpinned = (r) => r.key === v.statement.signer && !r.counts && r.unsafeFrom !== undefined;
    return proven.complete && !retired.items.some(unpinned);
  }

  // Whether the checkpoint the verdict stands on online is vouched current (tlogcore/freshness.py): its log
  // signature has no time, so a proxy can replay an older one, cosigned then, with that time's answers, and a
  // revocation logged since would not show. Said in the checks either way; true (stale): no status is proven.
  // Only where the log was asked: a QR proof checked with no network shows its age in the facts, and freshness
  // cannot be proven without the log.
  function freshness(policy, trusted, now, checks) {
    const size = "size " + trusted.checkpoint.size;
    if (policy.quorum === null) {  // no witness dates any checkpoint: the status stands, its time on the log's word
      checks.note("c_undated", size + ", quorum none");  // as `tlog verify`'s UNDATED words
      return false;
    }
    const at = vouchedAt(policy, trusted.cosigned);
    if (at === null) {  // the quorum's cosignatures claim no time (timestamp 0): never vouched current, so stale
      checks.note("c_stale_untimed", size + ", no quorum of cosignatures carries a time (timestamp 0)");
      return true;
    }
    const age = { age: () => ageText(Math.max(0, Date.now() / 1000 - at)) };  // in the language shown
    const when = new Date(at * 1000).toISOString().slice(0, 16).replace("T", " ");
    const detail = size + ", vouched for at " + when + " UTC";
    const stale = isStale(policy, trusted.cosigned, now, MAX_AGE_SECONDS);
    if (stale) checks.note("c_stale", detail, age); else checks.pass("c_fresh", detail, age);
    return stale;
  }

  function genuineReason() {
    if (state.paper) return "r_genuine_paper";
    return state.facts && state.facts.quorumNeeds === 0 ? "r_genuine_nowitness" : "r_genuine";
  }

  function statusVerdict(revoked, checks, proven) {
    const key = revoked || (proven && proven.complete) ? "c_revocation" : proven ? "c_revocation_partial" : "c_revocation_unproven";
    checks.pass(key, revoked ? "#" + revoked.index : t("none"));
    if (revoked) {
      state.revokeReason = revoked.statement.reason || "";
      return ["revoked", "r_revoked", ""];
    }
    return ["genuine", genuineReason(), ""];
  }

  // The log's newest checkpoint, verified under the policy, or null (unreachable, or not vouched for).
  async function latestCheckpoint(policy, now) {
    try {
      const r = await fetch(logUrl("/checkpoint"), { cache: "no-cache" });
      if (!r.ok) return null;
      return await verifyCheckpoint(new Uint8Array(await r.arrayBuffer()), policy, now, new Checks(true));
    } catch (e) {
      return null;
    }
  }

  // How far the log has grown since the proof, shown. Best effort. `known`: the newest checkpoint the proof was
  // just refreshed onto (refreshOnPage), not fetched again.
  async function newestCheckpoint(policy, now, checks, known) {
    const trusted = known || await latestCheckpoint(policy, now);
    if (!trusted) return;
    state.facts.newestSize = trusted.checkpoint.size.toString();
    checks.pass("c_newest", "size " + trusted.checkpoint.size);
  }

  async function lookup(h) {
    const docs = await fetchOk("/api/v1/documents/" + h);
    if (!docs.ok) throw new VerifyError("cannot_verify", null, "the log answered " + docs.status);
    return docs.json();
  }

  // No verified issue statement: "not logged", its status proven against the log's newest checkpoint (there is
  // no statement to stand on). A statement whose proof failed may be the issue: then nothing can be said.
  async function notLogged(listing, found, h, policy, now, checks) {
    if (found.failed.length) throw found.failed[0].error;
    state.expected = h;
    const newest = await latestCheckpoint(policy, now);
    if (newest) {
      const stale = freshness(policy, newest, now, checks);
      await provenStatus(listing, found, h, newest.checkpoint, checks, stale);
    }
    return new VerifyError("not_logged", null, "");
  }

  // The verdict from the verified statements, the issue `v` and the registry's word, once the status is checked.
  async function judged(listing, found, v, proven, newest, policy, now, checks) {
    const registered = await registrationsOf(listing, policy, now, state.trust);
    checkRegistrationsShown(found.items, v, registered);
    const unregistered = registrationVerdict(v, registered, checks, listing);
    const retired = await retirementsOf(listing, policy, now, state.trust);
    // §12: the keys' records first, so that a registration left out is tampered, as in `tlog verify`
    const keyProven = await keyStatusProven(proven, listing, v, found, registered, retired);
    if (unregistered) return unregistered;
    const stolen = stolenKeyVerdict(v, stolenKeysOf(retired), checks, keyProven ? proven.detail : null);
    if (stolen) return stolen;
    const revoked = revocationOf(found.items, v, registered);
    await newestCheckpoint(policy, now, checks, newest);
    return statusVerdict(revoked, checks, proven);
  }

  // The log is asked for its answer first and for its newest checkpoint after, so a busy, honest log may log an
  // entry about the document (or a report about its key) in between: the gap read here then holds an entry the
  // answer could not list. So an answer found to leave an entry out (a `leftOut` error) is asked for once more and
  // judged again from the start, the checks and facts shown since put back; only a second failure is tampered. A
  // proxy that leaves the entry out fails both times (docs/status-proofs.md §9).
  async function askedTwice(checks, judge) {
    const kept = checks.items.length;
    const facts = state.facts && { ...state.facts };
    try {
      return await judge();
    } catch (e) {
      if (!(e instanceof VerifyError && e.leftOut)) throw e;
    }
    checks.items.splice(kept);
    state.checks = checks.items;
    state.facts = facts;
    render();
    return judge();
  }

  async function verifyOnline(h, i, checks) {
    if (!/^[0-9a-f]{64}$/.test(h) || !/^(0|[1-9][0-9]{0,18})$/.test(i)) {
      throw new VerifyError("cannot_verify", null, "the link is malformed");
    }
    const policy = await loadPolicy(checks);
    return askedTwice(checks, () => judgedOnline(h, i, policy, checks));
  }

  // The document's answer, its issue's bundle refreshed onto the newest checkpoint, and the verdict.
  async function judgedOnline(h, i, policy, checks) {
    const now = Date.now() / 1000;
    const listing = await lookup(h);
    const found = await statementsOf(listing, policy, now, h);
    if (!found.items.some((x) => x.statement.kind === "issue")) throw await notLogged(listing, found, h, policy, now, checks);
    const bundleResponse = await fetchOk("/api/v1/bundle/" + i);
    if (!bundleResponse.ok) throw new VerifyError("cannot_verify", null, "bundle: the log answered " + bundleResponse.status);
    const bundle = new Uint8Array(await bundleResponse.arrayBuffer());
    const v = await verifyBundle(bundle, policy, now, h, checks);
    state.expected = v.statement.document;
    state.facts = factsFrom(v, policy, false);
    if (v.statement.kind !== "issue") throw tampered("c_document", "the log entry is not an issue statement");
    // The verdict stands on the log's newest checkpoint, as tlog verify's (and the offline path's): the bundle's is
    // one the log picked, and an older one would let an early index root's short gap stop before a revocation.
    const newest = await refreshOnPage(v, policy, now, checks);
    reliedOn(newest, v.checkpoint, policy);
    const standing = newest || v;  // the checkpoint the verdict stands on
    const stale = freshness(policy, standing, now, checks);
    const proven = await provenStatus(listing, found, h, standing.checkpoint, checks, stale);
    return judged(listing, found, v, proven, newest, policy, now, checks);
  }

  // An offline proof, verified on this device; then, whenever the log answers, its revocations and newest
  // checkpoint. When it does not, the verdict stands on the proof alone and the page says so at the top.
  async function verifyOfflineBundle(bundle, policy, documentHex, checks) {
    const now = Date.now() / 1000;
    const v = await verifyBundle(bundle, policy, now, documentHex, checks);
    state.expected = v.statement.document;
    state.facts = factsFrom(v, policy, true);
    if (v.statement.kind === "revoke") return ["revoked", "r_revoked", ""];  // the proof is of the revocation itself
    if (v.statement.kind !== "issue") throw tampered("c_document", "the bundle is not about a document");
    return askedTwice(checks, () => judgedWithLog(v, policy, now, checks));
  }

  // The verified offline proof `v` against the log's answer and newest checkpoint, when it answers.
  async function judgedWithLog(v, policy, now, checks) {
    let listing = null;
    try {
      const r = await fetch(logUrl("/api/v1/documents/" + v.statement.document), { cache: "no-cache" });
      if (r.ok) listing = await r.json();
    } catch (e) { listing = null; }
    if (!listing || !Array.isArray(listing.statements)) return ["genuine", genuineReason(), ""];
    const newest = await refreshOnPage(v, policy, now, checks);
    reliedOn(newest, v.checkpoint, policy);
    state.facts.checked = true;
    const found = await statementsOf(listing, policy, now, v.statement.document);
    const standing = newest || v;  // the checkpoint the verdict now stands on, asked of the log: freshness applies
    const stale = freshness(policy, standing, now, checks);
    const proven = await provenStatus(listing, found, v.statement.document, standing.checkpoint, checks, stale);
    return judged(listing, found, v, proven, newest, policy, now, checks);
  }

  async function verifyOffline(b, checks) {
    const policy = await loadPolicy(checks);
    return verifyOfflineBundle(await fromBinary(b64urlDecode(b)), policy, undefined, checks);
  }

  // A QR link (tlogcore/qrlink.py): the document is the file's hash, or the hash of the paper fields it carries.
  async function verifyLink(fragment, checks) {
    const policy = await loadPolicy(checks);
    const payload = QR.decodePayload(QR.base43Decode(fragment.slice(QR.PREFIX.length), malformed), malformed);
    let documentHex = payload.document === null ? null : hex(payload.document);
    if (payload.paper) {
      documentHex = hex(await sha256(payload.paper.canonical));
      state.paper = payload.paper.fields;
      render();
    }
    if (!payload.offline) return verifyOnline(documentHex, payload.index.toString(), checks);
    return verifyOfflineBundle(await bundleFromLink(payload.offline, documentHex, policy), policy, documentHex, checks);
  }

  function verdictOfError(e, checks) {
    if (!(e instanceof VerifyError)) return ["cannot_verify", "r_cannot_verify", String(e && e.message || e)];
    if (e.check) checks.fail(e.check, e.message);
    const fieldsDiffer = e.verdict === "not_logged" || ["c_statement", "c_document"].includes(e.check);
    if (state.paper && fieldsDiffer) return ["tampered", "r_paper_mismatch", ""];
    if (e.verdict === "not_logged") return ["not_logged", "r_not_logged", ""];
    if (e.verdict === "log_misbehaved") {  // a forked history, or a key the log replaced (its own plain words)
      return ["log_misbehaved", e.check === "c_log_key" ? "r_c_log_key" : "r_log_misbehaved", e.message];
    }
    if (e.message === "network") return ["cannot_verify", "r_network", ""];
    // A failing check has its own plain reason; a broken signature (tampered) reads differently from a missing one.
    const keys = e.check ? ["r_" + e.check + (e.verdict === "tampered" ? "_bad" : ""), "r_" + e.check] : [];
    const specific = keys.find((k) => I18N.en[k]);
    return [e.verdict, specific || (e.verdict === "tampered" ? "r_tampered" : "r_cannot_verify"), e.message];
  }

  async function run() {
    state.verdict = null; state.facts = null; state.checks = []; state.fileKey = null; state.expected = null;
    state.reasonKey = null; state.detail = ""; state.paper = null; state.base = null; state.revokeReason = "";
    document.body.dataset.done = "";
    render();
    const fragment = location.hash.slice(1);
    const link = fragment.startsWith(QR.PREFIX);
    const params = new URLSearchParams(link ? "" : fragment);
    const checks = new Checks();
    let outcome;
    if (state.trustChanged) {
      // Keys that changed since the first visit are not used until the person accepts them (the warning says why).
      outcome = ["cannot_verify", "r_trust_changed", ""];
    } else if (!link && !params.get("b") && !params.get("h")) {
      outcome = ["cannot_verify", "r_no_link", ""];
    } else if (!(await ed25519Supported())) {
      outcome = ["cannot_verify", "r_no_ed25519", ""];
    } else {
      try {
        outcome = link ? await verifyLink(fragment, checks) : params.get("b") ? await verifyOffline(params.get("b"), checks)
          : await verifyOnline(params.get("h"), params.get("i") || "", checks);
      } catch (e) {
        outcome = verdictOfError(e, checks);
      }
    }
    // What the code alone says: a file check starts again from here each time a file is chosen.
    state.base = { verdict: outcome[0], reasonKey: outcome[1], detail: outcome[2],
                   checks: state.checks.map((c) => ({ ...c })) };
    setVerdict(...outcome);
  }

  async function checkFile(file) {
    if (!file) return;
    const digest = hex(await sha256(new Uint8Array(await file.arrayBuffer())));
    if (state.base) {
      Object.assign(state, { verdict: state.base.verdict, reasonKey: state.base.reasonKey, detail: state.base.detail });
      state.checks = state.base.checks.map((c) => ({ ...c }));
    }
    const checks = new Checks();
    checks.items = state.checks;
    if (!state.expected) {
      state.fileKey = "file_none";
    } else if (digest === state.expected) {
      state.fileKey = "file_match";
      checks.pass("c_file", digest.slice(0, 16) + "…");
    } else {
      state.fileKey = "file_mismatch";
      checks.fail("c_file", "SHA-256 " + digest.slice(0, 16) + "… is not the logged " + state.expected.slice(0, 16) + "…");
      if (state.verdict !== "not_logged") {
        setVerdict("tampered", "file_mismatch", "");
        return;
      }
    }
    render();
  }

  function init() {
    let lang = null;
    try { lang = localStorage.getItem("tlog-lang"); } catch (e) { lang = null; }
    state.lang = lang === "km" || lang === "en" ? lang : (navigator.language || "").startsWith("km") ? "km" : "en";
    $("lang-km").addEventListener("click", () => setLang("km"));
    $("lang-en").addEventListener("click", () => setLang("en"));
    $("trust-accept").addEventListener("click", acceptNewTrust);
    state.trust = builtInTrust();
    const remembered = state.trust ? rememberTrust(state.trust) : Promise.resolve();
    const input = $("file-input");
    input.addEventListener("change", () => {
      const file = input.files[0];
      input.value = ""; // choosing the same file again checks it again
      checkFile(file);
    });
    const drop = $("drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      checkFile(e.dataTransfer.files[0]);
    });
    window.addEventListener("hashchange", run);
    if ("serviceWorker" in navigator) {
      const sw = document.documentElement.dataset.sw || "/verify-sw.js";
      const scope = document.documentElement.dataset.swScope || "/verify";
      navigator.serviceWorker.register(sw, { scope }).catch(() => { /* offline cache only */ });
    }
    remembered.then(run, run);
  }
  document.addEventListener("DOMContentLoaded", init);
})();
