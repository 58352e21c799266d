// A backend for Switchboard in Node (express): serves an upstream walker and publishes to
// browsers. The same app as examples/python-backend; see its README for the flow.
import crypto from 'node:crypto';
import express from 'express';

const SECRET = process.env.UPSTREAM_SECRET ?? 'change me: shared with switchboard';
const SWITCHBOARD = process.env.SWITCHBOARD_URL ?? 'http://127.0.0.1:8000';
const API_KEY = process.env.BACKEND_API_KEY ?? 'change me: an api key of 16+ chars';
const MAX_AGE_S = 300; // refuse requests signed longer ago than this (replays)

const app = express();
// Walker calls keep their exact bytes: the signature covers them.
const rawJson = express.raw({ type: 'application/json', limit: '1mb' });

/** The request's JSON body if Switchboard signed it, else null. */
function verifiedBody(req) {
  const header = req.get('X-Switchboard-Signature') ?? '';
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2)));
  const t = Number.parseInt(parts.t, 10);
  if (!Number.isFinite(t) || Math.abs(Date.now() / 1000 - t) > MAX_AGE_S) return null;
  const expected = crypto.createHmac('sha256', SECRET).update(`${t}.`).update(req.body).digest('hex');
  const given = Buffer.from(parts.v1 ?? '', 'utf8');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, Buffer.from(expected))) {
    return null;
  }
  return JSON.parse(req.body.toString('utf8'));
}

app.post('/walkers/create_todo', rawJson, (req, res) => {
  const call = verifiedBody(req);
  if (!call) return res.status(401).end();
  const title = String(call.context?.title ?? '').trim();
  if (!title) return res.json({ reports: [{ error: 'a todo needs a title' }] });
  const todo = { title, by: call.caller.username };
  const notify = call.caller.user_id
    ? [{ target: { users: [call.caller.user_id] }, event: 'todo_created', data: todo }]
    : [];
  res.json({ reports: [todo], notify });
});

// Your own code publishing to every browser.
app.post('/announce', express.json(), async (req, res) => {
  const answer = await fetch(`${SWITCHBOARD}/api/publish`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ target: { all: true }, event: 'announcement', data: { text: req.body.text } }),
  });
  res.status(answer.status).json(await answer.json());
});

const port = Number(process.env.PORT ?? 9000);
app.listen(port, '127.0.0.1', () => console.log(`backend on http://127.0.0.1:${port}`));
