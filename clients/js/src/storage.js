// Where the client keeps the last sequence number it saw per channel, so a restarted
// app (or page) resumes where it stopped. A storage is anything with
//   get(channel) -> number | undefined   (or a Promise of it)
//   set(channel, seq) -> void            (or a Promise)
// Three come with the package: MemoryStorage, LocalStorage (browsers) and, for Node,
// FileStorage in "@anchorline/client/file-storage".

export class MemoryStorage {
  constructor(initial = {}) {
    this.seqs = new Map(Object.entries(initial));
  }
  get(channel) {
    return this.seqs.get(channel);
  }
  set(channel, seq) {
    this.seqs.set(channel, seq);
  }
}

/** Window.localStorage (or any Storage object), one key per channel under `prefix`. */
export class LocalStorage {
  constructor(prefix = "anchorline:last-seq:", storage = globalThis.localStorage) {
    if (!storage) throw new Error("localStorage is not available here: use MemoryStorage or FileStorage");
    this.prefix = prefix;
    this.storage = storage;
  }
  get(channel) {
    const v = this.storage.getItem(this.prefix + channel);
    return v === null ? undefined : Number(v);
  }
  set(channel, seq) {
    this.storage.setItem(this.prefix + channel, String(seq));
  }
}
