// A bare broadcast server on the npm `ws` package: the floor for Node.
//   subscribe: ws://HOST/?room=ROOM
//   publish:   ws://HOST/?pub=ROOM, then every text message is sent as-is to ROOM's members
// No parsing, no envelopes: the least work a Node WebSocket server can do per delivery.
// Usage: node ws-server.js PORT
"use strict";
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] || 3002);
const rooms = new Map();
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false, clientTracking: false });

wss.on("connection", (ws, req) => {
  const query = new URL(req.url, "http://x").searchParams;
  const room = query.get("room");
  const target = query.get("pub");
  if (room) {
    let members = rooms.get(room);
    if (!members) rooms.set(room, (members = new Set()));
    members.add(ws);
    ws.on("close", () => {
      members.delete(ws);
      if (members.size === 0) rooms.delete(room);
    });
  }
  if (target) {
    ws.on("message", (data, isBinary) => {
      const members = rooms.get(target);
      if (!members) return;
      for (const member of members) member.send(data, { binary: isBinary });
    });
  }
});

wss.on("listening", () => console.log(`ws listening on http://127.0.0.1:${port}`));
