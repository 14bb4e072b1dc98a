// durability.mjs — load and check for the kill -9 test of cmkfs-kmsd.
//
//   node durability.mjs load ACKS    create keys and grants until the service
//                                    goes away; append each acknowledged one
//                                    to ACKS as it is acknowledged
//   node durability.mjs verify ACKS  every acknowledged key and grant exists
//
// Environment: KMSD_URL, CREDS (root-a.env).
import { appendFileSync, readFileSync } from "node:fs";
import { CreateGrantCommand, CreateKeyCommand, DescribeKeyCommand, ListGrantsCommand } from "@aws-sdk/client-kms";
import { check, client, equal, finish } from "./lib.mjs";

const [mode, acks] = process.argv.slice(2);
const kms = client(`${process.env.CREDS}/root-a.env`);

if (mode === "load") {
  let n = 0;
  try {
    for (;;) {
      const key = (await kms.send(new CreateKeyCommand({ Description: `load ${n}` }))).KeyMetadata;
      appendFileSync(acks, `key ${key.KeyId}\n`);
      const g = await kms.send(new CreateGrantCommand({ KeyId: key.KeyId,
        GranteePrincipal: "arn:aws:iam::111111111111:role/db-host", Operations: ["Decrypt"] }));
      appendFileSync(acks, `grant ${key.KeyId} ${g.GrantId}\n`);
      n++;
    }
  } catch (e) {
    console.log(`load stopped after ${n} keys: ${e.name}`);
  }
} else {
  const lines = readFileSync(acks, "utf8").split("\n").filter(Boolean);
  const keys = lines.filter((l) => l.startsWith("key ")).map((l) => l.split(" ")[1]);
  const grants = lines.filter((l) => l.startsWith("grant ")).map((l) => l.split(" ").slice(1));
  await check(`${keys.length} acknowledged keys exist`, async () => {
    for (const id of keys)
      equal((await kms.send(new DescribeKeyCommand({ KeyId: id }))).KeyMetadata.KeyId, id, "DescribeKey");
  });
  await check(`${grants.length} acknowledged grants exist`, async () => {
    for (const [keyId, grantId] of grants) {
      const listed = (await kms.send(new ListGrantsCommand({ KeyId: keyId }))).Grants.map((g) => g.GrantId);
      equal(listed.includes(grantId), true, `grant ${grantId} on ${keyId}`);
    }
  });
  finish();
}
