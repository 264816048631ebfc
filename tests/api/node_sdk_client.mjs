// The official `openai` Node SDK against the sora-temporal API: create, poll, retrieve, list,
// download, delete, and a 404. Run by test_api_node_sdk.py; prints one JSON line.
import { readFile, writeFile } from 'node:fs/promises';
import OpenAI, { NotFoundError, toFile } from 'openai';

const client = new OpenAI({ baseURL: process.env.API_BASE_URL, apiKey: process.env.API_KEY, maxRetries: 5 });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const image = await toFile(await readFile(process.env.REFERENCE_IMAGE), 'reference.png', { type: 'image/png' });
const created = await client.videos.create({
  prompt: process.env.PROMPT,
  model: 'sora-2',
  size: '1280x720',
  seconds: '4',
  input_reference: image,
});

let video = created;
const seen = [created.status];
for (let attempt = 0; attempt < 600 && (video.status === 'queued' || video.status === 'in_progress'); attempt++) {
  await sleep(200);
  video = await client.videos.retrieve(created.id);
  seen.push(video.status);
}

const retrieved = await client.videos.retrieve(created.id);
const listed = [];
for await (const item of client.videos.list({ limit: 2 })) {
  listed.push(item.id);
}
const content = await client.videos.downloadContent(created.id);
await writeFile(process.env.OUTPUT, Buffer.from(await content.arrayBuffer()));
const deleted = await client.videos.delete(created.id);

let missing = null;
try {
  await client.videos.retrieve(created.id);
} catch (err) {
  missing = { notFound: err instanceof NotFoundError, status: err.status };
}

console.log(JSON.stringify({
  created: { id: created.id, status: created.status, progress: created.progress },
  seen,
  final: { status: video.status, progress: video.progress, url: video.url ?? null },
  retrieved: retrieved.status,
  listed,
  deleted,
  missing,
}));
