// Entry point of the vendored bundle mldsa44.js (README.md here): the one function the verifier page needs from
// @noble/post-quantum, ML-DSA-44 verification (FIPS 204 pure, empty context), for browsers whose WebCrypto lacks it.
import { ml_dsa44 } from "@noble/post-quantum/ml-dsa.js";

export function verify(signature, message, publicKey) {
  return ml_dsa44.verify(signature, message, publicKey);
}
