/** The tensor pool hands back what was recycled, only arrays that own their buffer, each once. */
import t from 'tap';
import { recycleTensor, takeTensor } from '../../src/preprocess/tensor-pool.js';

t.test('recycled arrays come back for the same length, new ones otherwise', async (t) => {
  const a = takeTensor(12);
  t.equal(a.length, 12);
  recycleTensor(a);
  recycleTensor(a); // offered twice: kept once
  t.equal(takeTensor(12), a, 'the recycled array');
  t.not(takeTensor(12), a, 'not handed out twice');
  t.equal(takeTensor(13).length, 13, 'another length: a new array');
});

t.test('views into a larger buffer are not kept', async (t) => {
  const shared = new Float32Array(24);
  recycleTensor(shared.subarray(0, 12));
  recycleTensor(shared.subarray(12));
  const got = takeTensor(12);
  t.equal(got.buffer.byteLength, 48, 'a fresh array of its own');
  t.not(got.buffer, shared.buffer);
});
