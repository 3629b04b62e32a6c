"""How fast is the page's ML-DSA-44 fallback (logserver/web/vendor/mldsa44.js, @noble/post-quantum in plain
JavaScript) against native code? It checks one real cosignature-sized signature, made by `cryptography` (OpenSSL),
in node (V8, the engine of Chromium) and, as the ceiling in the same run, with OpenSSL's own ML-DSA-44 verify.

    .venv/bin/python -m loadtest.mldsa_fallback_bench        (needs node >= 20 on PATH)

Prints figures; asserts nothing but that both implementations accept the signature and refuse a changed one.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa

BUNDLE = Path(__file__).resolve().parent.parent / "logserver" / "web" / "vendor" / "mldsa44.js"
ROUNDS = 200
# Loads the bundle as a browser would (one classic script defining `tlogMlDsa44`) and times ROUNDS verifications.
NODE_SCRIPT = """
const fs = require("fs"), vm = require("vm");
const input = JSON.parse(fs.readFileSync(0, "utf8"));
vm.runInThisContext(fs.readFileSync(input.bundle, "utf8"));
const hex = (x) => Uint8Array.from(Buffer.from(x, "hex"));
const [pub, msg, sig] = [hex(input.pub), hex(input.msg), hex(input.sig)];
const changed = sig.slice(); changed[100] ^= 1;
const answers = [tlogMlDsa44.verify(sig, msg, pub), tlogMlDsa44.verify(changed, msg, pub)];
const start = process.hrtime.bigint();
for (let i = 0; i < input.rounds; i++) tlogMlDsa44.verify(sig, msg, pub);
const ms = Number(process.hrtime.bigint() - start) / 1e6 / input.rounds;
console.log(JSON.stringify({answers, ms}));
"""


def openssl_ms(public: mldsa.MLDSA44PublicKey, signature: bytes, message: bytes) -> float:
    start = time.perf_counter()
    for _ in range(ROUNDS):
        public.verify(signature, message)
    return (time.perf_counter() - start) / ROUNDS * 1000


def main() -> None:
    node = shutil.which("node")
    if node is None:
        sys.exit("mldsa_fallback_bench: node is not on PATH; install node >= 20 (Debian package nodejs) and rerun")
    key = mldsa.MLDSA44PrivateKey.generate()
    message = os.urandom(120)  # about the size of a subtree/v1 message
    signature = key.sign(message)
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        public.verify(bytes([signature[0] ^ 1]) + signature[1:], message)
        sys.exit("mldsa_fallback_bench: OpenSSL accepted a changed signature")
    except InvalidSignature:
        pass
    job = {"bundle": str(BUNDLE), "pub": raw.hex(), "msg": message.hex(), "sig": signature.hex(), "rounds": ROUNDS}
    done = subprocess.run([node, "-e", NODE_SCRIPT], input=json.dumps(job), capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    result = json.loads(done.stdout)
    if result["answers"] != [True, False]:
        sys.exit(f"mldsa_fallback_bench: the bundle answered {result['answers']} (expected [true, false])")
    ceiling = openssl_ms(public, signature, message)
    print(f"bundle {BUNDLE.name}: {BUNDLE.stat().st_size:,} bytes; load average {os.getloadavg()[0]:.2f}")
    print(f"ML-DSA-44 verify, vendored JavaScript in node: {result['ms']:.2f} ms each ({ROUNDS} rounds)")
    print(f"ML-DSA-44 verify, OpenSSL via cryptography (ceiling): {ceiling:.3f} ms each")


if __name__ == "__main__":
    main()
