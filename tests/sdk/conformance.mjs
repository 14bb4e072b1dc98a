// conformance.mjs — every KMS action cmkfs uses, and the access rules that
// make revocation mean something, driven through the official AWS SDK for
// JavaScript against a running cmkfs-kmsd.
//
// Environment: KMSD_URL; CREDS, a directory of credential files written by
// cmkfs-kmsd (root-a, role-a, role-a2 of account 111111111111; role-b of
// account 222222222222; temp-a with a session token; expired-a whose session
// has expired).  The service must serve us-east-1 and eu-west-1 only.
import { createHash, createHmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import {
  CancelKeyDeletionCommand, CreateAliasCommand, CreateGrantCommand,
  CreateKeyCommand, DecryptCommand, DeleteAliasCommand, DescribeKeyCommand,
  DisableKeyCommand, DisableKeyRotationCommand, EnableKeyCommand,
  EnableKeyRotationCommand, EncryptCommand, GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand, GenerateRandomCommand,
  GetKeyPolicyCommand, GetKeyRotationStatusCommand, ListAliasesCommand,
  ListGrantsCommand, ListKeysCommand, ListResourceTagsCommand,
  ListRetirableGrantsCommand, PutKeyPolicyCommand, ReEncryptCommand,
  RetireGrantCommand, RevokeGrantCommand, RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand, TagResourceCommand, UntagResourceCommand,
  UpdateAliasCommand,
} from "@aws-sdk/client-kms";
import {
  assert, bytes, check, client, equal, expectError, finish, readEnv, text,
} from "./lib.mjs";

const creds = (name) => `${process.env.CREDS}/${name}.env`;
const A = "111111111111", B = "222222222222";
const rootA = client(creds("root-a"));
const roleA = client(creds("role-a"));
const roleA2 = client(creds("role-a2"));
const roleB = client(creds("role-b"));
const tempA = client(creds("temp-a"));
const rootAWest = client(creds("root-a"), { region: "eu-west-1" });
const ctx = { "cmkfs:volume": "0b5e3f62-7d0c-4b8e-9a51-8d8a4f2f1c11" };

const policy = (statements) => JSON.stringify({ Version: "2012-10-17", Statement: statements });
const rootStatement = {
  Sid: "Enable IAM User Permissions", Effect: "Allow",
  Principal: { AWS: `arn:aws:iam::${A}:root` }, Action: "kms:*", Resource: "*",
};
const newKey = async (c = rootA, input = {}) =>
  (await c.send(new CreateKeyCommand(input))).KeyMetadata;

// ---- keys --------------------------------------------------------------------

let key, key2;
await check("CreateKey returns full KeyMetadata", async () => {
  key = await newKey(rootA, { Description: "volume key", Tags: [{ TagKey: "team", TagValue: "db" }] });
  assert(/^[0-9a-f-]{36}$/.test(key.KeyId), "KeyId is a UUID");
  equal(key.Arn, `arn:aws:kms:us-east-1:${A}:key/${key.KeyId}`, "Arn");
  equal(key.AWSAccountId, A, "AWSAccountId");
  equal(key.KeyState, "Enabled", "KeyState");
  equal(key.Enabled, true, "Enabled");
  equal(key.Origin, "AWS_KMS", "Origin");
  equal(key.KeySpec, "SYMMETRIC_DEFAULT", "KeySpec");
  equal(key.KeyUsage, "ENCRYPT_DECRYPT", "KeyUsage");
  equal(key.MultiRegion, false, "MultiRegion");
  equal(key.Description, "volume key", "Description");
  assert(key.CreationDate instanceof Date && Math.abs(key.CreationDate - Date.now()) < 60000,
    "CreationDate is now");
  key2 = await newKey();
});

await check("DescribeKey by id, ARN, alias name and alias ARN", async () => {
  await rootA.send(new CreateAliasCommand({ AliasName: "alias/db-volume", TargetKeyId: key.KeyId }));
  for (const id of [key.KeyId, key.Arn, "alias/db-volume", `arn:aws:kms:us-east-1:${A}:alias/db-volume`]) {
    const md = (await rootA.send(new DescribeKeyCommand({ KeyId: id }))).KeyMetadata;
    equal(md.Arn, key.Arn, `DescribeKey ${id}`);
  }
});

await check("ListKeys pages through the account's keys", async () => {
  const p1 = await rootA.send(new ListKeysCommand({ Limit: 1 }));
  equal(p1.Keys.length, 1, "first page size");
  equal(p1.Truncated, true, "Truncated");
  const all = [];
  let marker;
  do {
    const p = await rootA.send(new ListKeysCommand({ Limit: 1, Marker: marker }));
    all.push(...p.Keys.map((k) => k.KeyArn));
    marker = p.NextMarker;
  } while (marker);
  assert(all.includes(key.Arn) && all.includes(key2.Arn), "both keys listed");
  await expectError(rootA.send(new ListKeysCommand({ Marker: "bogus" })), "InvalidMarkerException");
});

await check("aliases: list, duplicate, reserved, delete", async () => {
  const list = (await rootA.send(new ListAliasesCommand({ KeyId: key.KeyId }))).Aliases;
  equal(list.length, 1, "one alias for the key");
  equal(list[0].AliasName, "alias/db-volume", "AliasName");
  equal(list[0].TargetKeyId, key.KeyId, "TargetKeyId");
  await expectError(rootA.send(new CreateAliasCommand({ AliasName: "alias/db-volume", TargetKeyId: key2.KeyId })),
    "AlreadyExistsException");
  await expectError(rootA.send(new CreateAliasCommand({ AliasName: "alias/aws/x", TargetKeyId: key2.KeyId })),
    "InvalidAliasNameException");
  await expectError(rootA.send(new CreateAliasCommand({ AliasName: "nope", TargetKeyId: key2.KeyId })),
    "ValidationException");
  await rootA.send(new CreateAliasCommand({ AliasName: "alias/tmp", TargetKeyId: key2.Arn }));
  await rootA.send(new DeleteAliasCommand({ AliasName: "alias/tmp" }));
  await expectError(rootA.send(new DescribeKeyCommand({ KeyId: "alias/tmp" })), "NotFoundException");
  await expectError(rootA.send(new DeleteAliasCommand({ AliasName: "alias/tmp" })), "NotFoundException");
});

await check("UpdateAlias: points an alias at another key of the account and region", async () => {
  const k1 = await newKey(), k2 = await newKey();
  const target = async (name) => (await rootA.send(new ListAliasesCommand({ Limit: 100 }))).Aliases
    .find((a) => a.AliasName === name);
  await rootA.send(new CreateAliasCommand({ AliasName: "alias/upd", TargetKeyId: k1.KeyId }));
  const before = await target("alias/upd");
  await new Promise((r) => setTimeout(r, 1100));
  equal((await rootA.send(new UpdateAliasCommand({ AliasName: "alias/upd", TargetKeyId: k2.Arn }))).$metadata.httpStatusCode,
    200, "status");
  const after = await target("alias/upd");
  equal(after.TargetKeyId, k2.KeyId, "TargetKeyId");
  equal(after.CreationDate.getTime(), before.CreationDate.getTime(), "CreationDate kept");
  assert(after.LastUpdatedDate > before.LastUpdatedDate, "LastUpdatedDate moves");
  equal((await rootA.send(new DescribeKeyCommand({ KeyId: "alias/upd" }))).KeyMetadata.Arn, k2.Arn, "alias resolves to k2");
  // what must exist, and what a target may be
  await expectError(rootA.send(new UpdateAliasCommand({ AliasName: "alias/none", TargetKeyId: k1.KeyId })), "NotFoundException");
  await expectError(rootA.send(new UpdateAliasCommand({ AliasName: "alias/upd", TargetKeyId: "alias/db-volume" })),
    "ValidationException");
  await expectError(rootA.send(new UpdateAliasCommand({ AliasName: "alias/upd",
    TargetKeyId: "00000000-0000-4000-8000-000000000000" })), "NotFoundException");
  await expectError(rootA.send(new UpdateAliasCommand({ AliasName: "nope", TargetKeyId: k1.KeyId })), "ValidationException");
  // other regions and accounts have their own aliases
  await expectError(rootAWest.send(new UpdateAliasCommand({ AliasName: "alias/upd", TargetKeyId: k1.KeyId })),
    "NotFoundException");
  await expectError(roleB.send(new UpdateAliasCommand({ AliasName: "alias/upd", TargetKeyId: k1.Arn })), "NotFoundException");
  // key states: a disabled target is fine, one pending deletion is not; the current key may be pending deletion
  await rootA.send(new DisableKeyCommand({ KeyId: k1.KeyId }));
  await rootA.send(new UpdateAliasCommand({ AliasName: "alias/upd", TargetKeyId: k1.KeyId }));
  await rootA.send(new ScheduleKeyDeletionCommand({ KeyId: k2.KeyId, PendingWindowInDays: 7 }));
  await expectError(rootA.send(new UpdateAliasCommand({ AliasName: "alias/upd", TargetKeyId: k2.KeyId })),
    "KMSInvalidStateException");
  await rootA.send(new CreateAliasCommand({ AliasName: "alias/upd-src", TargetKeyId: k1.KeyId }));
  await rootA.send(new CancelKeyDeletionCommand({ KeyId: k2.KeyId }));
  await rootA.send(new UpdateAliasCommand({ AliasName: "alias/upd-src", TargetKeyId: k2.KeyId }));
  await rootA.send(new ScheduleKeyDeletionCommand({ KeyId: k2.KeyId, PendingWindowInDays: 7 }));
  await rootA.send(new UpdateAliasCommand({ AliasName: "alias/upd-src", TargetKeyId: k1.KeyId }));
  equal((await target("alias/upd-src")).TargetKeyId, k1.KeyId, "moved off a key pending deletion");
  // kms:UpdateAlias is needed in the policies of both keys
  const guarded = await newKey(rootA, { Policy: policy([rootStatement, {
    Sid: "NoUpdateAliasForRole", Effect: "Deny", Principal: { AWS: `arn:aws:iam::${A}:role/db-host` },
    Action: "kms:UpdateAlias", Resource: "*" }]) });
  await expectError(roleA.send(new UpdateAliasCommand({ AliasName: "alias/upd", TargetKeyId: guarded.KeyId })),
    "AccessDeniedException", /kms:UpdateAlias/);
  await rootA.send(new UpdateAliasCommand({ AliasName: "alias/upd", TargetKeyId: guarded.KeyId }));
  await expectError(roleA.send(new UpdateAliasCommand({ AliasName: "alias/upd", TargetKeyId: k1.KeyId })),
    "AccessDeniedException", /kms:UpdateAlias/);
  await roleA2.send(new UpdateAliasCommand({ AliasName: "alias/upd", TargetKeyId: k1.KeyId }));
  // a key of another account cannot be the target, even when its policy allows it
  const bKey = await newKey(roleB);
  await roleB.send(new CreateAliasCommand({ AliasName: "alias/b-upd", TargetKeyId: bKey.KeyId }));
  const sharedUpd = await newKey(rootA, { Policy: policy([rootStatement, {
    Sid: "B", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${B}:root` }, Action: "kms:*", Resource: "*" }]) });
  await expectError(roleB.send(new UpdateAliasCommand({ AliasName: "alias/b-upd", TargetKeyId: sharedUpd.Arn })),
    "AccessDeniedException");
  await rootA.send(new DeleteAliasCommand({ AliasName: "alias/upd" }));
  await rootA.send(new DeleteAliasCommand({ AliasName: "alias/upd-src" }));
});

await check("unknown keys: NotFoundException", async () => {
  await expectError(rootA.send(new DescribeKeyCommand({ KeyId: "00000000-0000-4000-8000-000000000000" })),
    "NotFoundException");
  await expectError(rootA.send(new DescribeKeyCommand({ KeyId: "alias/none" })), "NotFoundException");
});

// ---- cryptography --------------------------------------------------------------

let blob;
await check("Encrypt/Decrypt round trip under an encryption context", async () => {
  const enc = await rootA.send(new EncryptCommand({ KeyId: "alias/db-volume", Plaintext: bytes("secret"), EncryptionContext: ctx }));
  equal(enc.KeyId, key.Arn, "Encrypt KeyId");
  equal(enc.EncryptionAlgorithm, "SYMMETRIC_DEFAULT", "EncryptionAlgorithm");
  blob = enc.CiphertextBlob;
  const dec = await rootA.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx }));
  equal(text(dec.Plaintext), "secret", "Plaintext (no KeyId)");
  equal(dec.KeyId, key.Arn, "Decrypt KeyId");
  const dec2 = await rootA.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx, KeyId: key.Arn }));
  equal(text(dec2.Plaintext), "secret", "Plaintext (with KeyId)");
});

await check("Decrypt refuses another context, a tampered blob, another key", async () => {
  await expectError(rootA.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { "cmkfs:volume": "other" } })),
    "InvalidCiphertextException");
  await expectError(rootA.send(new DecryptCommand({ CiphertextBlob: blob })), "InvalidCiphertextException");
  for (const at of [0, 50, blob.length - 1]) {
    const bad = Uint8Array.from(blob);
    bad[at] ^= 1;
    await expectError(rootA.send(new DecryptCommand({ CiphertextBlob: bad, EncryptionContext: ctx })),
      "InvalidCiphertextException");
  }
  await expectError(rootA.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx, KeyId: key2.KeyId })),
    "IncorrectKeyException");
  await expectError(rootA.send(new DecryptCommand({ CiphertextBlob: bytes("not a blob at all, just text") })),
    "InvalidCiphertextException");
});

await check("ReEncrypt moves a blob to another key and context", async () => {
  const dest = { purpose: "rotated" };
  const re = await rootA.send(new ReEncryptCommand({
    CiphertextBlob: blob, SourceEncryptionContext: ctx, DestinationKeyId: key2.KeyId,
    DestinationEncryptionContext: dest,
  }));
  equal(re.SourceKeyId, key.Arn, "SourceKeyId");
  equal(re.KeyId, key2.Arn, "KeyId");
  const dec = await rootA.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob, EncryptionContext: dest }));
  equal(text(dec.Plaintext), "secret", "re-encrypted plaintext");
  equal(dec.KeyId, key2.Arn, "now under key2");
});

await check("GenerateDataKey and WithoutPlaintext", async () => {
  const dk = await rootA.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 32, EncryptionContext: ctx }));
  equal(dk.Plaintext.length, 32, "data key size");
  equal(dk.KeyId, key.Arn, "KeyId");
  const back = await rootA.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ctx }));
  equal(Buffer.from(back.Plaintext).toString("hex"), Buffer.from(dk.Plaintext).toString("hex"), "decrypted data key");
  const spec = await rootA.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: "AES_128" }));
  equal(spec.Plaintext.length, 16, "AES_128 size");
  const np = await rootA.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: key.KeyId, KeySpec: "AES_256", EncryptionContext: ctx }));
  equal(np.Plaintext, undefined, "no Plaintext");
  const npBack = await rootA.send(new DecryptCommand({ CiphertextBlob: np.CiphertextBlob, EncryptionContext: ctx }));
  equal(npBack.Plaintext.length, 32, "its blob decrypts to 32 bytes");
  await expectError(rootA.send(new GenerateDataKeyCommand({ KeyId: key.KeyId })), "ValidationException");
  await expectError(rootA.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 32, KeySpec: "AES_256" })),
    "ValidationException");
  await expectError(rootA.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 1025 })),
    "ValidationException");
});

await check("GenerateRandom", async () => {
  const r1 = await rootA.send(new GenerateRandomCommand({ NumberOfBytes: 64 }));
  const r2 = await rootA.send(new GenerateRandomCommand({ NumberOfBytes: 64 }));
  equal(r1.Plaintext.length, 64, "size");
  assert(Buffer.compare(Buffer.from(r1.Plaintext), Buffer.from(r2.Plaintext)) !== 0, "random");
  await expectError(rootA.send(new GenerateRandomCommand({ NumberOfBytes: 0 })), "ValidationException");
});

await check("Encrypt limits: empty and oversized plaintext", async () => {
  await expectError(rootA.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: new Uint8Array(4097) })),
    "ValidationException");
  const ok = await rootA.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: new Uint8Array(4096) }));
  assert(ok.CiphertextBlob.length > 4096, "4096 bytes accepted");
});

// ---- key states ------------------------------------------------------------------

await check("disabled key: DisabledException, then enabled again", async () => {
  await rootA.send(new DisableKeyCommand({ KeyId: key.KeyId }));
  equal((await rootA.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata.KeyState, "Disabled", "state");
  await expectError(rootA.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx })), "DisabledException");
  await expectError(rootA.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 32 })), "DisabledException");
  await rootA.send(new EnableKeyCommand({ KeyId: key.KeyId }));
  const dec = await rootA.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx }));
  equal(text(dec.Plaintext), "secret", "decrypts again");
});

await check("scheduled deletion: PendingDeletion, KMSInvalidState, cancel leaves Disabled", async () => {
  const k = await newKey();
  const b = (await rootA.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: bytes("x") }))).CiphertextBlob;
  await expectError(rootA.send(new ScheduleKeyDeletionCommand({ KeyId: k.KeyId, PendingWindowInDays: 6 })),
    "ValidationException");
  const s = await rootA.send(new ScheduleKeyDeletionCommand({ KeyId: k.KeyId, PendingWindowInDays: 7 }));
  equal(s.KeyState, "PendingDeletion", "KeyState");
  equal(s.PendingWindowInDays, 7, "PendingWindowInDays");
  assert(Math.abs(s.DeletionDate - Date.now() - 7 * 86400000) < 120000, "DeletionDate in 7 days");
  const md = (await rootA.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata;
  equal(md.KeyState, "PendingDeletion", "described state");
  await expectError(rootA.send(new DecryptCommand({ CiphertextBlob: b })), "KMSInvalidStateException");
  await expectError(rootA.send(new EnableKeyCommand({ KeyId: k.KeyId })), "KMSInvalidStateException");
  await rootA.send(new CancelKeyDeletionCommand({ KeyId: k.KeyId }));
  const after = (await rootA.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata;
  equal(after.KeyState, "Disabled", "cancelled key is Disabled");
  equal(after.DeletionDate, undefined, "no DeletionDate");
  await expectError(rootA.send(new CancelKeyDeletionCommand({ KeyId: k.KeyId })), "KMSInvalidStateException");
});

await check("EXTERNAL origin: PendingImport, unusable", async () => {
  const k = await newKey(rootA, { Origin: "EXTERNAL" });
  equal(k.KeyState, "PendingImport", "KeyState");
  equal(k.Origin, "EXTERNAL", "Origin");
  await expectError(rootA.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: bytes("x") })), "KMSInvalidStateException");
  await expectError(rootA.send(new EnableKeyRotationCommand({ KeyId: k.KeyId })), "UnsupportedOperationException");
});

await check("unsupported key specs are refused", async () => {
  await expectError(newKey(rootA, { KeySpec: "RSA_2048" }), "UnsupportedOperationException");
  await expectError(newKey(rootA, { KeyUsage: "SIGN_VERIFY" }), "UnsupportedOperationException");
});

// ---- rotation ----------------------------------------------------------------------

await check("rotation: status, on demand, old ciphertexts still decrypt", async () => {
  const k = await newKey();
  const old = (await rootA.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: bytes("before"), EncryptionContext: ctx }))).CiphertextBlob;
  equal((await rootA.send(new GetKeyRotationStatusCommand({ KeyId: k.KeyId }))).KeyRotationEnabled, false, "off");
  await expectError(rootA.send(new EnableKeyRotationCommand({ KeyId: k.KeyId, RotationPeriodInDays: 30 })),
    "ValidationException");
  await rootA.send(new EnableKeyRotationCommand({ KeyId: k.KeyId, RotationPeriodInDays: 180 }));
  const st = await rootA.send(new GetKeyRotationStatusCommand({ KeyId: k.KeyId }));
  equal(st.KeyRotationEnabled, true, "on");
  equal(st.RotationPeriodInDays, 180, "period");
  assert(st.NextRotationDate > new Date(), "next rotation in the future");
  await rootA.send(new RotateKeyOnDemandCommand({ KeyId: k.KeyId }));
  const fresh = (await rootA.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: bytes("after"), EncryptionContext: ctx }))).CiphertextBlob;
  equal(text((await rootA.send(new DecryptCommand({ CiphertextBlob: old, EncryptionContext: ctx }))).Plaintext), "before", "old blob");
  equal(text((await rootA.send(new DecryptCommand({ CiphertextBlob: fresh, EncryptionContext: ctx }))).Plaintext), "after", "new blob");
  assert(Buffer.compare(Buffer.from(old.slice(4, 40)), Buffer.from(fresh.slice(4, 40))) === 0, "same key id in blobs");
  assert(Buffer.compare(Buffer.from(old.slice(40, 44)), Buffer.from(fresh.slice(40, 44))) !== 0, "new material version");
  await rootA.send(new DisableKeyRotationCommand({ KeyId: k.KeyId }));
  equal((await rootA.send(new GetKeyRotationStatusCommand({ KeyId: k.KeyId }))).KeyRotationEnabled, false, "off again");
});

// ---- tags ----------------------------------------------------------------------------

await check("tags: add, list, remove, reserved prefix", async () => {
  await rootA.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: "env", TagValue: "prod" }, { TagKey: "team", TagValue: "dba" }] }));
  const tags = (await rootA.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags;
  const map = Object.fromEntries(tags.map((t) => [t.TagKey, t.TagValue]));
  equal(map.env, "prod", "env tag");
  equal(map.team, "dba", "team tag replaced");
  equal(tags.length, 2, "two tags");
  await rootA.send(new UntagResourceCommand({ KeyId: key.KeyId, TagKeys: ["env"] }));
  equal((await rootA.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags.length, 1, "one left");
  await expectError(rootA.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: "aws:x", TagValue: "y" }] })),
    "TagException");
});

// ---- key policies and access ---------------------------------------------------------

await check("default policy: same-account role allowed, other account denied", async () => {
  const enc = await roleA.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: bytes("r"), EncryptionContext: ctx }));
  assert(enc.CiphertextBlob.length > 0, "role in the key's account may encrypt");
  await expectError(roleB.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: ctx, KeyId: key.Arn })),
    "AccessDeniedException", /arn:aws:iam::222222222222:role\/db-host.*kms:Decrypt.*key\//);
  // By key id alone a key of another account does not even exist.
  await expectError(roleB.send(new DescribeKeyCommand({ KeyId: key.KeyId })), "NotFoundException");
  const p = JSON.parse((await rootA.send(new GetKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: "default" }))).Policy);
  equal(p.Statement[0].Principal.AWS, `arn:aws:iam::${A}:root`, "default policy principal");
});

let shared;
await check("cross-account use works once the key policy shares the key", async () => {
  shared = await newKey(rootA, { Policy: policy([rootStatement, {
    Sid: "Share with B's db-host", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${B}:role/db-host` },
    Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"], Resource: "*",
  }]) });
  const dk = await roleB.send(new GenerateDataKeyCommand({ KeyId: shared.Arn, NumberOfBytes: 32, EncryptionContext: ctx }));
  const back = await roleB.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ctx, KeyId: shared.Arn }));
  equal(back.Plaintext.length, 32, "B decrypts its data key");
  // ...but only the actions shared, and not management.
  await expectError(roleB.send(new ReEncryptCommand({ CiphertextBlob: dk.CiphertextBlob, SourceEncryptionContext: ctx,
    DestinationKeyId: shared.Arn, DestinationEncryptionContext: ctx })), "AccessDeniedException");
  await expectError(roleB.send(new DisableKeyCommand({ KeyId: shared.Arn })), "AccessDeniedException");
});

