/**
 * The fixture tables, run through the decoder and the encoder. Each valid row gives four
 * tests (decode, encode, round trip, one byte per push); each invalid row checks the error's
 * code, spec id and reason code; a few table-wide tests keep the tables complete.
 */
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import {
  type DecoderOptions,
  encode,
  type Packet,
  type PacketCmd,
  PacketDecoder,
  PROPERTY_SPECS,
  ProtocolError,
  type ProtocolVersion,
  TYPE_BY_CMD,
  type ViolationCode,
  Violations,
} from '../src/index.js';
import { fromHex } from './fixtures/hex.js';
import { type InvalidRow, invalidPackets } from './fixtures/invalid-packets.js';
import { decodeOnlyPackets, type ValidRow, validPackets } from './fixtures/valid-packets.js';

const VERSIONS: readonly ProtocolVersion[] = [3, 4, 5];

/** Pushes `bytes` in chunks of `chunkSize`; returns the packets and whether a packet is still open. */
function decodeChunks(bytes: Buffer, options: DecoderOptions, chunkSize = bytes.length) {
  const packets: Packet[] = [];
  const decoder = new PacketDecoder((p) => packets.push(p), options);
  for (let i = 0; i < bytes.length; i += chunkSize) decoder.push(bytes.subarray(i, i + chunkSize));
  return { packets, bufferedBytes: decoder.bufferedBytes };
}

/** The ProtocolError `fn` throws, or a description of what happened instead (for t.match diffs). */
function protocolErrorOf(fn: () => unknown): ProtocolError | string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof ProtocolError ? err : `not a ProtocolError: ${String(err)}`;
  }
}

function optionsOf(row: InvalidRow): DecoderOptions {
  const options: DecoderOptions = { protocolVersion: row.version };
  if (row.maxPacketSize !== undefined) options.maxPacketSize = row.maxPacketSize;
  return options;
}

function rowTitle(row: ValidRow): string {
  return `v${row.version} ${row.name}`;
}

t.test('valid packets', async (t) => {
  for (const row of validPackets) {
    const bytes = fromHex(row.hex);
    t.test(rowTitle(row), async (t) => {
      t.test('decode', async (t) => {
        t.plan(2);
        const { packets, bufferedBytes } = decodeChunks(bytes, { protocolVersion: row.version });
        t.strictSame(packets, [row.packet]);
        t.equal(bufferedBytes, 0, 'nothing left buffered');
      });
      t.test('encode', async (t) => {
        t.plan(1);
        t.equal(encode(row.packet, row.version).toString('hex'), bytes.toString('hex'));
      });
      t.test('round trip', async (t) => {
        t.plan(1);
        const { packets } = decodeChunks(encode(row.packet, row.version), { protocolVersion: row.version });
        t.strictSame(packets, [row.packet]);
      });
      t.test('byte-at-a-time', async (t) => {
        t.plan(2);
        const { packets, bufferedBytes } = decodeChunks(bytes, { protocolVersion: row.version }, 1);
        t.strictSame(packets, [row.packet]);
        t.equal(bufferedBytes, 0, 'nothing left buffered');
      });
    });
  }
});

t.test('decode-only packets (forms the encoder shortens)', async (t) => {
  for (const row of decodeOnlyPackets) {
    const bytes = fromHex(row.hex);
    t.test(rowTitle(row), async (t) => {
      t.plan(3);
      t.strictSame(decodeChunks(bytes, { protocolVersion: row.version }).packets, [row.packet], 'decode');
      t.strictSame(decodeChunks(bytes, { protocolVersion: row.version }, 1).packets, [row.packet], 'byte-at-a-time');
      t.not(encode(row.packet, row.version).toString('hex'), bytes.toString('hex'), 'the encoder writes another form');
    });
  }
});

t.test('many per chunk', async (t) => {
  for (const version of VERSIONS) {
    const rows = [...validPackets, ...decodeOnlyPackets].filter((row) => row.version === version);
    t.test(`v${version}: all rows in one chunk`, async (t) => {
      t.plan(2);
      const bytes = Buffer.concat(rows.map((row) => fromHex(row.hex)));
      const { packets, bufferedBytes } = decodeChunks(bytes, { protocolVersion: version });
      t.strictSame(
        packets,
        rows.map((row) => row.packet),
      );
      t.equal(bufferedBytes, 0);
    });
    t.test(`v${version}: a CONNECT first sets the version of the rest`, async (t) => {
      // The decoder starts at its default (4); the CONNECT row switches it to `version`.
      const ordered = [
        ...rows.filter((row) => row.packet.cmd === 'connect'),
        ...rows.filter((row) => row.packet.cmd !== 'connect'),
      ];
      t.plan(2);
      t.equal(ordered[0]?.packet.cmd, 'connect');
      const bytes = Buffer.concat(ordered.map((row) => fromHex(row.hex)));
      t.strictSame(
        decodeChunks(bytes, {}).packets,
        ordered.map((row) => row.packet),
      );
    });
  }
});

