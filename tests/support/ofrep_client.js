'use strict';
// The stock Node OpenFeature client over OFREP: @openfeature/server-sdk with
// @openfeature/ofrep-provider. Reads {"base", "token", "flag", "callers": [[key, tenant|null]...]}
// on stdin; prints one JSON answer per caller: {value, variant, reason, errorCode}.
const { OpenFeature } = require('@openfeature/server-sdk');
const { OFREPProvider } = require('@openfeature/ofrep-provider');

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const { base, token, flag, callers } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  await OpenFeature.setProviderAndWait(
    new OFREPProvider({ baseUrl: base, headers: { Authorization: `Bearer ${token}` } }),
  );
  const client = OpenFeature.getClient();
  const answers = new Array(callers.length);
  let next = 0;
  async function worker() {
    while (next < callers.length) {
      const i = next++;
      const [targetingKey, tenant] = callers[i];
      const context = tenant === null ? { targetingKey } : { targetingKey, tenant_id: tenant };
      const d = await client.getBooleanDetails(flag, false, context);
      answers[i] = { value: d.value, variant: d.variant, reason: d.reason, errorCode: d.errorCode };
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker)); // sixteen callers at a time
  await OpenFeature.close();
  process.stdout.write(JSON.stringify(answers));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
