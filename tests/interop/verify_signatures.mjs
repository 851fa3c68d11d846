// Verifies recorded webhook requests with the official Standard Webhooks
// library, once per secret in the secret file (as a receiver mid-rotation
// would), and checks that a tampered body is rejected.
//   node verify_signatures.mjs SECRET_FILE REQUESTS.jsonl
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const [secretFile, requestsFile] = process.argv.slice(2);
const secrets = readFileSync(secretFile, "utf8")
  .split("\n")
  .map((s) => s.trim())
  .filter((s) => s && !s.startsWith("#"));
const requests = readFileSync(requestsFile, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((line) => JSON.parse(line));
if (secrets.length === 0 || requests.length === 0) {
  console.error("nothing to verify");
  process.exit(1);
}

for (const r of requests) {
  for (const secret of secrets) {
    // Throws on a bad signature or a timestamp outside the library's tolerance.
    const event = new Webhook(secret).verify(r.body, r.headers);
    if (event.data.id !== r.headers["webhook-id"]) {
      throw new Error(`webhook-id ${r.headers["webhook-id"]} is not the event's id ${event.data.id}`);
    }
  }
}
console.log(`verified ${requests.length} requests with ${secrets.length} secrets`);

const tampered = requests[0].body.replace("touchpoint.due", "touchpoint.dud");
try {
  new Webhook(secrets[0]).verify(tampered, requests[0].headers);
  console.error("a tampered body was accepted");
  process.exit(1);
} catch (e) {
  console.log(`rejected a tampered body: ${e.message}`);
}
