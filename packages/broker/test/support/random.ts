/** A deterministic byte generator (xorshift32), so a failing input can be replayed. */
export function randomBytes(seed: number, length: number): Buffer {
  let x = Math.imul(seed, 0x9e3779b9) >>> 0 || 1;
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