t.test('invalid packets', async (t) => {
  for (const row of invalidPackets) {
    const bytes = fromHex(row.hex);
    const spec = Violations[row.code];
    const want = { code: row.code, specId: spec.specId, reasonCode: spec.reasonCode };
    t.test(`[${spec.specId}] ${row.name} (v${row.version})`, async (t) => {
      t.plan(4);
      const err = protocolErrorOf(() => PacketDecoder.decodeAll(bytes, optionsOf(row)));
      t.type(err, ProtocolError);
      t.match(err, want, 'code, spec id and reason code');

      // One byte per push: the same error, or, where the input just stops, no packet and a
      // decoder still inside one (what decodeAll reports as truncated).
      const out: Packet[] = [];
      const decoder = new PacketDecoder((p) => out.push(p), optionsOf(row));
      const streamed = protocolErrorOf(() => {
        for (let i = 0; i < bytes.length; i++) decoder.push(bytes.subarray(i, i + 1));
      });
      if (streamed === 'no error') {
        t.equal(row.code, 'TERN_PROTO_TRUNCATED', 'byte-at-a-time only waits when the input ends inside a packet');
        t.equal(out.length, 0, 'no packet emitted');
      } else {
        t.match(streamed, want, 'byte-at-a-time raises the same error');
        t.equal(out.length, 0, 'no packet emitted');
      }
    });
  }
});

t.test('the tables are complete', async (t) => {
  t.test('every packet type in every version it exists in', async (t) => {
    const cmds = Object.keys(TYPE_BY_CMD) as PacketCmd[];
    for (const version of VERSIONS) {
      const have = new Set(validPackets.filter((row) => row.version === version).map((row) => row.packet.cmd));
      const want = cmds.filter((cmd) => cmd !== 'auth' || version === 5);
      t.strictSame(
        want.filter((cmd) => !have.has(cmd)),
        [],
        `v${version}: no packet type without a row`,
      );
    }
  });

  t.test('every MQTT 5 property in at least one valid row', async (t) => {
    t.plan(2);
    const seen = new Set<string>();
    for (const { packet } of validPackets) {
      if ('properties' in packet && packet.properties) for (const k of Object.keys(packet.properties)) seen.add(k);
      if (packet.cmd === 'connect' && packet.will?.properties) {
        for (const k of Object.keys(packet.will.properties)) seen.add(k);
      }
    }
    t.equal(PROPERTY_SPECS.length, 27, 'MQTT 5 defines 27 properties');
    t.strictSame(
      PROPERTY_SPECS.map((s) => s.name).filter((name) => !seen.has(name)),
      [],
    );
  });

  t.test('every violation the codec raises has an invalid row', async (t) => {
    // The codes named in packages/protocol/src (other codes of the catalogue are raised by the
    // broker, e.g. a second CONNECT, and are tested there).
    t.plan(2);
    const srcDir = new URL('../src/', import.meta.url);
    const raised = new Set<ViolationCode>();
    for (const file of readdirSync(srcDir)) {
      if (!file.endsWith('.ts')) continue;
      for (const m of readFileSync(new URL(file, srcDir), 'utf8').matchAll(/'(TERN_PROTO_\w+)'/g)) {
        const code = m[1] as string;
        if (code in Violations) raised.add(code as ViolationCode);
      }
    }
    t.ok(raised.size >= 30, `found the codec's codes (${raised.size})`);
    const covered = new Set(invalidPackets.map((row) => row.code));
    t.strictSame(
      [...raised].filter((code) => !covered.has(code)),
      [],
    );
  });

  t.test('CONNECT rows carry their row version', async (t) => {
    for (const row of validPackets) {
      if (row.packet.cmd === 'connect') t.equal(row.packet.protocolVersion, row.version, row.name);
    }
  });
});
