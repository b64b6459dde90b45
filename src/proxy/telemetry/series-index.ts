// Finds a metric's series by its label values without joining them into one key string: one Map
// per label, keyed by the value itself. The values an event brings are mostly the same string
// objects every time (a peer's SPIFFE id kept on its socket, a cluster's name from the config,
// constant flags), whose hashes V8 keeps, so a lookup hashes nothing new; a joined key would be a
// new string of some hundred characters to hash on every request.

export class SeriesIndex<S> {
  private readonly root = new Map<unknown, unknown>();
  /** Every series, in the order they came. */
  readonly all: S[] = [];

  /** The series of `keys` (the same number of keys on every call), made by `make` the first time. */
  get(keys: readonly (string | number | boolean)[], make: () => S): S {
    let m = this.root;
    const last = keys.length - 1;
    for (let i = 0; i < last; i++) {
      let next = m.get(keys[i]) as Map<unknown, unknown> | undefined;
      if (!next) m.set(keys[i], (next = new Map()));
      m = next;
    }
    let s = m.get(keys[last]) as S | undefined;
    if (s === undefined) {
      s = make();
      m.set(keys[last], s);
      this.all.push(s);
    }
    return s;
  }
}