await check("GetKeyRotationStatus works across accounts when the key policy allows it", async () => {
  const k = await newKey(rootA, { Policy: policy([rootStatement, {
    Sid: "RotationStatusForB", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${B}:role/db-host` },
    Action: "kms:GetKeyRotationStatus", Resource: "*",
  }]) });
  await rootA.send(new EnableKeyRotationCommand({ KeyId: k.KeyId }));
  const st = await roleB.send(new GetKeyRotationStatusCommand({ KeyId: k.Arn }));
  equal(st.KeyRotationEnabled, true, "B sees rotation enabled");
  equal(st.KeyId, k.Arn, "KeyId");
  // not shared: refused; by key id alone: not found in B's account
  await expectError(roleB.send(new GetKeyRotationStatusCommand({ KeyId: key.Arn })), "AccessDeniedException");
  await expectError(roleB.send(new GetKeyRotationStatusCommand({ KeyId: k.KeyId })), "NotFoundException");
  // only the status: management stays in the key's account
  await expectError(roleB.send(new DisableKeyRotationCommand({ KeyId: k.Arn })), "AccessDeniedException");
});

await check("revoking the share in the key policy denies at once", async () => {
  await rootA.send(new PutKeyPolicyCommand({ KeyId: shared.KeyId, PolicyName: "default", Policy: policy([rootStatement]) }));
  await expectError(roleB.send(new GenerateDataKeyCommand({ KeyId: shared.Arn, NumberOfBytes: 32 })), "AccessDeniedException");
});

await check("an explicit Deny beats an Allow", async () => {
  const k = await newKey(rootA, { Policy: policy([rootStatement, {
    Sid: "DenyRoleDecrypt", Effect: "Deny", Principal: { AWS: `arn:aws:iam::${A}:role/db-host` },
    Action: "kms:Decrypt", Resource: "*",
  }]) });
  const b = (await roleA.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: bytes("d") }))).CiphertextBlob;
  await expectError(roleA.send(new DecryptCommand({ CiphertextBlob: b })), "AccessDeniedException", /explicit deny/);
  equal(text((await roleA2.send(new DecryptCommand({ CiphertextBlob: b }))).Plaintext), "d", "another role is not denied");
});

await check("a policy condition on the encryption context", async () => {
  const k = await newKey(rootA, { Policy: policy([
    { ...rootStatement, Principal: { AWS: `arn:aws:iam::${A}:root` }, Action: ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"] },
    { Sid: "OnlyThisVolume", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${A}:root` }, Action: ["kms:Encrypt", "kms:Decrypt"],
      Resource: "*", Condition: { StringEquals: { "kms:EncryptionContext:cmkfs:volume": ctx["cmkfs:volume"] } } },
  ]) });
  await roleA.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: bytes("c"), EncryptionContext: ctx }));
  await expectError(roleA.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: bytes("c"), EncryptionContext: { "cmkfs:volume": "x" } })),
    "AccessDeniedException");
  await expectError(roleA.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: bytes("c") })), "AccessDeniedException");
});

