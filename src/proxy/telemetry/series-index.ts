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

  /** The series of `keys`, made by `make` the first time. Keys that begin alike must be as many (a key is a Map or a series). */
  get(keys: readonly KeyValue[], make: () => S): S {
    return this.find(keys) ?? this.add(keys, make());
  }

  /** The series of `keys`, if there is one. */
  find(keys: readonly KeyValue[]): S | undefined {
    let m: Map<unknown, unknown> | undefined = this.root;
    for (let i = 0; i < keys.length - 1 && m; i++) m = m.get(keys[i]) as Map<unknown, unknown> | undefined;
    return m?.get(keys[keys.length - 1]) as S | undefined;
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
    return s;
  }
}
