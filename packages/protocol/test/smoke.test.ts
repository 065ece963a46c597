import t from 'tap';
import { encode, PacketDecoder } from '../src/index.js';

t.test('a PUBLISH survives encode and decode', async (t) => {
  const packet = {
    cmd: 'publish',
    topic: 'a/b',
    payload: Buffer.from('x'),
    qos: 0,
    retain: false,
    dup: false,
  } as const;
  t.same(PacketDecoder.decodeAll(encode(packet, 4)), [packet]);
});