await check("key policies: malformed and lockout are refused, bypass allowed", async () => {
  await expectError(rootA.send(new PutKeyPolicyCommand({ KeyId: key2.KeyId, PolicyName: "default", Policy: "{not json" })),
    "MalformedPolicyDocumentException");
  await expectError(rootA.send(new PutKeyPolicyCommand({ KeyId: key2.KeyId, PolicyName: "default",
    Policy: policy([{ Effect: "Maybe", Principal: "*", Action: "kms:*", Resource: "*" }]) })), "MalformedPolicyDocumentException");
  const lockout = policy([{ Effect: "Allow", Principal: { AWS: `arn:aws:iam::${B}:root` }, Action: "kms:*", Resource: "*" }]);
  await expectError(rootA.send(new PutKeyPolicyCommand({ KeyId: key2.KeyId, PolicyName: "default", Policy: lockout })),
    "MalformedPolicyDocumentException", /will not allow you to update the key policy/);
  const k = await newKey();
  await rootA.send(new PutKeyPolicyCommand({ KeyId: k.KeyId, PolicyName: "default", Policy: lockout, BypassPolicyLockoutSafetyCheck: true }));
  await expectError(rootA.send(new DescribeKeyCommand({ KeyId: k.KeyId })), "AccessDeniedException");
});

