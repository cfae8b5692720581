// Writes the Segment-signed fixtures exactly as Segment's Node code would: JSON.stringify bytes and an HMAC-SHA1 from
// node's crypto, so the .NET tests never compute the expected signature with the code they test.
// Run from this folder: node make-fixtures.js
const crypto = require('crypto');
const fs = require('fs');
const secret = 'segment-shared-secret';
const sign = (text) => crypto.createHmac('sha1', secret).update(Buffer.from(text, 'utf8')).digest('hex');
const single = { type: 'track', messageId: 'seg-single-1', userId: 'u-zoë', event: 'Signed Up',
  properties: { plan: 'Pro – annual', path: '/welcome/', emoji: '🎉' }, timestamp: '2026-12-07T06:00:00.000Z' };
const batch = [
  { type: 'track', messageId: 'seg-batch-1', userId: 'u-1', event: 'Product Viewed', properties: { productId: 'p-1', name: 'Café mug' } },
  { type: 'identify', messageId: 'seg-batch-2', userId: 'u-2', traits: { email: 'jo@example.com', phoneNumber: '+15555550100' } },
];
const singleText = JSON.stringify(single);
const batchText = JSON.stringify(batch);
fs.writeFileSync('single.json', singleText);
fs.writeFileSync('batch.json', batchText);
fs.writeFileSync('signatures.json', JSON.stringify({
  secret,
  single: sign(singleText),
  batchFirstElement: sign(JSON.stringify(batch[0])),
  batchWhole: sign(batchText),
}, null, 2) + '\n');
