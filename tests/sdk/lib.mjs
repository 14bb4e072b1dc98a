// lib.mjs — a small harness for driving cmkfs-kmsd with the official AWS SDK
// for JavaScript: clients per principal, checks that count, and expected
// errors checked by the SDK's own exception class name.
import { readFileSync } from "node:fs";
import { KMSClient } from "@aws-sdk/client-kms";

let passed = 0;
const failures = [];

// Credentials from a file of "export NAME=value" lines, as cmkfs-kmsd
// init / principal add print them.
export function readEnv(path) {
  const env = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = line.match(/^export ([A-Z_]+)=(.*)$/);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

export function client(envFile, overrides = {}) {
  const env = readEnv(envFile);
  return new KMSClient({
    region: overrides.region ?? env.AWS_REGION,
    endpoint: process.env.KMSD_URL,
    credentials: overrides.credentials ?? {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      sessionToken: env.AWS_SESSION_TOKEN,
    },
    maxAttempts: 1,
    ...overrides.config,
  });
}

export async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

export function equal(got, want, msg) {
  if (got !== want)
    throw new Error(`${msg}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

// Run the promise; it must reject with an SDK exception of class `name`
// (and, when given, a message matching `pattern`).  Returns the error.
export async function expectError(promise, name, pattern) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  if (!err) throw new Error(`expected ${name}, but the call succeeded`);
  if (err.name !== name)
    throw new Error(`expected ${name}, got ${err.name}: ${err.message}`);
  if (pattern && !pattern.test(err.message))
    throw new Error(`${name} message ${JSON.stringify(err.message)} does not match ${pattern}`);
  return err;
}

export function bytes(s) {
  return new TextEncoder().encode(s);
}

export function text(b) {
  return new TextDecoder().decode(b);
}

export function finish() {
  console.log(`${passed} passed, ${failures.length} failed`);
  if (failures.length) {
    console.log(`failed: ${failures.join("; ")}`);
    process.exit(1);
  }
}