// ---- grants ------------------------------------------------------------------------------

await check("grants: allow at once, listed, revoked at once", async () => {
  const k = await newKey();
  const dk = await rootA.send(new GenerateDataKeyCommand({ KeyId: k.KeyId, NumberOfBytes: 32, EncryptionContext: ctx }));
  await expectError(roleB.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ctx, KeyId: k.Arn })),
    "AccessDeniedException");
  const g = await rootA.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: `arn:aws:iam::${B}:role/db-host`,
    Operations: ["Decrypt", "GenerateDataKey"], Constraints: { EncryptionContextSubset: ctx }, Name: "db-host-b" }));
  assert(/^[0-9a-f]{64}$/.test(g.GrantId), "GrantId");
  assert(g.GrantToken.length > 20, "GrantToken");
  const back = await roleB.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ctx, KeyId: k.Arn,
    GrantTokens: [g.GrantToken] }));
  equal(back.Plaintext.length, 32, "grantee decrypts");
  await expectError(roleB.send(new EncryptCommand({ KeyId: k.Arn, Plaintext: bytes("e"), EncryptionContext: ctx })),
    "AccessDeniedException");   // not a granted operation
  await expectError(roleB.send(new GenerateDataKeyCommand({ KeyId: k.Arn, NumberOfBytes: 32 })),
    "AccessDeniedException");   // constraint: context must include the volume
  const listed = (await rootA.send(new ListGrantsCommand({ KeyId: k.KeyId }))).Grants;
  equal(listed.length, 1, "one grant");
  equal(listed[0].GrantId, g.GrantId, "listed GrantId");
  equal(listed[0].GranteePrincipal, `arn:aws:iam::${B}:role/db-host`, "listed grantee");
  equal(listed[0].Name, "db-host-b", "listed name");
  equal(listed[0].Constraints.EncryptionContextSubset["cmkfs:volume"], ctx["cmkfs:volume"], "listed constraints");
  await rootA.send(new RevokeGrantCommand({ KeyId: k.KeyId, GrantId: g.GrantId }));
  await expectError(roleB.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ctx, KeyId: k.Arn })),
    "AccessDeniedException");
  await expectError(roleB.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ctx, KeyId: k.Arn,
    GrantTokens: [g.GrantToken] })), "InvalidGrantTokenException");
  await expectError(rootA.send(new RevokeGrantCommand({ KeyId: k.KeyId, GrantId: g.GrantId })), "NotFoundException");
  await expectError(rootA.send(new RevokeGrantCommand({ KeyId: k.KeyId, GrantId: "xyz" })), "InvalidGrantIdException");
});

