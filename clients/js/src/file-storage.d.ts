import { Identity, SeqStorage, TrustStore } from "./index.js";

/** Last seq per channel in one JSON file (Node only), written atomically. */
export class FileStorage implements SeqStorage {
  constructor(path: string);
  readonly path: string;
  get(channel: string): number | undefined;
  set(channel: string, seq: number): void;
}
/** The identity of an enrolled MSP folder (signcerts/ and keystore/). */
export function loadIdentity(mspDir: string, mspId?: string): Promise<Identity>;
/** A TrustStore of `{mspId: mspFolder}` (cacerts/, intermediatecerts/, crls/). */
export function trustFromMspDirs(dirs: Record<string, string>): TrustStore;
