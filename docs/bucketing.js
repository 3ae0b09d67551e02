'use strict';
// switchover bucketing for Node.js backends (no dependencies).
// bucket(group, key) = murmur3_x86_32(utf8(group + ':' + key), seed 0) % 100 + 1
// Same result as switchover.core.bucketing.bucket in Python; see docs/bucketing.md.
// group: the migration's bucketing group, its name unless created with --group GROUP
// (`switchover status NAME` shows it), e.g. the groupId of the Unleash strategy it replaces.

function murmur3_32(str, seed) {
  const data = Buffer.from(String(str), 'utf8'); // hash the UTF-8 bytes, not UTF-16 code units
  const len = data.length;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h1 = seed >>> 0;
  const tail = len & ~3;
  let k1;
  for (let i = 0; i < tail; i += 4) {
    k1 = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k1 = Math.imul(k1, c1);
    k1 = (k1 << 15) | (k1 >>> 17);
    k1 = Math.imul(k1, c2);
    h1 ^= k1;
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
  }
  k1 = 0;
  switch (len & 3) {
    case 3:
      k1 ^= data[tail + 2] << 16;
    // falls through
    case 2:
      k1 ^= data[tail + 1] << 8;
    // falls through
    case 1:
      k1 ^= data[tail];
      k1 = Math.imul(k1, c1);
      k1 = (k1 << 15) | (k1 >>> 17);
      k1 = Math.imul(k1, c2);
      h1 ^= k1;
  }
  h1 ^= len;
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  return h1 >>> 0; // unsigned, 0 .. 2^32-1
}

// Caller's bucket, 1..100. Numbers are stringified like Python str(): 42 -> "42".
function bucket(group, key) {
  return (murmur3_32(`${group}:${key}`, 0) % 100) + 1;
}

function inRollout(group, key, percentage) {
  return bucket(group, key) <= percentage;
}

module.exports = { murmur3_32, bucket, inRollout };

// As a script: JSON lines {"group": ..., "key": ...} on stdin -> one bucket per line.
if (require.main === module) {
  const readline = require('readline');
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const out = [];
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    const { group, key } = JSON.parse(line);
    out.push(bucket(group, key));
  });
  rl.on('close', () => {
    process.stdout.write(out.length ? out.join('\n') + '\n' : '');
  });
}