await check("grants: retire by token, retirable listing", async () => {
  const k = await newKey();
  const g = await rootA.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: `arn:aws:iam::${A}:role/db-host`,
    RetiringPrincipal: `arn:aws:iam::${A}:role/db-host2`, Operations: ["Encrypt"] }));
  const retirable = (await roleA2.send(new ListRetirableGrantsCommand({ RetiringPrincipal: `arn:aws:iam::${A}:role/db-host2` }))).Grants;
  assert(retirable.some((x) => x.GrantId === g.GrantId), "listed as retirable");
  await expectError(roleB.send(new RetireGrantCommand({ GrantToken: g.GrantToken })), "AccessDeniedException");
  await roleA2.send(new RetireGrantCommand({ GrantToken: g.GrantToken }));
  equal((await rootA.send(new ListGrantsCommand({ KeyId: k.KeyId }))).Grants.length, 0, "retired");
  await expectError(roleA2.send(new RetireGrantCommand({ GrantToken: g.GrantToken })), "InvalidGrantTokenException");
  await expectError(rootA.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: `arn:aws:iam::${A}:role/x`,
    Operations: ["Sign"] })), "ValidationException");
});

await check("grants cannot be escalated, Deny cannot be hidden, retirable lists stay in the account", async () => {
  const k = await newKey();
  await rootA.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: `arn:aws:iam::${B}:role/db-host`,
    Operations: ["CreateGrant"] }));
  // B may create grants only with operations of its own grant
  await expectError(roleB.send(new CreateGrantCommand({ KeyId: k.Arn, GranteePrincipal: `arn:aws:iam::${B}:role/db-host`,
    Operations: ["Decrypt"] })), "AccessDeniedException", /only operations of that grant/);
  const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
  await expectError(rootA.send(new EncryptCommand({ KeyId: k.KeyId, Plaintext: bytes("x"), EncryptionContext: many })),
    "ValidationException");
  await expectError(roleB.send(new ListRetirableGrantsCommand({ RetiringPrincipal: `arn:aws:iam::${A}:role/db-host2` })),
    "AccessDeniedException");
});

