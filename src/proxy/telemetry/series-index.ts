// Finds a metric's series by its label values without joining them into one key string: one Map
// per label, keyed by the value itself. The values an event brings are mostly the same string
// objects every time (a peer's SPIFFE id kept on its socket, a cluster's name from the config,
// constant flags), whose hashes V8 keeps, so a lookup hashes nothing new; a joined key would be a
// new string of some hundred characters to hash on every request.

/** A label value, or an object that stands for several (a peer's metadata: the same object for the same values). */
export type KeyValue = string | number | boolean | object;

export class SeriesIndex<S> {
  private readonly root = new Map<unknown, unknown>();
  /** Every series, in the order they came. */
  readonly all: S[] = [];
  /**
   * The series found last and its keys: most events come over the same edge with the same outcome
   * as the one before, and a compare per key costs less than a Map lookup per key. A key that is
   * not === itself (NaN) only misses here; a Map finds it.
   */
  private readonly lastKeys: KeyValue[] = [];
  private last: S | undefined;

  /** The series of `keys`, made by `make` the first time. Keys that begin alike must be as many (a key is a Map or a series). */
  get(keys: readonly KeyValue[], make: () => S): S {
    return this.find(keys) ?? this.add(keys, make());
  }

  /** The series of `keys`, if there is one. */
  find(keys: readonly KeyValue[]): S | undefined {
    const lk = this.lastKeys;
    const n = keys.length;
    if (this.last !== undefined && lk.length === n) {
      let i = 0;
      while (i < n && keys[i] === lk[i]) i++;
      if (i === n) return this.last;
    }
    let m: Map<unknown, unknown> | undefined = this.root;
    for (let i = 0; i < n - 1 && m; i++) m = m.get(keys[i]) as Map<unknown, unknown> | undefined;
    const s = m?.get(keys[n - 1]) as S | undefined;
    if (s !== undefined) this.remember(keys, s);
    return s;
  }

  private remember(keys: readonly KeyValue[], s: S): void {
    const lk = this.lastKeys;
    lk.length = keys.length;
    for (let i = 0; i < keys.length; i++) lk[i] = keys[i]!;
    this.last = s;
  }

  /** Files `s` as the series of `keys` (which has none); returns it. */
  add(keys: readonly KeyValue[], s: S): S {
    let m = this.root;
    const last = keys.length - 1;
    for (let i = 0; i < last; i++) {
      let next = m.get(keys[i]) as Map<unknown, unknown> | undefined;
      if (!next) m.set(keys[i], (next = new Map()));
      m = next;
    }
    m.set(keys[last], s);
    this.all.push(s);
    this.remember(keys, s);
    return s;
  }
}
