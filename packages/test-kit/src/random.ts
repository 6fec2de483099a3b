/**
 * A small seeded generator (mulberry32) for tests that replay a random run from its seed: the same
 * seed gives the same floats in [0, 1) on every machine.
 *
 * @example
 * const random = seeded(7);
 * const pick = Math.floor(random() * 3); // the same pick for seed 7 every time
 */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