await check("grant constraints bind only operations with an encryption context", async () => {
  const k = await newKey();
  const granteeB = `arn:aws:iam::${B}:role/db-host`;
  await rootA.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: granteeB,
    Operations: ["DescribeKey", "Decrypt", "Encrypt", "CreateGrant"], Constraints: { EncryptionContextSubset: ctx } }));
  // DescribeKey takes no context: the constraint does not apply to it
  equal((await roleB.send(new DescribeKeyCommand({ KeyId: k.Arn }))).KeyMetadata.Arn, k.Arn, "DescribeKey via a constrained grant");
  await roleB.send(new EncryptCommand({ KeyId: k.Arn, Plaintext: bytes("c"), EncryptionContext: ctx }));
  await expectError(roleB.send(new EncryptCommand({ KeyId: k.Arn, Plaintext: bytes("c") })), "AccessDeniedException");
  // CreateGrant through it: some of its operations, constraints at least as strict
  const child = (Constraints, Operations = ["Decrypt"]) => roleB.send(new CreateGrantCommand({ KeyId: k.Arn,
    GranteePrincipal: `arn:aws:iam::${B}:role/other`, Operations, Constraints }));
  await child({ EncryptionContextSubset: ctx });
  await child({ EncryptionContextSubset: { ...ctx, extra: "pair" } }, ["Decrypt", "CreateGrant"]);
  await child({ EncryptionContextEquals: ctx });
  await child({ EncryptionContextEquals: { ...ctx, extra: "pair" } });
  await expectError(child(undefined), "AccessDeniedException", /at least as strict/);
  await expectError(child({ EncryptionContextSubset: { other: "x" } }), "AccessDeniedException");
  await expectError(child({ EncryptionContextSubset: { "cmkfs:volume": "another" } }), "AccessDeniedException");
  await expectError(child({ EncryptionContextEquals: { other: "x" } }), "AccessDeniedException");
  await expectError(child({ EncryptionContextSubset: ctx }, ["Decrypt", "GenerateDataKey"]), "AccessDeniedException");
  // an EncryptionContextEquals parent: only the same Equals passes on
  const k2 = await newKey();
  await rootA.send(new CreateGrantCommand({ KeyId: k2.KeyId, GranteePrincipal: granteeB,
    Operations: ["Decrypt", "CreateGrant"], Constraints: { EncryptionContextEquals: ctx } }));
  const child2 = (Constraints) => roleB.send(new CreateGrantCommand({ KeyId: k2.Arn,
    GranteePrincipal: `arn:aws:iam::${B}:role/other`, Operations: ["Decrypt"], Constraints }));
  await child2({ EncryptionContextEquals: ctx });
  await expectError(child2({ EncryptionContextSubset: ctx }), "AccessDeniedException");
  await expectError(child2({ EncryptionContextEquals: { ...ctx, extra: "pair" } }), "AccessDeniedException");
  await expectError(child2(undefined), "AccessDeniedException");
});

await check("encryption context keys: case-insensitive in grant constraints and policy conditions", async () => {
  const vol = ctx["cmkfs:volume"];
  const k = await newKey(rootA, { Policy: policy([rootStatement,
    { Sid: "ByContext", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${B}:role/db-host` }, Action: "kms:Encrypt",
      Resource: "*", Condition: { StringEquals: { "kms:EncryptionContext:CMKFS:Volume": vol } } }]) });
  await roleB.send(new EncryptCommand({ KeyId: k.Arn, Plaintext: bytes("p"), EncryptionContext: ctx }));
  await roleB.send(new EncryptCommand({ KeyId: k.Arn, Plaintext: bytes("p"), EncryptionContext: { "Cmkfs:VOLUME": vol } }));
  await expectError(roleB.send(new EncryptCommand({ KeyId: k.Arn, Plaintext: bytes("p"),
    EncryptionContext: { "cmkfs:volume": vol.toUpperCase() } })), "AccessDeniedException");   // values keep their case
  await rootA.send(new CreateGrantCommand({ KeyId: k.KeyId, GranteePrincipal: `arn:aws:iam::${B}:role/db-host`,
    Operations: ["GenerateDataKey"], Constraints: { EncryptionContextSubset: { "CMKFS:VOLUME": vol } } }));
  await roleB.send(new GenerateDataKeyCommand({ KeyId: k.Arn, NumberOfBytes: 32, EncryptionContext: ctx }));
  await expectError(roleB.send(new GenerateDataKeyCommand({ KeyId: k.Arn, NumberOfBytes: 32,
    EncryptionContext: { "cmkfs:volume": vol.toUpperCase() } })), "AccessDeniedException");
  const k2 = await newKey();
  await rootA.send(new CreateGrantCommand({ KeyId: k2.KeyId, GranteePrincipal: `arn:aws:iam::${B}:role/db-host`,
    Operations: ["GenerateDataKey"], Constraints: { EncryptionContextEquals: { "Cmkfs:Volume": vol } } }));
  await roleB.send(new GenerateDataKeyCommand({ KeyId: k2.Arn, NumberOfBytes: 32, EncryptionContext: ctx }));
  await expectError(roleB.send(new GenerateDataKeyCommand({ KeyId: k2.Arn, NumberOfBytes: 32,
    EncryptionContext: { ...ctx, other: "x" } })), "AccessDeniedException");
  // keys differing only in case with different values meet no constraint on that key
  await expectError(roleB.send(new GenerateDataKeyCommand({ KeyId: k2.Arn, NumberOfBytes: 32,
    EncryptionContext: { ...ctx, "CMKFS:VOLUME": "other" } })), "AccessDeniedException");
});

await check("list operations refuse a Limit above AWS's maximum, and default as AWS does", async () => {
  const k = await newKey();
  const over = [
    [new ListKeysCommand({ Limit: 1001 }), new ListKeysCommand({ Limit: 1000 })],
    [new ListAliasesCommand({ Limit: 101 }), new ListAliasesCommand({ Limit: 100 })],
    [new ListGrantsCommand({ KeyId: k.KeyId, Limit: 101 }), new ListGrantsCommand({ KeyId: k.KeyId, Limit: 100 })],
    [new ListRetirableGrantsCommand({ RetiringPrincipal: `arn:aws:iam::${A}:role/db-host2`, Limit: 101 }),
      new ListRetirableGrantsCommand({ RetiringPrincipal: `arn:aws:iam::${A}:role/db-host2`, Limit: 100 })],
    [new ListResourceTagsCommand({ KeyId: k.KeyId, Limit: 51 }), new ListResourceTagsCommand({ KeyId: k.KeyId, Limit: 50 })],
  ];
  for (const [bad, good] of over) {
    await expectError(rootA.send(bad), "ValidationException", /limit/);
    await rootA.send(good);
  }
  await expectError(rootA.send(new ListKeysCommand({ Limit: 0 })), "ValidationException");
  // ListAliases pages 50 at a time unless told otherwise
  const have = (await rootA.send(new ListAliasesCommand({ Limit: 100 }))).Aliases.length;
  for (let i = have; i < 51; i++)
    await rootA.send(new CreateAliasCommand({ AliasName: `alias/page-${i}`, TargetKeyId: k.KeyId }));
  const page = await rootA.send(new ListAliasesCommand({}));
  equal(page.Aliases.length, 50, "default ListAliases page");
  equal(page.Truncated, true, "Truncated");
});

// ---- regions ------------------------------------------------------------------------------

await check("regions: keys live in one region; others do not see them", async () => {
  const west = await newKey(rootAWest);
  assert(west.Arn.startsWith(`arn:aws:kms:eu-west-1:${A}:key/`), "eu-west-1 ARN");
  await expectError(rootA.send(new DescribeKeyCommand({ KeyId: west.Arn })), "NotFoundException", /eu-west-1/);
  await expectError(rootA.send(new DescribeKeyCommand({ KeyId: west.KeyId })), "NotFoundException");
  const b = (await rootAWest.send(new EncryptCommand({ KeyId: west.KeyId, Plaintext: bytes("w") }))).CiphertextBlob;
  await expectError(rootA.send(new DecryptCommand({ CiphertextBlob: b })), "NotFoundException");
  const south = client(creds("root-a"), { region: "ap-south-1" });
  await expectError(south.send(new ListKeysCommand({})), "NotFoundException", /ap-south-1/);
});

// ---- signatures and credentials ------------------------------------------------------------

await check("credentials: session token, expiry, wrong secret, unknown key", async () => {
  await tempA.send(new ListKeysCommand({}));
  const t = readEnv(creds("temp-a"));
  const noToken = client(creds("temp-a"), { credentials: { accessKeyId: t.AWS_ACCESS_KEY_ID, secretAccessKey: t.AWS_SECRET_ACCESS_KEY } });
  await expectError(noToken.send(new ListKeysCommand({})), "UnrecognizedClientException");
  const badToken = client(creds("temp-a"), { credentials: { ...{ accessKeyId: t.AWS_ACCESS_KEY_ID, secretAccessKey: t.AWS_SECRET_ACCESS_KEY }, sessionToken: "forged" } });
  await expectError(badToken.send(new ListKeysCommand({})), "UnrecognizedClientException");
  await expectError(client(creds("expired-a")).send(new ListKeysCommand({})), "ExpiredTokenException");
  const r = readEnv(creds("root-a"));
  const s0 = r.AWS_SECRET_ACCESS_KEY;
  const changed = (s0[0] === "A" ? "B" : "A") + s0.slice(1);   // surely different
  const wrong = client(creds("root-a"), { credentials: { accessKeyId: r.AWS_ACCESS_KEY_ID, secretAccessKey: changed } });
  await expectError(wrong.send(new ListKeysCommand({})), "InvalidSignatureException", /signature we calculated does not match/);
  const unknown = client(creds("root-a"), { credentials: { accessKeyId: "AKIAUNKNOWNUNKNOWN00", secretAccessKey: r.AWS_SECRET_ACCESS_KEY } });
  await expectError(unknown.send(new ListKeysCommand({})), "UnrecognizedClientException");
});

// Raw requests, signed by the SDK's own SigV4 signer, to reach what a
// well-behaved client never sends.
class Sha256 {
  constructor(secret) { this.h = secret ? createHmac("sha256", secret) : createHash("sha256"); }
  update(d) { this.h.update(d); }
  async digest() { return new Uint8Array(this.h.digest()); }
}

async function raw(action, body, { envName = "root-a", signingDate, region = "us-east-1", sign = true, headers = {}, mangle } = {}) {
  const env = readEnv(creds(envName));
  const url = new URL(process.env.KMSD_URL);
  const request = {
    method: "POST", protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path: "/",
    headers: { host: url.host, "content-type": "application/x-amz-json-1.1", "x-amz-target": `TrentService.${action}`, ...headers },
    body,
  };
  let signed = request;
  if (sign) {
    const signer = new SignatureV4({ service: "kms", region, sha256: Sha256,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } });
    signed = await signer.sign(request, { signingDate });
    if (mangle) signed.headers.authorization = mangle(signed.headers.authorization);
  }
  // fetch sets Host itself, to the same value the signature covers.
  const { host, ...sendHeaders } = signed.headers;
  const res = await fetch(`${process.env.KMSD_URL}/`, { method: "POST", headers: sendHeaders, body });
  const json = await res.json();
  return { status: res.status, type: json.__type, message: json.message, json, requestId: res.headers.get("x-amzn-requestid") };
}

await check("raw: a replayed request outside the skew window is refused", async () => {
  const ok = await raw("ListKeys", "{}");
  equal(ok.status, 200, "fresh request");
  assert(/^[0-9a-f-]{36}$/.test(ok.requestId), "x-amzn-RequestId");
  const old = await raw("ListKeys", "{}", { signingDate: new Date(Date.now() - 10 * 60 * 1000) });
  equal(old.type, "InvalidSignatureException", "type");
  assert(/^Signature expired/.test(old.message), `message: ${old.message}`);
  const future = await raw("ListKeys", "{}", { signingDate: new Date(Date.now() + 10 * 60 * 1000) });
  equal(future.type, "InvalidSignatureException", "future");
});

await check("raw: missing or forged signatures", async () => {
  equal((await raw("ListKeys", "{}", { sign: false })).type, "IncompleteSignatureException", "unsigned");
  const env = readEnv(creds("root-a"));
  const forged = await raw("ListKeys", "{}", { sign: false, headers: {
    "x-amz-date": new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+/, ""),
    authorization: `AWS4-HMAC-SHA256 Credential=${env.AWS_ACCESS_KEY_ID}/20200101/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=${"0".repeat(64)}` } });
  equal(forged.type, "InvalidSignatureException", "forged");
  // the right signature in upper-case hex: AWS wants lower case
  const upper = await raw("ListKeys", "{}", { mangle: (a) => a.replace(/Signature=([0-9a-f]+)/, (_, h) => `Signature=${h.toUpperCase()}`) });
  equal(upper.type, "InvalidSignatureException", "upper-case signature");
  assert(/signature we calculated does not match/.test(upper.message), `message: ${upper.message}`);
  equal((await raw("ListKeys", "{}", { mangle: (a) => a })).status, 200, "the same request, untouched");
});

await check("raw: malformed bodies and unknown actions", async () => {
  equal((await raw("ListKeys", "{not json")).type, "SerializationException", "bad JSON");
  equal((await raw("ListKeys", "[1,2]")).type, "SerializationException", "not an object");
  equal((await raw("ListKeys", JSON.stringify({ Limit: "ten" }))).type, "SerializationException", "wrong type");
  equal((await raw("Encrypt", JSON.stringify({ KeyId: key.KeyId, Plaintext: "!!!" }))).type, "SerializationException", "bad base64");
  equal((await raw("Encrypt", JSON.stringify({ KeyId: "", Plaintext: "AA==" }))).type, "ValidationException", "empty KeyId");
  equal((await raw("FrobnicateKey", "{}")).type, "UnknownOperationException", "unknown action");
  const deep = "[".repeat(100) + "]".repeat(100);
  equal((await raw("ListKeys", `{"a":${deep}}`)).type, "SerializationException", "nesting limit");
  const huge = await raw("ListKeys", JSON.stringify({ Pad: "x".repeat(300 * 1024) }));
  assert(huge.status === 413 && huge.type === "ValidationException", `oversized body: ${huge.status} ${huge.type}`);
});

await check("raw: Encrypt's Plaintext as JSON may write it (it is read before json-c sees it)", async () => {
  const pt = Buffer.from([1, 2, 3, 0xff, 0xfe, 0xfd]);   // base64 "AQID//79": slashes
  const b64 = pt.toString("base64");
  const body = (plaintext, extra = "") =>
    `{"KeyId":"${key.KeyId}",${extra}"EncryptionContext":{"Plaintext":"not this"},"Plaintext":${plaintext}}`;
  for (const [what, p] of [["plain", `"${b64}"`], ["escaped slashes", `"${b64.replace(/\//g, "\\/")}"`],
    ["\\u escapes", `"${[...b64].map((c) => "\\u00" + c.charCodeAt(0).toString(16)).join("")}"`]]) {
    const enc = await raw("Encrypt", body(p));
    equal(enc.status, 200, `Encrypt, ${what}`);
    const dec = await rootA.send(new DecryptCommand({ CiphertextBlob: Buffer.from(enc.json.CiphertextBlob, "base64"),
      EncryptionContext: { Plaintext: "not this" } }));
    equal(Buffer.from(dec.Plaintext).toString("hex"), pt.toString("hex"), `round trip, ${what}`);
  }
  equal((await raw("Encrypt", body(`"${b64}"`, `"Plaintext":"AA==",`))).type, "SerializationException", "Plaintext twice");
  equal((await raw("Encrypt", body("12"))).type, "SerializationException", "a number");
  equal((await raw("Encrypt", body('""'))).type, "ValidationException", "empty");
  equal((await raw("Encrypt", body('"\\u00e9AAA"'))).type, "SerializationException", "not base64");
  equal((await raw("Encrypt", `{"KeyId":"${key.KeyId}"}`)).type, "ValidationException", "missing");
  equal((await raw("Encrypt", `{"KeyId":"${key.KeyId}","Plaintext":"AA==",}`)).type, "SerializationException",
    "a trailing comma");
  equal((await raw("Encrypt", `{"KeyId":"${key.KeyId}","Plaintext":"AA==" // a comment\n}`)).type,
    "SerializationException", "a comment");
});

await check("raw: NUL in a string is refused (C strings would cut a context there)", async () => {
  const enc = (ctx) => `{"KeyId":"${key.KeyId}","Plaintext":"AA==","EncryptionContext":${ctx}}`;
  const inValue = await raw("Encrypt", enc('{"k":"x\\u0000secret"}'));
  equal(inValue.type, "ValidationException", "NUL in a context value");
  equal((await raw("Encrypt", enc('{"k\\u0000x":"v"}'))).type, "ValidationException", "NUL in a context key");
  equal((await raw("CreateKey", '{"Description":"a\\u0000b"}')).type, "ValidationException", "NUL in a description");
  // an escaped backslash followed by u0000 is no NUL
  equal((await raw("Encrypt", enc('{"k":"x\\\\u0000"}'))).status, 200, "a backslash and u0000");
});

await check("raw: invalid UTF-8 in a string is refused, nothing stored", async () => {
  const before = (await rootA.send(new ListKeysCommand({}))).Keys.length;
  // bytes no UTF-8 has, an overlong NUL, an encoded surrogate, past U+10FFFF
  for (const bad of [[0xff, 0xfe], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
    const body = Buffer.concat([Buffer.from('{"Description":"bad '), Buffer.from(bad), Buffer.from('"}')]);
    equal((await raw("CreateKey", body)).type, "SerializationException", `invalid UTF-8 ${bad.map((b) => b.toString(16))}`);
  }
  equal((await raw("CreateKey", Buffer.from(JSON.stringify({ Description: "ok é 🔑" })))).status, 200, "valid UTF-8");
  equal((await rootA.send(new ListKeysCommand({}))).Keys.length, before + 1, "only the valid key made");
});

await check("DryRun: authorized requests answer DryRunOperationException and do nothing", async () => {
  const { CiphertextBlob } = await rootA.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: bytes("dry"), EncryptionContext: ctx }));
  const e = await expectError(rootA.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: ctx, DryRun: true })),
    "DryRunOperationException");
  equal(e.$metadata.httpStatusCode, 412, "HTTP status");
  assert(!("Plaintext" in e), "no plaintext with the error");
  await expectError(rootA.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: bytes("x"), DryRun: true })),
    "DryRunOperationException");
  await expectError(rootA.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 32, DryRun: true })),
    "DryRunOperationException");
  // not authorized: the refusal, not the dry run's answer
  await expectError(roleB.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: ctx, KeyId: key.Arn, DryRun: true })),
    "AccessDeniedException");
  // a grant made in a dry run does not exist
  const grants = async () => (await rootA.send(new ListGrantsCommand({ KeyId: key.KeyId }))).Grants.length;
  const n = await grants();
  await expectError(rootA.send(new CreateGrantCommand({ KeyId: key.KeyId, GranteePrincipal: `arn:aws:iam::${A}:role/dry`,
    Operations: ["Decrypt"], DryRun: true })), "DryRunOperationException");
  equal(await grants(), n, "grants after a dry-run CreateGrant");
  // a failure that is not about permission is still that failure
  await expectError(rootA.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { other: "x" }, DryRun: true })),
    "InvalidCiphertextException");
});

finish();
